"""lifecycle.evidence: mergeable loss statistics and the better/worse/equivalent decision."""

import numpy as np
import pytest
from scipy import stats

from nbprod.exceptions import NbprodUsageError
from nbprod.lifecycle import evidence as ev

rng = np.random.default_rng(7)


def test_stats_merge_exactly_and_paired_test_matches_scipy():
    d = rng.normal(-0.02, 0.1, 3000)
    parts = [ev.LossStats.of(c) for c in np.array_split(d, 7)]
    total = ev.merge(parts)
    assert total.n == 3000 and total.mean == pytest.approx(d.mean()) and total.variance == pytest.approx(d.var(ddof=1))
    e = ev.decide_paired(total, min_effect=0.005)
    ref = stats.ttest_1samp(d, 0.0)
    ci = ref.confidence_interval(0.95)
    assert e.p_value == pytest.approx(ref.pvalue) and (e.low, e.high) == pytest.approx((ci.low, ci.high))
    assert e.verdict == ev.BETTER and ev.promotion_allowed(e)


def test_welch_matches_scipy_and_verdicts():
    a, b = rng.normal(0.2, 0.1, 2000), rng.normal(0.25, 0.15, 1500)
    e = ev.decide_welch(ev.LossStats.of(a), ev.LossStats.of(b))
    assert e.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert e.verdict == ev.WORSE and not ev.promotion_allowed(e)
    same = rng.normal(0.2, 0.01, 4000)
    eq = ev.decide_welch(ev.LossStats.of(same[:2000]), ev.LossStats.of(same[2000:]), min_effect=0.005)
    assert eq.verdict == ev.EQUIVALENT and not ev.promotion_allowed(eq)
    few = ev.decide_paired(ev.LossStats.of(rng.normal(0, 0.5, 5)), min_effect=0.001)
    assert few.verdict == ev.UNDECIDED
    assert ev.decide_paired(ev.LossStats.of([0.1])).verdict == ev.UNDECIDED


def test_row_losses_and_bad_input():
    brier = ev.row_losses(["a", "b"], [[0.8, 0.2], [0.5, 0.5]], task="classifier", classes=["a", "b"])
    assert brier == pytest.approx([0.08, 0.5])
    assert ev.row_losses([1.0, 2.0], [1.5, 2.0], task="regressor") == pytest.approx([0.25, 0.0])
    with pytest.raises(NbprodUsageError, match="same rows"):
        ev.paired_stats([1, 2], [1])
    with pytest.raises(NbprodUsageError, match="confidence"):
        ev.decide_paired(ev.LossStats.of([1, 2, 3]), confidence=1.5)
    with pytest.raises(NbprodUsageError, match="finite"):
        ev.LossStats.of([1.0, float("nan")])


def test_stats_merge_stays_accurate_with_a_large_mean_and_describe_uses_nbprod_numbers():
    d = 1e8 + rng.normal(0, 1e-3, 20000)  # a sum of squares would cancel to nothing here
    total = ev.merge(ev.LossStats.of(c) for c in np.array_split(d, 13))
    assert total.variance == pytest.approx(d.var(ddof=1), rel=1e-6)
    assert ev.LossStats.from_dict(total.to_dict()) == total and ev.merge([]).n == 0
    e = ev.decide_welch(ev.LossStats.of(rng.normal(0.2, 0.1, 1500)), ev.LossStats.of(rng.normal(0.1, 0.1, 1500)))
    assert "n=1,500 + 1,500" in e.describe() and "95% CI" in e.describe() and "p<0.0001" in e.describe()


def _recorded(mode: str, **parts: np.ndarray) -> dict:
    metrics = {}
    for part, values in parts.items():
        for k, v in ev.LossStats.of(values).to_dict().items():
            metrics[f"{mode}.evidence.{part}.{k}"] = v
    return {"mode": mode, "metrics": metrics}


def test_runs_accumulate_into_one_verdict_per_mode_and_an_overall_one():
    d = rng.normal(-0.03, 0.2, 6000)
    runs = [_recorded("shadow", paired=c) for c in np.array_split(d, 3)]
    runs.append({"mode": "shadow", "metrics": {}})  # a run without labels adds nothing
    total = ev.accumulate(runs)["shadow"]
    assert total["runs"] == 4 and total["paired"].n == 6000
    assert total["paired"].mean == pytest.approx(d.mean())
    judged = ev.judge(runs)
    assert judged["shadow"].verdict == ev.BETTER and ev.overall(judged) == ev.BETTER
    assert ev.promotion_problem(judged, "1") is None
    a, b = rng.normal(0.2, 0.1, 3000), rng.normal(0.3, 0.1, 3000)
    judged = ev.judge(runs + [_recorded("ab", champion=a, challenger=b)])
    assert judged["ab"].verdict == ev.WORSE and ev.overall(judged) == ev.WORSE
    said = ev.promotion_problem(judged, "1")
    assert "worse than champion version 1" in said and "Welch t-test" in said
    assert ev.overall({}) is None and ev.promotion_problem({}, "1") is None
    undecided = ev.judge([_recorded("shadow", paired=rng.normal(0, 1, 50))], min_effect=0.001)
    assert ev.overall(undecided) == ev.UNDECIDED
    assert "not yet distinguishable from" in ev.promotion_problem(undecided, "3")
