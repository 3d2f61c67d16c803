"""Two commands measured in alternating pairs, each run from empty caches.

    python -m experiments.paired --name etcd-before-after --pairs 3 \\
        --a "before: /work/ci-base/.venv/bin/fgo build -q P -- -a -o {out}/etcd" \\
        --b "after: .venv/bin/fgo build -q P -- -a -o {out}/etcd" \\
        --env GO111MODULE=off --env GOPATH=/usr/share/gocode

Each run gets a fresh GOCACHE, FGO_STORE, FGO_CACHE_DIR and output directory (`{out}` in a
command names it); the two sides alternate (A B, then B A, ...) so that a machine whose
load drifts affects both alike. The wall and CPU time (user+sys of the command and its
children) of every run, the load average before each, and the median of the pairs' ratios
B/A go to experiments/results/paired_NAME.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def run_once(command: str, env: dict[str, str]) -> dict[str, Any]:
    """COMMAND from empty caches: its wall and CPU seconds, exit status, load before."""
    root = Path(tempfile.mkdtemp(prefix="fgo-paired-", dir=os.environ.get("FGO_PAIRED_TMP")))
    out = root / "out"
    out.mkdir()
    run_env = {**os.environ, **env, "GOCACHE": str(root / "gocache"),
               "FGO_STORE": str(root / "store"), "FGO_CACHE_DIR": str(root / "fgo-cache"),
               "FGO_LEDGER": str(root / "ledger.json")}
    argv = shlex.split(command.format(out=out))
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=run_env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shutil.rmtree(root, ignore_errors=True)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "exit": proc.returncode,
            "load_before": round(load, 2), "stderr_tail": proc.stderr.strip().splitlines()[-3:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--a", required=True, help="LABEL: COMMAND")
    ap.add_argument("--b", required=True, help="LABEL: COMMAND")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for both sides")
    ap.add_argument("--warmup", action="store_true", help="one untimed run of each first")
    args = ap.parse_args()
    env = dict(e.split("=", 1) for e in args.env)
    sides = [tuple(s.split(": ", 1)) for s in (args.a, args.b)]
    if args.warmup:
        for _, cmd in sides:
            run_once(cmd, env)
    rows = []
    for i in range(args.pairs):
        order = sides if i % 2 == 0 else sides[::-1]
        pair = {}
        for label, cmd in order:
            pair[label] = run_once(cmd, env)
            print(f"pair {i} {label}: {pair[label]['wall_s']} s (exit {pair[label]['exit']})",
                  flush=True)
        rows.append(pair)
    a, b = sides[0][0], sides[1][0]
    ratios = [r[b]["wall_s"] / r[a]["wall_s"] for r in rows]
    doc = {"meta": {"command": "python -m experiments.paired " + " ".join(
                        shlex.quote(x) for x in os.sys.argv[1:]),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "cores": os.cpu_count()},
           "a": a, "b": b, "pairs": rows,
           "ratios_b_over_a": [round(r, 4) for r in ratios],
           "median_ratio_b_over_a": round(statistics.median(ratios), 4)}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"paired_{args.name}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{b}/{a}: median {doc['median_ratio_b_over_a']} (pairs {doc['ratios_b_over_a']}); "
          f"{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
