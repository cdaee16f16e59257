"""The diffusers schedules reproduce the closed-form DDPM equations (Ho et al. 2020)."""

import numpy as np
import torch

from svpgen.diffusion.schedule import ScheduleConfig, sampler, training_scheduler


def closed_form(T=1000):
    betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
    alphas = 1 - betas
    return betas, alphas, np.cumprod(alphas)


def test_forward_process_matches_closed_form():
    sched = training_scheduler(ScheduleConfig())
    _, _, abar = closed_form()
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    eps = torch.randn_like(x0)
    t = torch.tensor([0, 10, 500, 999])
    xt = sched.add_noise(x0, eps, t)
    a = torch.tensor(abar[t.numpy()], dtype=torch.float32)[:, None, None, None]
    torch.testing.assert_close(xt, a.sqrt() * x0 + (1 - a).sqrt() * eps, atol=1e-5, rtol=1e-4)


def test_ddpm_posterior_matches_closed_form():
    betas, alphas, abar = closed_form()
    sched = sampler("ddpm", ScheduleConfig())
    t = 600
    x0 = torch.rand(2, 1, 8, 8) * 1.6 - 0.8
    eps = torch.randn_like(x0)
    xt = np.sqrt(abar[t]) * x0 + np.sqrt(1 - abar[t]) * eps
    out = sched.step(eps, t, xt, generator=torch.Generator().manual_seed(0)).prev_sample
    z = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    mean = (np.sqrt(abar[t - 1]) * betas[t] / (1 - abar[t])) * x0 + (
        np.sqrt(alphas[t]) * (1 - abar[t - 1]) / (1 - abar[t])
    ) * xt
    var = (1 - abar[t - 1]) / (1 - abar[t]) * betas[t]
    torch.testing.assert_close(out, (mean + np.sqrt(var) * z).float(), atol=1e-4, rtol=1e-3)


def test_sampler_step_counts():
    cfg = ScheduleConfig()
    assert len(sampler("ddpm", cfg).timesteps) == 1000
    assert len(sampler("ddim", cfg).timesteps) == 50
    assert len(sampler("dpmpp", cfg).timesteps) == 20
    assert len(sampler("ddim", ScheduleConfig(timesteps=500), 25).timesteps) == 25
