"""A diffusion model in a linear latent space: the ``pca-mlp`` network (EDM objective only).

Flow-imaging crops of one class are smooth and alike: on simulated droplets 64 principal
components of the (augmented) training images hold 99.8% of the pixel variance,
and what is left is sensor noise, nearly stationary. So the model is

* a fixed linear encoder: the training images' mean and top-``k`` principal directions
  (``fit``), with the residual's power spectrum;
* in the ``k`` latent coordinates, an EDM denoiser with per-coordinate preconditioning
  (each coordinate's own σ_data): ``D(z; σ) = prior(z; σ) + c_out·F(c_in·z, ¼·ln σ)`` where
  ``prior`` is the exact posterior mean of a fixed latent prior and the MLP F's output layer
  starts at zero, so an untrained model samples that prior and training learns how the
  class departs from it. The prior is one Gaussian (``mixture`` = 1: the principal
  coordinates' own variances, prior = c_skip·z) or a mixture of full-covariance Gaussians
  fitted to the training codes (``fit``). The mixture is what makes the quick model reliable:
  on simulated droplets an MLP started from one Gaussian can stay near it for thousands of
  steps (README, "the droplets' plateau"), and sampling the fitted mixture alone is already
  harder to tell from real images than those models' samples;
* outside the latent space, the exact Wiener shrinkage of a stationary Gaussian with the
  residual's spectrum (no parameters): the probability-flow ODE then draws sensor-like
  noise, not the blotches an under-trained U-Net leaves on flat backgrounds.

It is a drop-in for the U-Net: ``forward(c_in·x, t)`` returns the image-space EDM output F
of :mod:`svpgen.diffusion.schedule` (``t`` = ln σ mapped to [0, 1000)), so the same
checkpoints, EMA and diffusers samplers apply. Training noises the latent coordinates
directly (:func:`latent_training_batch`): the image-space EDM loss is the latent loss plus a
part without parameters, so its gradient is the same, at a fraction of the cost — thousands
of optimizer steps fit in the CPU budget.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from svpgen.data.augment import SYMMETRIES, Symmetry, apply_symmetry
from svpgen.diffusion.config import LatentConfig, ScheduleConfig
from svpgen.diffusion.schedule import edm_scalings, edm_sigma, edm_time
from svpgen.errors import SvpgenError

SIDE = 64
FREQUENCIES = 16  # random Fourier features of ¼·ln σ
# training images per mixture component at least: on 400 simulated droplets 64 components
# (6.3 images each) drew ≤ 1% near copies of a training image, 96 (4.2 each) 10%; 5 keeps
# the quick preset's 64 for a 400-image class that label noise has thinned to 320
IMAGES_PER_GAUSSIAN = 5


class _Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm, self.time = nn.LayerNorm(width), nn.Linear(2 * FREQUENCIES, width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(self.norm(h) + self.time(emb))


class LatentDenoiser(nn.Module):
    """EDM denoiser: PCA latent space + MLP, Wiener shrinkage outside it (module docstring)."""

    def __init__(self, cfg: LatentConfig, schedule: ScheduleConfig):
        super().__init__()
        self.cfg, self.schedule = cfg, schedule
        pixels = SIDE * SIDE
        self.register_buffer("mean", torch.zeros(pixels))
        self.register_buffer("basis", torch.zeros(cfg.components, pixels))  # orthonormal rows
        self.register_buffer("scale", torch.ones(cfg.components))  # each coordinate's std
        self.register_buffer(
            "residual_psd", torch.zeros(SIDE, SIDE)
        )  # per-frequency variance of the residual
        self.register_buffer(
            "frequencies", torch.randn(FREQUENCIES, generator=torch.Generator().manual_seed(0)) * 2
        )
        self.inp = nn.Linear(cfg.components + 2 * FREQUENCIES, cfg.width)
        self.blocks = nn.ModuleList(_Block(cfg.width) for _ in range(cfg.depth))
        self.out = nn.Sequential(nn.LayerNorm(cfg.width), nn.Linear(cfg.width, cfg.components))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)
        if (
            cfg.mixture > 1
        ):  # the latent prior's Gaussian mixture: weights, means, covariances' eigenpairs
            k, m = cfg.components, cfg.mixture
            self.register_buffer("mixture_log_weight", torch.zeros(m))
            self.register_buffer("mixture_mean", torch.zeros(m, k))
            self.register_buffer(
                "mixture_axes", torch.eye(k).repeat(m, 1, 1)
            )  # columns: eigenvectors
            self.register_buffer("mixture_var", torch.ones(m, k))  # eigenvalues

    @torch.no_grad()
    def fit(self, images: torch.Tensor, symmetries: tuple[Symmetry, ...] = SYMMETRIES) -> None:
        """Mean, principal directions and residual spectrum of ``images`` (N×1×64×64 in the
        model range), taken under ``symmetries`` (default: all eight of the square), as
        training sees them."""
        x = images[:, 0].float()
        flat = torch.cat([apply_symmetry(x, e) for e in symmetries]).reshape(-1, SIDE * SIDE)
        k = self.cfg.components
        if k >= len(flat):
            raise SvpgenError(
                f"pca-mlp with {k} components needs more than {k} training views (got "
                f"{len(flat)}); use fewer --latent-components"
            )
        mean = flat.mean(0)
        centred = flat - mean
        # randomized SVD of the top k (+16 for accuracy): ~0.1 s where a full SVD takes ~20 s
        with torch.random.fork_rng():
            torch.manual_seed(0)
            _, _, v = torch.svd_lowrank(centred, q=min(k + 16, *centred.shape), niter=4)
        basis = v[:, :k].T.contiguous()
        z = centred @ basis.T
        residual = (centred - z @ basis).reshape(-1, SIDE, SIDE)
        self.mean.copy_(mean)
        self.basis.copy_(basis)
        self.scale.copy_(z.std(0).clamp_min(1e-4))
        self.residual_psd.copy_((torch.fft.fft2(residual).abs() ** 2).mean(0).div(SIDE * SIDE))
        if self.cfg.mixture > 1:
            self._fit_mixture(z, len(x))

    def _fit_mixture(self, z: torch.Tensor, images: int) -> None:
        """The latent prior: a Gaussian mixture fitted by EM (scikit-learn) to the training
        views' latent codes; each covariance is floored by the sensor noise's variance per
        direction (the residual spectrum's mean), below which the images hold nothing. With
        fewer than ``IMAGES_PER_GAUSSIAN`` training images per component, only that many
        components are fitted and the rest get weight 0 (a component per image or two
        would redraw the training images): log weight −1e30, finite because the EMA
        interpolates buffers too and −inf − (−inf) is NaN."""
        from sklearn.mixture import GaussianMixture

        m = max(1, min(self.cfg.mixture, images // IMAGES_PER_GAUSSIAN))
        fitted = GaussianMixture(
            m,
            covariance_type="full",
            reg_covar=float(self.residual_psd.mean()),
            max_iter=200,
            random_state=0,
        ).fit(z.double().numpy())
        var, axes = np.linalg.eigh(fitted.covariances_)
        self.mixture_log_weight.fill_(-1e30)
        self.mixture_log_weight[:m] = torch.from_numpy(np.log(fitted.weights_))
        self.mixture_mean[:m] = torch.from_numpy(fitted.means_)
        self.mixture_axes[:m] = torch.from_numpy(axes)
        self.mixture_var[:m] = torch.from_numpy(var)

    def prior_denoise(self, z: torch.Tensor, sig: torch.Tensor) -> torch.Tensor:
        """E[z₀ | z] under the latent prior, for z = z₀ + σ·n (N×k, ``sig`` N×1): per-coordinate
        Gaussian shrinkage, or each mixture component's Wiener estimate weighted by the
        component's posterior probability (its likelihood under covariance Σ + σ²I)."""
        if self.cfg.mixture == 1:
            return (
                self.scale**2 / (sig**2 + self.scale**2) * z
            )  # c_skip·z, in the arithmetic the Gaussian-only model used
        d = torch.einsum("nj,mji->nmi", z, self.mixture_axes) - torch.einsum(
            "mj,mji->mi", self.mixture_mean, self.mixture_axes
        )
        var = (
            self.mixture_var + sig[:, :, None] ** 2
        )  # N×M×k: the noisy codes' variance along each axis
        posterior = torch.softmax(
            self.mixture_log_weight - 0.5 * (var.log() + d**2 / var).sum(2), 1
        )  # N×M
        shrunk = posterior[:, :, None] * d * (self.mixture_var / var)
        return posterior @ self.mixture_mean + torch.einsum(
            "nmi,mji->nj", shrunk, self.mixture_axes
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent coordinates (N×k) of images (N×1×64×64)."""
        return (x.reshape(len(x), -1) - self.mean) @ self.basis.T

    def denoise_latent(self, z: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The denoised latent coordinates from noisy ``z`` (N×k) at per-row ``sigma``."""
        sig = sigma.reshape(len(z), 1)
        var = sig**2 + self.scale**2
        c_out, c_in = sig * self.scale / var.sqrt(), var.rsqrt()
        angle = (torch.log(sig) / 4) * self.frequencies * (2 * math.pi)
        emb = torch.cat([angle.sin(), angle.cos()], 1)
        h = self.inp(torch.cat([c_in * z, emb], 1))
        for block in self.blocks:
            h = block(h, emb)
        return self.prior_denoise(z, sig) + c_out * self.out(h)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """D(x; σ): the denoised images (N×1×64×64) from noisy ``x`` at per-image ``sigma``."""
        n = len(x)
        centred = x.reshape(n, -1) - self.mean
        z = centred @ self.basis.T
        outside = (centred - z @ self.basis).reshape(n, SIDE, SIDE)
        sig = sigma.reshape(n, 1)
        z_hat = self.denoise_latent(z, sig)
        gain = self.residual_psd / (self.residual_psd + sig.reshape(n, 1, 1) ** 2)
        shrunk = torch.fft.ifft2(torch.fft.fft2(outside) * gain).real.reshape(n, -1)
        shrunk = shrunk - (shrunk @ self.basis.T) @ self.basis  # stay outside the latent space
        return (self.mean + z_hat @ self.basis + shrunk).reshape(x.shape)

    def forward(self, x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Images: c_in·x (N×1×64×64) → the image-space EDM output F. Latents (N×k, as
        :func:`latent_training_batch` makes them): noisy → denoised latent coordinates."""
        if x_in.dim() == 2:
            return self.denoise_latent(x_in, edm_sigma(t, self.schedule))
        sigma = edm_sigma(t, self.schedule).reshape(-1, 1, 1, 1)
        c_skip, c_out, c_in = edm_scalings(sigma, self.schedule.sigma_data)
        x = x_in / c_in
        return (self.denoise(x, sigma) - c_skip * x) / c_out


def latent_training_batch(
    model: LatentDenoiser, cfg: ScheduleConfig, x0: torch.Tensor, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy latents, network timestep, clean latents, per-sample weight) for clean images
    ``x0``. Isotropic image noise σ·n projects to σ·n' on the orthonormal latent axes, and
    the image-space EDM loss, the mean of ((D − x0)/c_out)² over the pixels, is the mean of
    (ẑ − z0)² over the k latent coordinates times weight = k / (c_out² · pixels), plus a
    term without parameters (outside the latent space): the same gradients."""
    n = len(x0)
    # every draw on the CPU generator (the same batches on any device)
    sigma = torch.exp(cfg.p_mean + cfg.p_std * torch.randn(n, generator=g)).clamp(
        cfg.sigma_min, cfg.sigma_max
    )
    z0 = model.encode(x0)
    noise = sigma[:, None] * torch.randn(z0.shape, generator=g)
    sigma = sigma.to(z0.device)
    noisy = z0 + noise.to(z0.device)
    _, c_out, _ = edm_scalings(sigma, cfg.sigma_data)
    return noisy, edm_time(sigma, cfg), z0, z0.shape[1] / (c_out**2 * SIDE * SIDE)
