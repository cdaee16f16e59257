"""``svpgen generate``: sample a trained model into a ParticleStore (source=generated)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from svpgen.data.store import Particles, ParticleStore, WriteMode, provenance_record
from svpgen.diffusion.generator import Generator
from svpgen.diffusion.sample import sample_images


def generate_to_store(
    generator: Generator,
    out: str | Path,
    n: int,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    trajectory_png: str | Path | None = None,
    grid_png: str | Path | None = None,
    mode: WriteMode = "create",
    command: str = "svpgen generate",
    keep: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[ParticleStore, float]:
    """Sample ``n`` images (the model's recommended sampler unless told otherwise) and write
    them as generated particles; returns (store, seconds). ``keep`` (images → bool mask)
    may drop images before they are written."""
    sampler, steps = generator.sampling(sampler, steps)
    label = generator.label
    start = time.perf_counter()
    images, trajectory = sample_images(
        generator.unet,
        generator.config,
        n,
        sampler,
        steps,
        seed,
        batch_size,
        generator.device,
        progress=True,
        trajectory_frames=8 if trajectory_png else 0,
    )
    seconds = time.perf_counter() - start
    dropped = 0
    if keep is not None:
        mask = keep(images)
        dropped = int((~mask).sum())
        images = images[mask]
    origin = str(generator.path) if generator.path else "in-memory generator"
    prefix = f"gen-{label}-s{seed}-{sampler}"
    particles = Particles.from_arrays(
        images,
        labels=label,
        source="generated",
        ids=[f"{prefix}-{i:07d}" for i in range(len(images))],
        origins=origin,
    )
    record = provenance_record(
        command,
        seed=seed,
        model=str(Path(origin).resolve()) if generator.path else origin,
        sampler=sampler,
        steps=steps,
        label=label,
        filtered_out=dropped,
    )
    store = ParticleStore.write(out, particles, record, mode=mode)
    if trajectory_png:
        from svpgen.plots import denoising_strip

        denoising_strip(trajectory, trajectory_png, title=f"{label}: {sampler} denoising")
    if grid_png:
        from svpgen.plots import sample_grid

        sample_grid({f"generated {label}": images[:32]}, grid_png, title=f"{sampler} samples")
    return store, seconds
