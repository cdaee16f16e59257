"""Claim: the latent model (pca-mlp) starts as the exact posterior mean of its latent prior
and, on droplets with a one-Gaussian prior (``--mixture 1``, the quick preset of stop 24),
stays near it for thousands of optimizer steps before it learns how the class departs from
a Gaussian — at a run-dependent step; with the quick preset's 64-Gaussian mixture the MLP
moves little from the mixture either (README, "The latent prior"). Trains one configuration
on 400 simulated images of a class and, at ten points of training, measures the departure:
the mean |difference| in gray levels between 50 images sampled from the EMA model and 50
sampled with the same noise from the same model with its MLP's output layer zeroed (the
prior it started as). Baseline: that prior (departure 0).

    python benchmarks/bench_latent_plateau.py --label silicone_oil --steps 6000 --mixture 1
    python benchmarks/bench_latent_plateau.py --label silicone_oil --steps 10000 \
        --batch 100 --mixture 1
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import report

from svpgen import Generator
from svpgen.data.store import ParticleStore, provenance_record
from svpgen.diffusion.config import PRESETS
from svpgen.diffusion.train import train_diffusion
from svpgen.simulate import SimConfig, simulate

IMAGES = 400


def departure(g: Generator, n: int = 50) -> float:
    """Mean |generated − Gaussian-model generated| in gray levels, same sampler noise."""
    gaussian = copy.deepcopy(g.unet)
    torch.nn.init.zeros_(gaussian.out[1].weight)
    torch.nn.init.zeros_(gaussian.out[1].bias)
    a = g.sample(n, "edm-sde", 20, seed=3)
    b = Generator(gaussian, g.config, g.label).sample(n, "edm-sde", 20, seed=3)
    return float(np.abs(a.astype(np.float64) - b).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="silicone_oil", choices=["air_bubble", "silicone_oil"])
    ap.add_argument("--steps", type=int, default=6000, help="optimizer steps")
    ap.add_argument("--batch", type=int, default=PRESETS["quick"].batch_size)
    ap.add_argument("--lr", type=float, default=PRESETS["quick"].lr)
    ap.add_argument("--seed", type=int, default=77, help="the simulated training images' seed")
    ap.add_argument(
        "--mixture",
        type=int,
        default=PRESETS["quick"].latent.mixture,
        help="Gaussians in the latent prior (1: one Gaussian)",
    )
    args = ap.parse_args()
    epochs = max(10, round(args.steps * args.batch / IMAGES))
    every = epochs // 10
    cfg = replace(
        PRESETS["quick"],
        latent=replace(PRESETS["quick"].latent, mixture=args.mixture),
        batch_size=args.batch,
        lr=args.lr,
        epochs=epochs,
        checkpoint_every=epochs,
        fid_epochs=tuple(range(every, epochs + 1, every)),
    )
    rows = []
    start = time.perf_counter()

    def hook(g: Generator, epoch: int) -> dict:
        rows.append(
            {
                "step": epoch * -(-IMAGES // args.batch),
                "seconds": time.perf_counter() - start,
                "departure_gray_levels": departure(g),
            }
        )
        return {}

    with tempfile.TemporaryDirectory() as tmp:
        sim = simulate(
            {args.label: IMAGES}, seed=args.seed, config=SimConfig(workers=2, label_noise=0)
        ).particles
        store = ParticleStore.write(
            Path(tmp) / "train", sim, provenance_record("bench_latent_plateau")
        )
        train_diffusion(
            store.path,
            Path(tmp) / "model",
            args.label,
            cfg,
            progress=False,
            device="cpu",
            eval_hook=hook,
        )
    report(
        f"bench_latent_plateau_{args.label}_m{args.mixture}_b{args.batch}_lr{args.lr:g}_s{args.steps}",
        rows,
        vars(args),
    )


if __name__ == "__main__":
    main()
