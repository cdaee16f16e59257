"""Claim: the simulator renders ≥ 5,000 particles/s on 2 CPU cores, so a 500,000-protein
validation set takes under 2 minutes. Baselines in the same run: the same renderer on one
worker process, the ``fig5`` profile (the simulator before its FlowCam calibration) on the
same workloads, and (``--compare-with``) another svpgen checkout's simulator — e.g. the
commit before a speed change — timed on the same workload in a fresh interpreter.

    python benchmarks/bench_simulate.py --n 500000
    git worktree add /tmp/svpgen-old 6b47b2c
    python benchmarks/bench_simulate.py --n 100000 --compare-with /tmp/svpgen-old/src
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace

from common import Timer, report

from svpgen.simulate import SimConfig, simulate

# the workload timed in another checkout (its own svpgen on PYTHONPATH, default settings)
_OTHER = """
import json, sys, time
from svpgen.simulate import simulate
counts = json.loads(sys.argv[1])
simulate({"protein": 1000}, seed=5)  # warm-up: imports and worker start
t = time.perf_counter(); simulate(counts, seed=0); print(time.perf_counter() - t)
"""


def _time_other(src: str, counts: dict) -> float:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", _OTHER, json.dumps(counts)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500_000, help="protein particles for the headline run")
    ap.add_argument("--mix", type=int, default=30_000, help="particles of the 1:1:1 mixed run")
    ap.add_argument(
        "--compare-with",
        metavar="SRC",
        help="the src/ folder of another svpgen checkout to time on the same workloads",
    )
    args = ap.parse_args()
    cfg = SimConfig()
    rows = []
    third = args.mix // 3
    mix = {"protein": third, "silicone_oil": third, "air_bubble": third}
    simulate({"protein": 1000}, seed=5, config=cfg)  # warm-up, as for the other checkout
    for label, workers in (
        ("baseline: 1 worker", 1),
        (f"{cfg.workers} workers (default)", cfg.workers),
    ):
        with Timer() as t:
            simulate(mix, seed=0, config=replace(cfg, workers=workers))
        rows.append(
            {
                "run": f"{3 * third:,} mixed 1:1:1, {label}",
                "seconds": t.seconds,
                "particles_per_s": 3 * third / t.seconds,
            }
        )
    if args.compare_with:
        seconds = _time_other(args.compare_with, mix)
        rows.append(
            {
                "run": f"{3 * third:,} mixed 1:1:1, {args.compare_with} (default workers)",
                "seconds": seconds,
                "particles_per_s": 3 * third / seconds,
            }
        )
        seconds = _time_other(args.compare_with, {"protein": args.n})
        rows.append(
            {
                "run": f"{args.n:,} protein, {args.compare_with}",
                "seconds": seconds,
                "particles_per_s": args.n / seconds,
            }
        )
    fig5 = replace(cfg, profile="fig5")
    workloads = ((mix, f"{3 * third:,} mixed 1:1:1"), ({"protein": args.n}, f"{args.n:,} protein"))
    for counts, what in workloads:
        with Timer() as t:
            simulate(counts, seed=0, config=fig5)
        n = sum(counts.values())
        rows.append(
            {
                "run": f"{what}, fig5 profile (before calibration)",
                "seconds": t.seconds,
                "particles_per_s": n / t.seconds,
            }
        )
    with Timer() as t:
        simulate({"protein": args.n}, seed=0, config=cfg, progress=True)
    rows.append(
        {
            "run": f"{args.n:,} protein, {cfg.workers} workers, {cfg.profile} profile (default)",
            "seconds": t.seconds,
            "particles_per_s": args.n / t.seconds,
        }
    )
    report(
        "bench_simulate",
        rows,
        {
            "cpus": os.cpu_count(),
            "compare_with": args.compare_with,
            "claim_500k_under_120s": t.seconds < 120 if args.n >= 500_000 else None,
        },
    )


if __name__ == "__main__":
    main()
