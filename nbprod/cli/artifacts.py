"""``nbprod verify``, ``nbprod sign`` and ``nbprod inspect``: an artifact's integrity, signature
and contents."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .base import EXIT_ERROR, EXIT_OK, add_trusted_key


# -- verify ---------------------------------------------------------------------------------
def run_verify(args: argparse.Namespace) -> int:
    from ..core.signing import read_signature
    from ..core.trust import verify
    from ..exceptions import IntegrityError

    result = verify(Path(args.artifact), trusted_keys=args.trusted_key)
    if not result.ok:
        for file, what in result.problems:
            print(f"FAIL {file}: {what}", file=sys.stderr)
        return EXIT_ERROR
    line = f"OK {args.artifact}: {result.checked} files match their SHA-256"
    if result.signed_by:
        line += f"; signed by trusted key {result.signed_by}"
    else:
        try:
            signature = read_signature(result.root)
        except IntegrityError as exc:  # not relied on without trusted keys, so only reported
            line += f"; {str(exc).rstrip('.')} (not checked: no trusted key given)"
        else:
            if signature:
                line += (f"; signed by key {signature['key'][:40]} (not checked: no trusted "
                         "key given)")
    print(line)
    return EXIT_OK


def add_verify(sub: Any) -> None:
    p = sub.add_parser("verify", help="check every file of an artifact against its hash "
                                      "(and its signature, with --trusted-key)")
    p.add_argument("artifact", metavar="PATH")
    add_trusted_key(p)
    p.set_defaults(run=run_verify)


# -- sign -----------------------------------------------------------------------------------
def run_sign(args: argparse.Namespace) -> int:
    from ..core.signing import SIGNATURE, sign

    record = sign(Path(args.artifact), args.key)
    print(f"nbprod: signed {args.artifact} (digest {record['digest'][:16]}) with key "
          f"{record['key']}: {Path(args.artifact) / SIGNATURE}")
    return EXIT_OK


def add_sign(sub: Any) -> None:
    p = sub.add_parser("sign", help="sign an artifact with an Ed25519 private key (nbprod.sig)")
    p.add_argument("artifact", metavar="PATH")
    p.add_argument("--key", required=True, metavar="KEY.pem",
                   help="Ed25519 private key, PEM (openssl genpkey -algorithm ed25519)")
    p.set_defaults(run=run_sign)


# -- inspect --------------------------------------------------------------------------------
def run_inspect(args: argparse.Namespace) -> int:
    from ..core import manifest as mf

    m = mf.read(Path(args.artifact))
    if args.json:
        print(json.dumps(m, indent=2))
        return EXIT_OK
    print(describe(m))
    return EXIT_OK


def describe(m: dict[str, Any]) -> str:
    lines = [
        f"{m['name']}  ({m['task']}, nbprod artifact format {m['format_version']})",
        f"  created     {m['created']}  by {m['provenance'].get('user')}",
        f"  model       {m['model']['class']} (skops; {len(m['model']['trusted_types'])} trusted types)",
        f"  features    {m['features']['function']}() in {m['features']['file']}",
        f"  target      {m['target']}" + (f"   id {m['id_column']}" if m.get("id_column") else ""),
    ]
    if m.get("classes") is not None:
        lines.append(f"  classes     {', '.join(map(str, m['classes']))}")
    from ..core.results import listing

    lines.append(f"  inputs      {len(m['input_columns'])}: {listing(m['input_columns'], 12)}")
    for role, s in m["snapshots"].items():
        found = s.get("pii_detected") or {}
        pii = (f", PII {', '.join(c + (' (detected)' if c in found else '') for c in s['pii'])}"
               if s.get("pii") else "")
        lines.append(f"  {role:<11} {s['rows']:,} rows, fingerprint {s['fingerprint'][:12]}{pii}")
    checks = m.get("checks") or []
    if checks:
        lines.append("  checks")
        lines += [f"    {c['status'].upper():<5} {c['name']}: {c['message']}" for c in checks]
    else:
        lines.append("  checks      none recorded")
    if m.get("override"):
        o = m["override"]
        lines.append(f"  OVERRIDE    {o['by']} packaged past failed checks {', '.join(o['checks'])} at {o['at']}")
    prov = m["provenance"]
    if prov.get("notebook"):
        lines.append(f"  notebook    {prov['notebook']}")
    if prov.get("git"):
        g = prov["git"]
        lines.append(f"  git         {g['commit'][:12]}{' (dirty)' if g['dirty'] else ''} on {g.get('branch')}")
    env = m["environment"]
    pk = env["packages"]
    lines.append(f"  environment Python {env['python']}, nbprod {env['nbprod']}, scikit-learn "
                 f"{pk.get('scikit-learn')}, pandas {pk.get('pandas')}")
    lines.append(f"  files       {len(m['files'])} (run `nbprod verify` to check their hashes)")
    return "\n".join(lines)


def add_inspect(sub: Any) -> None:
    p = sub.add_parser("inspect", help="a human summary of an artifact")
    p.add_argument("artifact", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(run=run_inspect)
