"""Claim: what one `paper`-preset grid trial costs on this machine, extrapolated to the
full study (2 models × (9 Table 1 datasets + 3 baselines) × 126 grid points).

Measures one training epoch (+ the 5,000-image tuning evaluation) of ResNet-18 and
ResNet-50 on ``--images`` 1:1:1 images, converts it to seconds per training image, and
scales that by the Table 1 dataset sizes (Real-0 … Mixed-4 + 3 baselines on Real-4), an
assumed number of epochs per trial (early stopping), 126 grid points and 12 cells per
model. Also the inference time of one model on the 501,000-image evaluation set.

    python benchmarks/bench_paper_trial.py
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from common import report

from svpgen.classify.config import PRESETS as CLASSIFIER_PRESETS
from svpgen.classify.models import batched_outputs
from svpgen.classify.train import train_classifier
from svpgen.simulate import simulate
from svpgen.study.config import PRESETS as STUDY_PRESETS
from svpgen.study.config import TABLE1_PROTEIN_K


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--epochs-assumed",
        type=int,
        default=30,
        help="epochs a trial runs before early stopping (assumption)",
    )
    ap.add_argument(
        "--images",
        type=int,
        default=6000,
        help="training images timed per model (cost per image is what scales)",
    )
    args = ap.parse_args()
    study = STUDY_PRESETS["paper"]
    tune = simulate({"protein": 4000, "silicone_oil": 500, "air_bubble": 500}, seed=1).particles
    rows = []
    per_epoch = {}
    third = args.images // 3
    for name, counts in (
        ("Mixed-4-like 1:1:1", {"protein": third, "silicone_oil": third, "air_bubble": third}),
    ):
        data = simulate(counts, seed=2).particles
        for arch in ("resnet18", "resnet50"):
            cfg = replace(CLASSIFIER_PRESETS["paper"], arch=arch, epochs=1, batch_size=64)
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                train_classifier(data, tune, tmp, cfg, progress=True)
                sec = time.perf_counter() - start
            per_epoch[(name, arch)] = sec
            rows.append(
                {
                    "what": f"1 epoch {arch} on {name} ({len(data):,} imgs) + tuning eval",
                    "seconds": sec,
                    "img_per_s": len(data) / sec,
                }
            )
    infer = {}
    for arch in ("resnet18", "resnet50"):
        import torch

        from svpgen.classify.models import build_classifier

        model = build_classifier(arch, 3).to(memory_format=torch.channels_last).eval()
        imgs = tune.images[:4096]
        batched_outputs(model, imgs[:256])
        start = time.perf_counter()
        batched_outputs(model, imgs)
        infer[arch] = len(imgs) / (time.perf_counter() - start)
        rows.append(
            {
                "what": f"{arch} inference on the 501,000-image evaluation set (extrapolated)",
                "seconds": 501_000 / infer[arch],
                "img_per_s": infer[arch],
            }
        )
    grid = 126
    cells = len(study.datasets) + len(study.baselines)
    sizes = {
        d: 1000 * (k + 2 * (1 if d.startswith("Real") else k)) for d, k in TABLE1_PROTEIN_K.items()
    }
    sizes_total = sum(sizes.values()) + 3 * sizes["Real-4"]
    for arch in ("resnet18", "resnet50"):
        sec_per_img = per_epoch[("Mixed-4-like 1:1:1", arch)] / (3 * third)
        trial_hours = sizes_total / cells * sec_per_img * args.epochs_assumed / 3600
        total_days = trial_hours * grid * cells / 24
        rows.append(
            {
                "what": f"{arch}: mean paper trial ({args.epochs_assumed} epochs)",
                "seconds": trial_hours * 3600,
                "img_per_s": 1 / sec_per_img,
                "note": f"full grid for {arch}: {grid * cells} trials "
                f"≈ {total_days:,.0f} CPU-days here",
            }
        )
    report("bench_paper_trial", rows, {"epochs_assumed": args.epochs_assumed})


if __name__ == "__main__":
    main()
