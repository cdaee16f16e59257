"""The ``pca-mlp`` diffusion network: its fitted latent space, its exact Gaussian and
Gaussian-mixture start, the latent training loss (the image-space EDM loss's gradients),
training and sampling."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from svpgen import Generator
from svpgen.cli import main
from svpgen.diffusion.config import PRESETS as DIFFUSION_PRESETS
from svpgen.diffusion.config import DiffusionConfig, LatentConfig, ScheduleConfig
from svpgen.diffusion.latent import LatentDenoiser, latent_training_batch
from svpgen.diffusion.schedule import edm_scalings, edm_sigma, edm_time
from svpgen.errors import SvpgenError

SCHEDULE = ScheduleConfig(objective="edm", p_mean=-0.4, p_std=1.6)


def low_rank_images(
    n: int = 96, rank: int = 4, noise: float = 0.01, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images = a smooth mean + ``rank`` dihedrally symmetric smooth patterns with random
    amplitudes + white noise: a known latent space (its directions are returned)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    r = torch.hypot(yy - 31.5, xx - 31.5)
    patterns = torch.stack(
        [torch.exp(-(((r - c) / 4) ** 2)) for c in (0.0, 8.0, 16.0, 24.0)][:rank]
    ).reshape(rank, -1)
    directions = torch.linalg.qr(patterns.T)[
        0
    ].T  # orthonormal, radially symmetric: unchanged by rotations/flips
    amplitudes = torch.randn(n, rank, generator=g) * torch.tensor([8.0, 4.0, 2.0, 1.0][:rank])
    images = 0.2 + amplitudes @ directions + noise * torch.randn(n, 64 * 64, generator=g)
    return images.reshape(n, 1, 64, 64), directions


def test_fit_finds_the_latent_space_scales_and_residual_spectrum():
    images, directions = low_rank_images()
    model = LatentDenoiser(LatentConfig(components=4, width=16, depth=1), SCHEDULE)
    model.fit(images)
    # the fitted directions span the true ones
    overlap = torch.linalg.svdvals(model.basis @ directions.T)
    assert overlap.min() > 0.999
    torch.testing.assert_close(model.basis @ model.basis.T, torch.eye(4), atol=1e-4, rtol=0)
    assert sorted(model.scale.tolist(), reverse=True) == pytest.approx([8, 4, 2, 1], rel=0.25)
    # white residual noise of std 0.01: a flat spectrum of variance 1e-4 per frequency
    assert model.residual_psd.mean().item() == pytest.approx(1e-4, rel=0.1)
    with pytest.raises(SvpgenError, match="components"):
        LatentDenoiser(LatentConfig(components=96 * 8), SCHEDULE).fit(images)


def test_untrained_network_is_the_exact_gaussian_posterior_mean():
    """Zero-initialised output: D is the per-coordinate Gaussian shrinkage in the latent
    space and the residual spectrum's Wiener shrinkage outside it."""
    images, _ = low_rank_images()
    model = LatentDenoiser(LatentConfig(components=4, width=16, depth=2), SCHEDULE)
    model.fit(images)
    sigma = torch.tensor([0.05, 0.5, 3.0])
    z = torch.randn(3, 4)
    s2 = model.scale**2
    torch.testing.assert_close(model.denoise_latent(z, sigma), z * s2 / (s2 + sigma[:, None] ** 2))
    # a pure outside-the-latent-space input, with a flat residual spectrum v: D shrinks it
    # by v / (v + σ²)
    outside = torch.randn(3, 64 * 64)
    outside -= (outside @ model.basis.T) @ model.basis
    x = (model.mean + outside).reshape(3, 1, 64, 64)
    v = model.residual_psd.mean()
    expected = model.mean + outside * (v / (v + sigma[:, None] ** 2))
    torch.testing.assert_close(
        model.denoise(x, sigma).reshape(3, -1), expected, atol=2e-3, rtol=0.05
    )


