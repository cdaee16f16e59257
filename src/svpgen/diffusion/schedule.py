"""Noising processes, training targets and samplers; every sampler is a diffusers scheduler.

Objectives (:class:`~svpgen.diffusion.config.ScheduleConfig`):

* ``epsilon`` — the paper's DDPM: T = 1000 linear betas 1e-4 … 0.02, the network predicts ε.
  Samplers: the paper's ancestral ``ddpm`` (all T steps), ``ddim`` (deterministic, 50),
  ``dpmpp`` (DPM-Solver++ 2M, 20, x₀ thresholding: without it samples of briefly trained
  ε-models saturate to black/white) and ``sde-dpmpp`` (SDE-DPM-Solver++, 20 steps).
  The paper's released code uses T = 500: ``--timesteps 500``.
* ``v`` — the same process, the network predicts v; the same samplers.
* ``edm`` — Karras et al. 2022 preconditioning; samplers ``edm-sde`` (diffusers'
  EDM SDE-DPM-Solver++ 2M, 20 steps), ``edm-dpmpp`` (deterministic) and ``edm-euler``.

The network always sees a timestep in [0, T): for EDM, ln σ is mapped linearly from
[ln σ_min, ln σ_max] onto [0, 1000) — the same mapping in training and sampling
(:class:`Denoiser` translates diffusers' c_noise = ¼·ln σ back).
``benchmarks/bench_sampler_quality.py`` compares samplers on trained models.
"""

from __future__ import annotations

import math

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EDMDPMSolverMultistepScheduler,
    EDMEulerScheduler,
)
from torch import nn

from svpgen.diffusion.config import SAMPLERS, ScheduleConfig
from svpgen.errors import SvpgenError

DEFAULT_STEPS = {
    "ddpm": None,
    "ddim": 50,
    "dpmpp": 20,
    "sde-dpmpp": 20,
    "edm-sde": 20,
    "edm-dpmpp": 20,
    "edm-euler": 40,
}  # None: all T
EDM_TIME_SCALE = 1000.0


def training_scheduler(cfg: ScheduleConfig) -> DDPMScheduler:
    """The DDPM forward (noising) process of the ε and v objectives: ``add_noise(x0, ε, t)``."""
    return DDPMScheduler(**cfg.scheduler_kwargs(), clip_sample=True, variance_type="fixed_small")


def sampler(name: str, cfg: ScheduleConfig, steps: int | None = None, clip: bool = True):
    """A configured diffusers scheduler with ``set_timesteps`` already called. ``clip``
    keeps the x̂₀ predictions in [-1, 1] (clipping for ddpm/ddim, dynamic thresholding for
    the DPM solvers); without it ``ddpm`` is exactly the paper's Algorithm 2 as the authors
    ran it."""
    if name == "ddpm":
        sched = DDPMScheduler(
            **cfg.scheduler_kwargs(), clip_sample=clip, variance_type="fixed_small"
        )
    elif name == "ddim":
        sched = DDIMScheduler(
            **cfg.scheduler_kwargs(),
            clip_sample=clip,
            set_alpha_to_one=False,
            timestep_spacing="trailing",
        )
    elif name in ("dpmpp", "sde-dpmpp"):
        sched = DPMSolverMultistepScheduler(
            **cfg.scheduler_kwargs(),
            algorithm_type="dpmsolver++" if name == "dpmpp" else "sde-dpmsolver++",
            solver_order=2,
            timestep_spacing="trailing",
            thresholding=clip,
            sample_max_value=1.0,
            lower_order_final=True,
        )
    elif name in ("edm-sde", "edm-dpmpp"):
        sched = EDMDPMSolverMultistepScheduler(
            **cfg.edm_kwargs(),
            algorithm_type="sde-dpmsolver++" if name == "edm-sde" else "dpmsolver++",
            solver_order=2,
            thresholding=clip,
            sample_max_value=1.0,
        )
    elif name == "edm-euler":
        sched = EDMEulerScheduler(**cfg.edm_kwargs())
    else:
        raise SvpgenError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    n = steps or DEFAULT_STEPS[name] or cfg.timesteps
    sched.set_timesteps(n if name.startswith("edm") else min(n, cfg.timesteps))
    return sched


def edm_time(sigma: torch.Tensor, cfg: ScheduleConfig) -> torch.Tensor:
    """σ → the network's timestep: ln σ mapped linearly from [ln σ_min, ln σ_max] to [0, 1000]."""
    lo, hi = math.log(cfg.sigma_min), math.log(cfg.sigma_max)
    return ((torch.log(sigma) - lo) / (hi - lo) * EDM_TIME_SCALE).clamp(0, EDM_TIME_SCALE)


def edm_sigma(t: torch.Tensor, cfg: ScheduleConfig) -> torch.Tensor:
    """The network's timestep → σ: the inverse of :func:`edm_time` (on [σ_min, σ_max])."""
    lo, hi = math.log(cfg.sigma_min), math.log(cfg.sigma_max)
    return torch.exp(lo + t.float() / EDM_TIME_SCALE * (hi - lo))


def edm_scalings(
    sigma: torch.Tensor, sigma_data: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in) of the EDM preconditioning."""
    var = sigma**2 + sigma_data**2
    return sigma_data**2 / var, sigma * sigma_data / var.sqrt(), 1 / var.sqrt()


class Denoiser(nn.Module):
    """The network as a diffusers scheduler expects it: ε or v for the DDPM process; the
    raw F (the scheduler applies c_skip·x + c_out·F) for EDM, whose ``timestep`` is
    diffusers' c_noise = ¼·ln σ."""

    def __init__(self, unet: nn.Module, cfg: ScheduleConfig):
        super().__init__()
        self.unet, self.cfg = unet, cfg

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.cfg.objective == "edm":
            t = edm_time(torch.exp(4.0 * t.float()), self.cfg)
        return self.unet(x, t)


def training_batch(
    cfg: ScheduleConfig,
    x0: torch.Tensor,
    g: torch.Generator,
    ddpm: DDPMScheduler | None = None,
    min_snr_gamma: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(network input, network timestep, target, per-sample loss weight or None) for a batch
    of clean images ``x0``; every random draw comes from ``g``."""
    n = len(x0)
    noise = torch.randn(x0.shape, generator=g)
    if cfg.objective == "edm":
        sigma = torch.exp(cfg.p_mean + cfg.p_std * torch.randn(n, generator=g)).view(-1, 1, 1, 1)
        c_skip, c_out, c_in = edm_scalings(sigma, cfg.sigma_data)
        x = x0 + sigma * noise
        return c_in * x, edm_time(sigma.flatten(), cfg), (x0 - c_skip * x) / c_out, None
    t = torch.randint(0, cfg.timesteps, (n,), generator=g)
    x_t = ddpm.add_noise(x0, noise, t)
    target = ddpm.get_velocity(x0, noise, t) if cfg.objective == "v" else noise
    weight = None
    if min_snr_gamma:
        abar = ddpm.alphas_cumprod[t]
        snr = abar / (1 - abar)
        weight = torch.clamp(snr, max=min_snr_gamma) / (snr + 1 if cfg.objective == "v" else snr)
    return x_t, t, target, weight
