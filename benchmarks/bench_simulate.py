"""Claim: the simulator renders ≥ 5,000 particles/s on 2 CPU cores, so a 500,000-protein
validation set takes under 2 minutes. Baseline: the same renderer on one worker process.

    python benchmarks/bench_simulate.py --n 500000
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

from common import Timer, report
from svpgen.simulate import SimConfig, simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500_000, help="protein particles for the headline run")
    ap.add_argument("--mix", type=int, default=30_000, help="particles of the 1:1:1 mixed run")
    args = ap.parse_args()
    cfg = SimConfig()
    rows = []
    third = args.mix // 3
    mix = {"protein": third, "silicone_oil": third, "air_bubble": third}
    for label, workers in (("baseline: 1 worker", 1), (f"{cfg.workers} workers (default)", cfg.workers)):
        with Timer() as t:
            simulate(mix, seed=0, config=replace(cfg, workers=workers))
        rows.append({"run": f"{3 * third:,} mixed 1:1:1, {label}", "seconds": t.seconds, "particles_per_s": 3 * third / t.seconds})
    with Timer() as t:
        simulate({"protein": args.n}, seed=0, config=cfg, progress=True)
    rows.append({"run": f"{args.n:,} protein, {cfg.workers} workers", "seconds": t.seconds, "particles_per_s": args.n / t.seconds})
    report("bench_simulate", rows, {"cpus": os.cpu_count(), "claim_500k_under_120s": t.seconds < 120 if args.n >= 500_000 else None})


if __name__ == "__main__":
    main()
