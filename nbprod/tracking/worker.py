"""Helper process of :class:`nbprod.tracking.runs.RunLogger`.

``python -m nbprod.tracking.worker EXPERIMENT ARTIFACT_ID N``: imports MLflow, prints the
artifact's last N runs as one JSON line, reads the run to log as one JSON line on stdin, logs
it and prints the run's ids as one JSON line.
"""

from __future__ import annotations

import json
import sys


def main(experiment: str, artifact_id: str, n: int) -> None:
    from .store import client as store_client
    from .store import get_or_create_experiment

    client = store_client()  # the store is created/migrated under its lock, calls retried
    exp_id = get_or_create_experiment(client, experiment)
    runs = client.search_runs(
        [exp_id], filter_string=f"tags.`nbprod.artifact_id` = '{artifact_id}'",
        order_by=["attributes.start_time DESC"], max_results=n,
    )
    history = [
        {
            "run_id": r.info.run_id,
            "start_time": r.info.start_time,
            "status": r.data.tags.get("nbprod.status"),
            "rows": r.data.metrics.get("rows"),
            "dataset_drifted": bool(r.data.metrics.get("drift.dataset_drifted", 0.0)),
            "drift_share": r.data.metrics.get("drift.weighted_share"),
            "performance": {k.split(".", 1)[1]: v for k, v in r.data.metrics.items()
                            if k.startswith("performance.")},
        }
        for r in runs
    ]
    print(json.dumps({"history": history}), flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return  # the scoring run ended before logging: nothing to record
    payload = json.loads(line)
    summary = payload["summary"]
    import time

    from mlflow.entities import Metric, Param, RunTag

    run = client.create_run(exp_id, run_name=f"score {summary.get('started', '')[:19]}",
                            tags=payload["tags"])
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in payload["metrics"].items()]
    params = [Param("input", str(summary.get("input"))[:500]),
              Param("output", str(summary.get("output"))[:500])]
    for i in range(0, len(metrics), 900):
        client.log_batch(run.info.run_id, metrics=metrics[i:i + 900],
                         params=params if i == 0 else [], tags=[RunTag("nbprod.kind", "score")])
    client.log_dict(run.info.run_id, summary, "summary.json")
    client.set_terminated(run.info.run_id, "FINISHED")
    print(json.dumps({"run_id": run.info.run_id, "experiment_id": exp_id,
                      "experiment": experiment, "tracking_uri": client.tracking_uri}),
          flush=True)


if __name__ == "__main__":
    import os

    code = 0
    try:
        main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    except Exception as exc:  # reported to the scoring run as one line
        from .store import store_error

        print(json.dumps({"error": str(store_error(exc))}), flush=True)
        code = 1
    # every call was synchronous and its answer is printed: leave without finalising MLflow's
    # ~2,000 modules (about 1.3 s the scoring run would otherwise wait for)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