def test_untrained_network_with_a_mixture_prior_is_the_mixture_posterior_mean():
    """mixture > 1: the fit finds the training codes' clusters, and the untrained D is
    E[z₀ | z] under the fitted mixture: Σ_m P(m | z) (μ_m + Σ_m (Σ_m + σ²I)⁻¹ (z − μ_m)),
    here computed directly with full matrices."""
    images, directions = low_rank_images(n=120)
    images[:60] += 16 * directions[1].reshape(
        1, 1, 64, 64
    )  # two clusters, 4 std apart along one latent direction
    model = LatentDenoiser(LatentConfig(components=4, width=16, depth=2, mixture=2), SCHEDULE)
    model.fit(images)
    z_train = model.encode(images)
    clusters = torch.stack([z_train[:60].mean(0), z_train[60:].mean(0)])
    distance = torch.cdist(model.mixture_mean, clusters)  # fitted means × true cluster means
    assert sorted(distance.argmin(1).tolist()) == [0, 1]  # one component per cluster, not one blend
    assert distance.min(1).values.max() < 0.1 * torch.dist(clusters[0], clusters[1])
    assert model.mixture_log_weight.exp().tolist() == pytest.approx([0.5, 0.5], abs=0.02)
    cov = (
        model.mixture_axes
        @ torch.diag_embed(model.mixture_var)
        @ model.mixture_axes.transpose(1, 2)
    )
    sigma = torch.tensor([0.05, 0.5, 3.0, 20.0])
    z = z_train[[0, 70, 5, 100]] + sigma[:, None] * torch.randn(
        4, 4, generator=torch.Generator().manual_seed(1)
    )
    expected = []
    for zi, s in zip(z.double(), sigma.double()):
        noisy_cov = cov.double() + s**2 * torch.eye(4, dtype=torch.float64)
        log_p = model.mixture_log_weight.double() + torch.distributions.MultivariateNormal(
            model.mixture_mean.double(), noisy_cov
        ).log_prob(zi)
        means = (
            model.mixture_mean.double()
            + (
                cov.double()
                @ torch.linalg.solve(noisy_cov, (zi - model.mixture_mean.double())[..., None])
            )[..., 0]
        )
        expected.append(torch.softmax(log_p, 0) @ means)
    torch.testing.assert_close(
        model.denoise_latent(z, sigma).double(), torch.stack(expected), atol=1e-3, rtol=1e-3
    )
    # more components than one per 5 training images: only that many are fitted, the rest weigh 0
    few = LatentDenoiser(LatentConfig(components=4, width=16, depth=1, mixture=50), SCHEDULE)
    few.fit(images[:40])
    assert (few.mixture_log_weight > -1e29).sum() == 40 // 5
    assert torch.isfinite(few.denoise_latent(z, sigma)).all()
    with pytest.raises(SvpgenError, match="mixture"):
        LatentConfig(mixture=0)


def test_latent_loss_has_the_image_space_loss_gradients():
    images, _ = low_rank_images(n=16)
    model = LatentDenoiser(LatentConfig(components=4, width=16, depth=2), SCHEDULE)
    model.fit(images)
    torch.nn.init.normal_(model.out[1].weight, std=0.1)  # a network that is not at its start
    g = torch.Generator().manual_seed(3)
    sigma = torch.exp(torch.randn(16, generator=g) - 0.4)
    x = images + sigma.view(-1, 1, 1, 1) * torch.randn(images.shape, generator=g)
    t = edm_time(sigma, SCHEDULE)
    c_skip, c_out, c_in = edm_scalings(sigma.view(-1, 1, 1, 1), SCHEDULE.sigma_data)

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    target = (images - c_skip * x) / c_out
    image_loss = ((model(c_in * x, t) - target) ** 2).flatten(1).mean(1).mean()
    z0, z = model.encode(images), model.encode(x)
    weight = 4 / (c_out.flatten() ** 2 * 64 * 64)
    latent_loss = (((model(z, t) - z0) ** 2).mean(1) * weight).mean()
    for a, b in zip(grads(image_loss), grads(latent_loss)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-3)
    # the training batch draws the same kind of thing: latents at σ, the network's
    # timestep, the weight
    noisy, t, clean, w = latent_training_batch(
        model, SCHEDULE, images, torch.Generator().manual_seed(0)
    )
    assert noisy.shape == clean.shape == (16, 4) and t.min() >= 0 and t.max() <= 1000
    torch.testing.assert_close(clean, z0)
    drawn = edm_sigma(t, SCHEDULE)  # the σ behind each row: its weight is the image-space loss's
    torch.testing.assert_close(
        w, 4 / (edm_scalings(drawn, SCHEDULE.sigma_data)[1] ** 2 * 64 * 64), rtol=1e-4, atol=0
    )
    big, small = drawn.argmax(), drawn.argmin()
    assert (noisy - clean)[big].std() > (noisy - clean)[small].std()


