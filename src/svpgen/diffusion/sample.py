"""Generation with a trained U-Net and a diffusers sampler: batched, deterministic per
(seed, batch size), optionally recording the denoising trajectory (the paper's Fig. 2)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from svpgen.data.preprocess import IMAGE_SIZE
from svpgen.diffusion.config import DiffusionConfig
from svpgen.diffusion.schedule import Denoiser
from svpgen.diffusion.schedule import sampler as make_sampler


def to_uint8(x: torch.Tensor, rounding: str = "round") -> np.ndarray:
    """Model range [-1, 1] (N×1×S×S) → uint8 N×S×S: ``round`` to nearest, or ``truncate``
    as ``((x + 1) / 2 · 255).clip(0, 255).astype(uint8)`` (the authors' conversion)."""
    scaled = ((x.float() + 1) / 2 * 255).clamp(0, 255)
    scaled = scaled.round() if rounding == "round" else scaled.floor()
    return scaled.to(torch.uint8).squeeze(1).cpu().numpy()


def step_label(t, config: DiffusionConfig) -> str:
    """A denoising step as a person reads it: the timestep t, or the noise level σ for EDM
    (whose schedulers step on c_noise = ¼·ln σ)."""
    if config.schedule.objective == "edm":
        return f"σ={float(torch.exp(4 * torch.as_tensor(t, dtype=torch.float64))):.3g}"
    return f"t={int(t)}"


@torch.no_grad()
def denoise(
    model: torch.nn.Module, sched, x: torch.Tensor, generator: torch.Generator, on_step=None
) -> torch.Tensor:
    """Run a configured diffusers scheduler from noise ``x`` to a sample (float, model
    range); per-step noise comes from ``generator`` (a CPU generator: the same noise on
    any device). ``on_step(i, t, x)`` is called after every step."""
    for i, t in enumerate(sched.timesteps):
        t_batch = (
            torch.as_tensor(t).reshape(1).expand(len(x)).to(x.device)
        )  # EDM timesteps are floats (c_noise)
        out = model(sched.scale_model_input(x, t), t_batch)
        x = sched.step(out, t, x, generator=generator).prev_sample
        if on_step is not None:
            on_step(i, t, x)
    return x


@torch.no_grad()
def sample_images(
    model: torch.nn.Module,
    config: DiffusionConfig,
    n: int,
    sampler: str = "dpmpp",
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
    trajectory_frames: int = 0,
    channels_last: bool = True,
) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Draw ``n`` images with ``config``'s schedule, clipping and uint8 conversion. Returns
    (uint8 N×S×S, [(step label, uint8 frames)] of the first batch's first images at
    ``trajectory_frames`` evenly spaced steps). channels_last is ~1.4× faster for the
    quick U-Net on CPU (benchmarks/bench_diffusion.py)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = Denoiser(model.to(device, memory_format=fmt).eval(), config.schedule)
    out = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    trajectory: list[tuple[str, np.ndarray]] = []

    def make():  # a fresh scheduler per batch: multistep solvers keep state
        return make_sampler(sampler, config.schedule, steps, config.clip_sample)

    n_steps = len(make().timesteps)
    bar = tqdm(
        total=n * n_steps, unit="img-step", desc=f"sample {sampler}-{n_steps}", disable=not progress
    )
    for b, start in enumerate(range(0, n, batch_size)):
        m = min(batch_size, n - start)
        sched = make()
        g = torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + b)
        x = (
            torch.randn((m, 1, IMAGE_SIZE, IMAGE_SIZE), generator=g).to(device)
            * sched.init_noise_sigma
        ).contiguous(memory_format=fmt)
        keep = (
            set(np.linspace(0, n_steps - 1, trajectory_frames).round().astype(int))
            if (b == 0 and trajectory_frames)
            else set()
        )

        def on_step(i: int, t, x: torch.Tensor) -> None:
            if i in keep:
                trajectory.append((step_label(t, config), to_uint8(x[:8], config.output_rounding)))
            bar.update(m)

        x = denoise(model, sched, x, g, on_step)
        out[start : start + m] = to_uint8(x, config.output_rounding)
    bar.close()
    return out, trajectory
