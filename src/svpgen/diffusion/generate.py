"""``svpgen generate``: sample a trained model into a ParticleStore (source=generated)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from svpgen.config import DiffusionConfig
from svpgen.data.store import ParticleStore, Particles, WriteMode, provenance_record
from svpgen.diffusion.sample import sample_images
from svpgen.diffusion.train import load_generator_model


def generate_to_store(
    model_dir: str | Path,
    out: str | Path,
    n: int,
    sampler: str = "dpmpp",
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "cpu",
    trajectory_png: str | Path | None = None,
    grid_png: str | Path | None = None,
    mode: WriteMode = "create",
    command: str = "svpgen generate",
    keep: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[ParticleStore, float]:
    """Sample ``n`` images and write them as generated particles; returns (store, seconds).
    ``keep`` (images → bool mask) may drop images before they are written."""
    model, config = load_generator_model(model_dir)
    cfg = DiffusionConfig.from_dict(config["diffusion"])
    label = config["label"]
    start = time.perf_counter()
    images, trajectory = sample_images(
        model, cfg.schedule, n, sampler, steps, seed, batch_size, device, progress=True,
        trajectory_frames=8 if trajectory_png else 0,
    )
    seconds = time.perf_counter() - start
    dropped = 0
    if keep is not None:
        mask = keep(images)
        dropped = int((~mask).sum())
        images = images[mask]
    n = len(images)
    prefix = f"gen-{label}-s{seed}-{sampler}"
    particles = Particles.from_arrays(images, labels=label, source="generated", ids=[f"{prefix}-{i:07d}" for i in range(n)], origins=str(model_dir))
    record = provenance_record(command, seed=seed, model=str(Path(model_dir).resolve()), sampler=sampler, steps=steps, label=label, filtered_out=dropped)
    store = ParticleStore.write(out, particles, record, mode=mode)
    if trajectory_png:
        from svpgen.plots import denoising_strip

        denoising_strip(trajectory, trajectory_png, title=f"{label}: {sampler} denoising")
    if grid_png:
        from svpgen.plots import sample_grid

        sample_grid({f"generated {label}": images[:32]}, grid_png, title=f"{sampler} samples")
    return store, seconds