def test_config_needs_edm_and_mse_for_the_latent_network():
    with pytest.raises(SvpgenError, match="pca-mlp"):
        DiffusionConfig(network="pca-mlp")
    with pytest.raises(SvpgenError, match="unknown network"):
        DiffusionConfig(network="vae")
    cfg = DiffusionConfig(network="pca-mlp", schedule=SCHEDULE, loss="mse", sampler="edm-dpmpp")
    assert DiffusionConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # a config written before the latent network existed still loads (as a U-Net)
    parts = DIFFUSION_PRESETS["quick"].to_dict()
    flat = {k: v for part in parts.values() for k, v in part.items()}  # settings side by side
    old = {k: v for k, v in flat.items() if k not in ("network", "latent")}
    assert DiffusionConfig.from_dict(old).network == "unet"


def test_pca_mlp_trains_resumes_and_samples_through_the_cli(sim_store, tmp_path):
    args = [
        "train-diffusion",
        str(sim_store),
        str(tmp_path / "m"),
        "--label",
        "silicone_oil",
        "--preset",
        "smoke",
        "--objective",
        "edm",
        "--loss",
        "mse",
        "--network",
        "pca-mlp",
        "--latent-components",
        "8",
        "--latent-mixture",
        "4",
        "--max-images",
        "16",
        "--sampler-steps",
        "6",
        "--symmetries",
        "auto",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(main, [*args, "--epochs", "2"])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "m" / "config.json").read_text())
    saved = DiffusionConfig.from_dict(info["diffusion"])
    assert saved.network == "pca-mlp" and saved.latent.components == 8 and saved.latent.mixture == 4
    # the symmetries training kept, and the test's p-values, are recorded with the model
    assert (
        saved.symmetries == "auto"
        and info["symmetries"][0] == "identity"
        and len(info["symmetry_p_values"]) == 7
    )
    first = Generator.from_pretrained(tmp_path / "m", "cpu")
    assert first.unet.basis.shape == (8, 64 * 64) and first.unet.scale.min() > 0
    assert first.unet.mixture_mean.shape == (4, 8) and first.unet.mixture_var.min() > 0
    assert (
        first.unet.mixture_log_weight > -1e29
    ).sum() == 3  # 16 images: one Gaussian per 5 at most
    # resuming keeps the fitted latent space and prior (they are in the checkpoint) and trains on
    result = CliRunner().invoke(main, [*args, "--epochs", "4", "--resume"])
    assert result.exit_code == 0, result.output
    g = Generator.from_pretrained(tmp_path / "m", "cpu")
    assert g.metadata["trained_epochs"] == 4
    torch.testing.assert_close(g.unet.basis, first.unet.basis)
    torch.testing.assert_close(g.unet.mixture_mean, first.unet.mixture_mean)
    torch.testing.assert_close(
        g.unet.mixture_log_weight, first.unet.mixture_log_weight
    )  # the EMA keeps the unused weights finite
    assert any(not torch.equal(a, b) for a, b in zip(g.unet.parameters(), first.unet.parameters()))
    images = g.sample(5, seed=2)
    assert images.shape == (5, 64, 64) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, g.sample(5, seed=2))
    # samples sit near the training images' gray levels (a latent model of 16 smooth crops)
    assert 100 < images.mean() < 230
