"""Claim tested (issue 16's candidate): one class-conditional quick U-Net of both minority
classes, trained for the optimizer steps of two per-class quick U-Nets (the same CPU time),
learns each class better than its own quick model — the two classes share backgrounds and
optics, so each sees twice the steps on what they share.

Baseline in the same run: the quick U-Net (``QUICK_UNET``, the quick preset before its
``pca-mlp`` network) trained per class (``train_diffusion``, the code path the study uses).
The conditional model is that U-Net with a learned class
embedding added to its time embedding (zero-initialised), trained with the same loop,
data order, augmentation, EDM noise levels and EMA — an experiment, not a model the study
can use. Both sampled with EDM-DPM-Solver++-20 and judged as ``bench_diffusion_preset``
judges (pixel-feature FID over its floor, two-sample AUC, background texture/unevenness,
sub-type shares) on the same simulated images.

    python benchmarks/bench_conditional_diffusion.py --n 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from bench_diffusion_preset import UNET, background_texture, background_unevenness
from common import report
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from svpgen import Generator
from svpgen.data.augment import dihedral
from svpgen.data.store import ParticleStore, provenance_record
from svpgen.diffusion.sample import denoise, to_uint8
from svpgen.diffusion.schedule import Denoiser, sampler, training_batch
from svpgen.diffusion.train import to_model_range, train_diffusion
from svpgen.diffusion.unet import UNet
from svpgen.evaluate import generative
from svpgen.evaluate.audit import realism_lenses
from svpgen.evaluate.features import PixelFeatures
from svpgen.simulate import SimConfig, simulate
from svpgen.training import epoch_generator

LABELS = ("air_bubble", "silicone_oil")
TRAIN = 400  # per class, as the quick preset


class TimeAndClass(nn.Module):
    """The U-Net's time embedding plus a learned class embedding (set ``labels`` before a call)."""

    def __init__(self, time_mlp: nn.Module, classes: int, dim: int):
        super().__init__()
        self.time_mlp, self.emb = time_mlp, nn.Embedding(classes, dim)
        nn.init.zeros_(self.emb.weight)
        self.labels: torch.Tensor | None = None

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.time_mlp(t) + self.emb(self.labels)


