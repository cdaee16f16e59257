"""Claim: augmenting the quick generator only by the symmetries of the square a class's
images keep (``symmetries="auto"``, the quick preset) makes generated bubbles harder to
tell from real ones than all eight symmetries (``"dihedral"``, the paper's augmentation),
and changes nothing for droplets, whose images keep all eight. Baseline in the same run:
the same preset with ``"dihedral"`` (and ``"none"`` for reference).

On a finished study's data (its diffusion training stores and held-out evaluation
images, as the audit uses them): per class and setting, the quick model is trained, then
sampled with several seeds; each draw is judged by the audit's two-sample test (AUC,
generated vs held-out real, as the images lie and under random orientations) and the
like-for-like sub-type gap. Also per class: the symmetry test's p-values, and how well a
two-sample test tells the real images from randomly re-oriented real images (how
orientation-bound the class is).

    python benchmarks/bench_symmetries.py --study runs/demo --seeds 4   # from where the study ran
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import report

from svpgen import Generator
from svpgen.data.augment import invariant_symmetries
from svpgen.diffusion.config import PRESETS
from svpgen.diffusion.train import train_diffusion
from svpgen.evaluate.audit import held_out_real, realism_lenses
from svpgen.stats import random_orientation, two_sample_auc

SETTINGS = ("auto", "dihedral", "none")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", type=Path, default=Path("runs/demo"))
    ap.add_argument("--seeds", type=int, default=4, help="sampling seeds per model")
    ap.add_argument("--n", type=int, default=500, help="generated images per draw")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_dir in sorted((args.study / "diffusion").iterdir()):
            study_model = Generator.from_pretrained(model_dir, "cpu")
            label, store = study_model.label, study_model.metadata["store"]
            real, subtypes = held_out_real(study_model, args.study / "data" / "eval")
            m = min(args.n, len(real) // 2)
            for setting in SETTINGS:
                cfg = replace(
                    PRESETS["quick"],
                    symmetries=setting,
                    fid_epochs=(),
                    checkpoint_every=PRESETS["quick"].epochs,
                )
                start = time.perf_counter()
                train_diffusion(
                    store,
                    Path(tmp) / f"{label}_{setting}",
                    label,
                    cfg,
                    progress=False,
                    device="cpu",
                )
                seconds = time.perf_counter() - start
                g = Generator.from_pretrained(Path(tmp) / f"{label}_{setting}", "cpu")
                draws = []
                for seed in range(args.seeds):
                    gen = g.sample(args.n, seed=seed)
                    lens = realism_lenses(real, subtypes, gen, m, n_jobs=-1)
                    turned = two_sample_auc(
                        real[:m], gen[:m], seed, orientation="random", n_jobs=-1
                    )
                    draws.append(
                        (
                            lens["two_sample_auc"]["logreg"],
                            lens["two_sample_auc"]["gbm"],
                            turned["gbm"],
                            lens["modes"]["max_abs_diff"] if "modes" in lens else np.nan,
                        )
                    )
                d = np.array(draws)
                rows.append(
                    {
                        "class": label,
                        "symmetries": setting,
                        "kept": ", ".join(g.metadata.get("symmetries", ["all eight"])),
                        "train_s": seconds,
                        "AUC_logreg": d[:, 0].mean(),
                        "AUC_gbm": d[:, 1].mean(),
                        "AUC_gbm_sd": d[:, 1].std(ddof=1) if len(d) > 1 else np.nan,
                        "AUC_gbm_random_orientation": d[:, 2].mean(),
                        "mode_gap": d[:, 3].mean(),
                        "mode_gap_max": d[:, 3].max(),
                    }
                )
            _, p = invariant_symmetries(study_model.training_images())
            half = len(real) // 2
            oriented = [
                two_sample_auc(
                    real[:half], random_orientation(real[half : 2 * half], s), s, n_jobs=-1
                )["gbm"]
                for s in range(3)
            ]
            rows.append(
                {
                    "class": label,
                    "symmetries": "real vs re-oriented real",
                    "AUC_gbm": float(np.mean(oriented)),
                    "symmetry test p (training images)": ", ".join(
                        f"{k} {v:.3g}" for k, v in p.items()
                    ),
                }
            )
    report("bench_symmetries", rows, {"study": str(args.study), "seeds": args.seeds, "n": args.n})


if __name__ == "__main__":
    main()
