"""Claim: each model's default few-step sampler keeps the quality of a long stochastic sampler
at ≤ 1/40 of DDPM-1000's network evaluations, and the generated images pass the three
realism lenses. For every diffusion model of a finished study, per sampler: FID (particle
encoder, bootstrap 95% CI) and its real-vs-real floor at the same n, precision/recall, the
classifier two-sample AUC (generated vs held-out real), the largest sub-type share gap, and
wall time.

The reference is the long sampler of the model's own process: ancestral DDPM-1000 for ε/v
models, the EDM SDE solver at 200 steps for EDM models (on an analytic Gaussian it has
converged by then: tests/test_objectives.py), so "1000 steps" is not paid twice.

    python benchmarks/bench_sampler_quality.py --study runs/demo --n 200
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import report

from svpgen import Generator
from svpgen.data.store import ParticleStore
from svpgen.evaluate import generative
from svpgen.evaluate.audit import realism_lenses
from svpgen.evaluate.features import EncoderFeatures

REFERENCE = {"epsilon": "ddpm-1000", "v": "ddpm-1000", "edm": "edm-sde-200"}
ALTERNATIVES = {
    "epsilon": ["ddim-50", "sde-dpmpp-20"],
    "v": ["ddim-50", "sde-dpmpp-20"],
    "edm": ["edm-sde-20", "edm-euler-40"],
}


def samplers_for(g: Generator) -> list[str]:
    """The model's default, its objective's alternatives and the long reference."""
    name, steps = g.sampling()
    default = f"{name}-{steps or 20}"
    objective = g.config.schedule.objective
    return list(dict.fromkeys([default, *ALTERNATIVES[objective], REFERENCE[objective]]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--study",
        type=Path,
        default=Path("runs/demo"),
        help="a finished study (models, encoder, eval pool)",
    )
    ap.add_argument(
        "--n",
        type=int,
        default=200,
        help="generated and real images per comparison (the floor uses another n real)",
    )
    ap.add_argument(
        "--samplers",
        help="comma-separated name-steps (default: the model's, alternatives, the long reference)",
    )
    args = ap.parse_args()
    encoder = EncoderFeatures(args.study / "encoder")
    held_out = ParticleStore(args.study / "data" / "eval")
    rows = []
    for model_dir in sorted(
        p for p in (args.study / "diffusion").iterdir() if (p / "config.json").exists()
    ):
        g = Generator.from_pretrained(model_dir)
        idx = held_out.indices(label=g.label)
        real = np.asarray(held_out.images[idx])
        subtypes = (
            held_out.table["subtype"].to_numpy()[idx]
            if "subtype" in held_out.table.columns
            else None
        )
        n = min(args.n, len(real) // 2)
        real_f = encoder(real[:n])
        floor = generative.fid(real_f, encoder(real[n : 2 * n]))
        specs = args.samplers.split(",") if args.samplers else samplers_for(g)
        for spec in specs:
            name, steps = spec.rsplit("-", 1)
            start = time.perf_counter()
            imgs = g.sample(n, sampler=name, steps=int(steps), seed=1)
            sec = time.perf_counter() - start
            gen_f = encoder(imgs)
            q = generative.fid_kid(real_f, gen_f, bootstrap=50)
            pr = generative.precision_recall(real_f, gen_f)
            lenses = realism_lenses(real, subtypes, imgs, n, seeds=range(3), n_jobs=-1)
            modes = lenses.get("modes")
            rows.append(
                {
                    "class": g.label,
                    "sampler": spec,
                    "n": n,
                    "seconds": sec,
                    "FID": q["fid"],
                    "FID_lo95": q["fid_ci95"][0],
                    "FID_hi95": q["fid_ci95"][1],
                    "floor": floor,
                    "FID/floor": q["fid"] / floor,
                    "precision": pr["precision"],
                    "recall": pr["recall"],
                    "AUC_logreg": lenses["two_sample_auc"]["logreg"],
                    "AUC_gbm": lenses["two_sample_auc"]["gbm"],
                    "max_mode_gap": modes["max_abs_diff"] if modes else float("nan"),
                    "mode_gap_real_vs_real": modes["max_abs_diff_floor"] if modes else float("nan"),
                    "modes_gen": ", ".join(f"{k} {v:.2f}" for k, v in modes["generated"].items())
                    if modes
                    else "",
                    "modes_real": ", ".join(f"{k} {v:.2f}" for k, v in modes["real"].items())
                    if modes
                    else "",
                    "modes_real_classified": ", ".join(
                        f"{k} {v:.2f}" for k, v in modes["real_classified"].items()
                    )
                    if modes
                    else "",
                }
            )
    report("bench_sampler_quality", rows, {"study": str(args.study)})


if __name__ == "__main__":
    main()
