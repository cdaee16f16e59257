"""Claim: simulated silicone-oil droplets and air bubbles are hard to tell from real ones.
A classifier two-sample test (16×16 pooled pixels + radial profile; logistic regression and
gradient boosting; 5-fold CV ROC AUC; a fresh simulated draw and split per seed) of
simulated vs the real tiles of the paper's Fig. 5, after the figure's resampling round
trip. Baselines in the same run: the paper's own generated images vs the same real tiles,
and real bubbles vs real droplets (what "easy to tell apart" looks like). Also writes the
side-by-side figure with the radial-profile bands.

    python benchmarks/bench_simulator_realism.py --seeds 20 \
        --figure docs/images/simulator_realism.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import report

from svpgen.simulate.realism import realism, realism_figure, two_sample_auc

DEFAULT_FIXTURES = (
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "paper_fig5" / "tiles.npz"
)
LABELS = ("silicone_oil", "air_bubble")


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiles", type=Path, default=DEFAULT_FIXTURES, help="paper_fig5/tiles.npz")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--figure", type=Path, help="write the real-vs-simulated figure here")
    args = ap.parse_args()
    tiles = np.load(args.tiles)
    seeds = range(args.seeds)
    rows, results = [], []
    for label in LABELS:
        real = tiles[f"real_{label}"]
        res = realism(label, real, seeds=seeds, n_jobs=-1)
        results.append(res)
        s = res.summary()
        paper = [
            two_sample_auc(real, tiles[f"generated_{label}"], seed, n_jobs=-1) for seed in seeds
        ]
        paper_any = [
            two_sample_auc(real, tiles[f"generated_{label}"], seed, orientation="random", n_jobs=-1)
            for seed in seeds
        ]
        for name, aucs, any_o in (
            ("simulator (svpgen)", res.auc, res.auc_any_orientation),
            (
                "paper's generated images",
                {k: [p[k] for p in paper] for k in paper[0]},
                {k: [p[k] for p in paper_any] for k in paper_any[0]},
            ),
        ):
            lr, gb = _mean_std(aucs["logreg"]), _mean_std(aucs["gbm"])
            rows.append(
                {
                    "class": label,
                    "vs real": name,
                    "AUC logreg": lr[0],
                    "±": lr[1],
                    "AUC gbm": gb[0],
                    "± ": gb[1],
                    "any orientation logreg": float(np.mean(any_o["logreg"])),
                    "any orientation gbm": float(np.mean(any_o["gbm"])),
                }
            )
        rows[-2] |= {
            "real median diameter px": s["real_median_diameter_px"],
            "sim median diameter px": s["sim_median_diameter_px"],
            "max |median profile diff|": s["profile_max_abs_diff"],
        }
    between = [
        two_sample_auc(tiles["real_air_bubble"], tiles["real_silicone_oil"], seed, n_jobs=-1)
        for seed in seeds
    ]
    lr, gb = _mean_std([b["logreg"] for b in between]), _mean_std([b["gbm"] for b in between])
    rows.append(
        {
            "class": "real bubbles",
            "vs real": "real droplets",
            "AUC logreg": lr[0],
            "±": lr[1],
            "AUC gbm": gb[0],
            "± ": gb[1],
        }
    )
    if args.figure:
        realism_figure(results, {label: tiles[f"real_{label}"] for label in LABELS}, args.figure)
        print(f"figure: {args.figure}")
    report(
        "bench_simulator_realism",
        rows,
        {
            "seeds": args.seeds,
            "claim_auc_at_most_0.75": all(
                max(np.mean(r.auc["gbm"]), np.mean(r.auc["logreg"])) <= 0.75 for r in results
            ),
        },
    )


if __name__ == "__main__":
    main()
