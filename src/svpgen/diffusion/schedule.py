"""Noise schedules and samplers, all from diffusers.

Training uses the paper's DDPM forward process: T = 1000 steps, linear betas
1e-4 … 0.02, ε-prediction. Sampling offers the paper's ancestral ``ddpm`` sampler (all T
steps), ``ddim`` (deterministic, default 50 steps) and ``dpmpp`` (DPM-Solver++ 2M,
default 20 steps, with x₀ thresholding: without it, samples of briefly trained models
saturate to black/white); ``benchmarks/bench_sampler_quality.py`` compares their quality.
The paper's released code uses T = 500; ``timesteps`` makes that a one-line change
(``--timesteps 500``).
"""

from __future__ import annotations

from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from svpgen.diffusion.config import SAMPLERS, ScheduleConfig
from svpgen.errors import SvpgenError

DEFAULT_STEPS = {"ddpm": None, "ddim": 50, "dpmpp": 20}  # None: all T steps


def training_scheduler(cfg: ScheduleConfig) -> DDPMScheduler:
    """The forward (noising) process used for training: ``add_noise(x0, ε, t)``."""
    return DDPMScheduler(**cfg.scheduler_kwargs(), clip_sample=True, variance_type="fixed_small")


def sampler(name: str, cfg: ScheduleConfig, steps: int | None = None, clip: bool = True):
    """A configured diffusers scheduler with ``set_timesteps`` already called. ``clip``
    keeps the x̂₀ predictions in [-1, 1] (clipping for ddpm/ddim, dynamic thresholding for
    dpmpp); without it ``ddpm`` is exactly the paper's Algorithm 2 as the authors ran it."""
    if name == "ddpm":
        sched = DDPMScheduler(**cfg.scheduler_kwargs(), clip_sample=clip, variance_type="fixed_small")
    elif name == "ddim":
        sched = DDIMScheduler(**cfg.scheduler_kwargs(), clip_sample=clip, set_alpha_to_one=False, timestep_spacing="trailing")
    elif name == "dpmpp":
        sched = DPMSolverMultistepScheduler(
            **cfg.scheduler_kwargs(), algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing",
            thresholding=clip, sample_max_value=1.0, lower_order_final=True,
        )
    else:
        raise SvpgenError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    n = steps or DEFAULT_STEPS[name] or cfg.timesteps
    sched.set_timesteps(min(n, cfg.timesteps))
    return sched