def train_conditional(images: torch.Tensor, labels: torch.Tensor) -> tuple[UNet, float]:
    """The quick U-Net's training loop on both classes at once, for UNET.epochs epochs
    (so twice the optimizer steps of one class); returns the EMA network and seconds."""
    cfg = UNET
    torch.manual_seed(cfg.seed)
    model = UNet(cfg.unet)
    model.time_mlp = TimeAndClass(model.time_mlp, len(LABELS), cfg.unet.dim * 4)
    model = model.to(memory_format=torch.channels_last)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        g = epoch_generator(cfg.seed, epoch)
        perm = torch.randperm(len(images), generator=g)
        for b in range(0, len(perm), cfg.batch_size):
            batch = perm[b : b + cfg.batch_size]
            x_in, t, target, _ = training_batch(cfg.schedule, dihedral(images[batch], g), g)
            model.time_mlp.labels = labels[batch]
            loss = nn.functional.mse_loss(
                model(x_in.contiguous(memory_format=torch.channels_last), t), target
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            ema.update_parameters(model)
    return ema.module.eval(), time.perf_counter() - start


@torch.no_grad()
def sample_conditional(net: UNet, label: int, n: int, seed: int = 3) -> np.ndarray:
    """n images of class ``label`` with EDM-DPM-Solver++-20 (batches seeded as
    Generator.sample seeds them)."""
    out = []
    for b, start in enumerate(range(0, n, 64)):
        m = min(64, n - start)
        sched = sampler("edm-dpmpp", UNET.schedule, 20, UNET.clip_sample)
        g = torch.Generator().manual_seed(seed * 1_000_003 + b)
        x = (torch.randn((m, 1, 64, 64), generator=g) * sched.init_noise_sigma).contiguous(
            memory_format=torch.channels_last
        )
        net.time_mlp.labels = torch.full((m,), label)
        out.append(
            to_uint8(denoise(Denoiser(net, UNET.schedule), sched, x, g), UNET.output_rounding)
        )
    return np.concatenate(out)


def judge(
    held: np.ndarray, mode_images: np.ndarray, mode_types: np.ndarray, gen: np.ndarray, n: int
) -> dict:
    pix = PixelFeatures()
    real_f = pix(held[:n])
    auc = realism_lenses(held, None, gen, n, n_jobs=-1)["two_sample_auc"]
    modes = generative.mode_coverage(mode_images, mode_types, gen, n_jobs=-1)
    return {
        "FID_pixels/floor": generative.fid(real_f, pix(gen))
        / generative.fid(real_f, pix(held[n:])),
        "AUC_logreg": auc["logreg"],
        "AUC_gbm": auc["gbm"],
        "background_texture_gen/real": background_texture(gen) / background_texture(held[:n]),
        "background_unevenness_gen/real": background_unevenness(gen)
        / background_unevenness(held[:n]),
        "max_mode_gap": modes["max_abs_diff"],
        "modes (real label / classified → gen)": ", ".join(
            f"{k} {modes['real'][k]:.2f}/{modes['real_classified'][k]:.2f}"
            f"→{modes['generated'][k]:.2f}"
            for k in modes["modes"]
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--n", type=int, default=300, help="generated images and real images per comparison"
    )
    args = ap.parse_args()
    n = args.n
    data, rows = {}, []
    cfg = replace(UNET, fid_epochs=(), checkpoint_every=UNET.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        for label in LABELS:  # the same images bench_diffusion_preset uses for each class
            sim = simulate(
                {label: TRAIN + 2 * n + 1400}, seed=77, config=SimConfig(workers=2, label_noise=0)
            ).particles
            store = ParticleStore.write(
                Path(tmp) / f"data_{label}", sim, provenance_record("bench_conditional_diffusion")
            )
            train = ParticleStore.write(
                Path(tmp) / f"train_{label}",
                store.take(np.arange(TRAIN)),
                provenance_record("train"),
            )
            images, types = np.array(store.images[:]), store.table["subtype"].to_numpy()
            data[label] = (images, types)
            start = time.perf_counter()
            train_diffusion(
                train.path, Path(tmp) / f"model_{label}", label, cfg, progress=False, device="cpu"
            )
            seconds = time.perf_counter() - start
            gen = Generator.from_pretrained(Path(tmp) / f"model_{label}", "cpu").sample(
                n, "edm-dpmpp", 20, seed=3
            )
            rows.append(
                {
                    "class": label,
                    "model": "quick U-Net, per class (baseline)",
                    "train_s": seconds,
                    **judge(
                        images[TRAIN : TRAIN + 2 * n],
                        images[TRAIN + 2 * n :],
                        types[TRAIN + 2 * n :],
                        gen,
                        n,
                    ),
                }
            )
    images = torch.cat([to_model_range(data[label][0][:TRAIN]) for label in LABELS])
    labels = torch.cat([torch.full((TRAIN,), i) for i in range(len(LABELS))])
    net, seconds = train_conditional(images, labels)
    for i, label in enumerate(LABELS):
        images, types = data[label]
        rows.append(
            {
                "class": label,
                "model": "conditional, both classes",
                "train_s": seconds / len(LABELS),
                **judge(
                    images[TRAIN : TRAIN + 2 * n],
                    images[TRAIN + 2 * n :],
                    types[TRAIN + 2 * n :],
                    sample_conditional(net, i, n),
                    n,
                ),
            }
        )
    report(
        "bench_conditional_diffusion",
        rows,
        {
            "n": n,
            "train_images_per_class": TRAIN,
            "epochs": UNET.epochs,
            "note": "conditional train_s is half its training time (both classes)",
        },
    )


if __name__ == "__main__":
    main()
