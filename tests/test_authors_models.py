"""The paper authors' released models run in svpgen, exactly.

The reference modules below are this test's own short re-statement of the authors'
published architecture and sampler (key names and shapes as their release describes), used
only to check the import: random weights are saved the way the authors save theirs, imported,
and compared output for output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from svpgen import Classifier, Generator
from svpgen.cli import main
from svpgen.data.store import ParticleStore
from svpgen.diffusion.sample import denoise
from svpgen.errors import SvpgenError


# ---- a re-statement of the authors' U-Net (lucidrains / Annotated Diffusion style) ----------
class _WSConv(nn.Conv2d):
    def forward(self, x):
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / torch.sqrt(
            w.var((1, 2, 3), unbiased=False, keepdim=True) + 1e-5
        )
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class _Block(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.proj, self.norm = _WSConv(a, b, 3, padding=1), nn.GroupNorm(4, b)

    def forward(self, x, ss=None):
        x = self.norm(self.proj(x))
        return F.silu(x if ss is None else x * (ss[0] + 1) + ss[1])


class _Res(nn.Module):
    def __init__(self, a, b, tdim):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(tdim, 2 * b))
        self.block1, self.block2 = _Block(a, b), _Block(b, b)
        self.res_conv = nn.Conv2d(a, b, 1) if a != b else nn.Identity()

    def forward(self, x, t):
        ss = self.mlp(t)[..., None, None].chunk(2, 1)
        return self.block2(self.block1(x, ss)) + self.res_conv(x)


class _Attn(nn.Module):
    def __init__(self, dim, linear, heads=4, dh=32):
        super().__init__()
        self.heads, self.linear, self.scale = heads, linear, dh**-0.5
        self.to_qkv = nn.Conv2d(dim, 3 * heads * dh, 1, bias=False)
        self.to_out = (
            nn.Sequential(nn.Conv2d(heads * dh, dim, 1), nn.GroupNorm(1, dim))
            if linear
            else nn.Conv2d(heads * dh, dim, 1)
        )

    def forward(self, x):
        b, _, h, w = x.shape
        q, k, v = (
            t.reshape(b, self.heads, -1, h * w) for t in self.to_qkv(x).chunk(3, 1)
        )  # b, heads, d, n
        if self.linear:
            q, k = q.softmax(-2) * self.scale, k.softmax(-1)
            out = torch.matmul(
                torch.matmul(k, v.transpose(-1, -2)).transpose(-1, -2), q
            )  # (d×e)ᵀ · q → b, heads, e, n
        else:
            attn = (torch.matmul(q.transpose(-1, -2), k) * self.scale).softmax(-1)  # b, heads, n, n
            out = torch.matmul(v, attn.transpose(-1, -2))  # b, heads, d, n
        return self.to_out(out.reshape(b, -1, h, w))


class _PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn, self.norm = fn, nn.GroupNorm(1, dim)

    def forward(self, x):
        return self.fn(self.norm(x))


class _Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class _SinEmb(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        f = torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))
        a = t.float()[:, None] * f[None]
        return torch.cat([a.sin(), a.cos()], -1)


class AuthorsUnet(nn.Module):
    """Their ``Unet(dim, channels=1, dim_mults)``: 1×1 first conv, GroupNorm(4), heads 4 × 32."""

    def __init__(self, dim=64, dim_mults=(1, 2, 4, 8)):
        super().__init__()
        dims = [dim, *(dim * m for m in dim_mults)]
        pairs, tdim = list(zip(dims[:-1], dims[1:])), 4 * dim
        self.init_conv = nn.Conv2d(1, dim, 1, padding=0)
        self.time_mlp = nn.Sequential(
            _SinEmb(dim), nn.Linear(dim, tdim), nn.GELU(), nn.Linear(tdim, tdim)
        )
        attn = lambda d, lin: _Residual(_PreNorm(d, _Attn(d, lin)))  # noqa: E731
        self.downs = nn.ModuleList(
            nn.ModuleList(
                [
                    _Res(a, a, tdim),
                    _Res(a, a, tdim),
                    attn(a, True),
                    nn.Conv2d(a, b, 3, padding=1)
                    if i == len(pairs) - 1
                    else nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4 * a, b, 1)),
                ]
            )
            for i, (a, b) in enumerate(pairs)
        )
        self.mid_block1, self.mid_attn, self.mid_block2 = (
            _Res(dims[-1], dims[-1], tdim),
            attn(dims[-1], False),
            _Res(dims[-1], dims[-1], tdim),
        )
        self.ups = nn.ModuleList(
            nn.ModuleList(
                [
                    _Res(b + a, b, tdim),
                    _Res(b + a, b, tdim),
                    attn(b, True),
                    nn.Conv2d(b, a, 3, padding=1)
                    if i == len(pairs) - 1
                    else nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(b, a, 3, padding=1)
                    ),
                ]
            )
            for i, (a, b) in enumerate(reversed(pairs))
        )
        self.final_res_block, self.final_conv = _Res(2 * dim, dim, tdim), nn.Conv2d(dim, 1, 1)

    def forward(self, x, time):
        x = self.init_conv(x)
        r, t, h = x.clone(), self.time_mlp(time), []
        for b1, b2, at, down in self.downs:
            x = b1(x, t)
            h.append(x)
            x = at(b2(x, t))
            h.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, t)), t)
        for b1, b2, at, up in self.ups:
            x = b1(torch.cat([x, h.pop()], 1), t)
            x = up(at(b2(torch.cat([x, h.pop()], 1), t)))
        return self.final_conv(self.final_res_block(torch.cat([x, r], 1), t))


def authors_model(dim=64, dim_mults=(1, 2, 4, 8), seed=0) -> AuthorsUnet:
    torch.manual_seed(seed)
    model = AuthorsUnet(dim, dim_mults).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.GroupNorm):  # weights 1 and biases 0 at init: make them count
                m.weight.add_(0.1 * torch.randn_like(m.weight))
                m.bias.add_(0.1 * torch.randn_like(m.bias))
    return model


@torch.no_grad()
def authors_sampling(model, x, generator, timesteps=500):
    """Their Algorithm 2 as released: T = 500 linear betas, ε-model, variance β̃, no noise at
    t = 0, no clipping."""
    betas = torch.linspace(1e-4, 0.02, timesteps)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = F.pad(abar[:-1], (1, 0), value=1.0)
    post_var = betas * (1 - abar_prev) / (1 - abar)
    for t in range(timesteps - 1, -1, -1):
        eps = model(x, torch.full((len(x),), t, dtype=torch.long))
        mean = (x - betas[t] * eps / torch.sqrt(1 - abar[t])) / torch.sqrt(alphas[t])
        x = (
            mean
            if t == 0
            else mean + torch.sqrt(post_var[t]) * torch.randn(x.shape, generator=generator)
        )
    return x


# ---- the tests ---------------------------------------------------------------------------
def test_paper_size_unet_imports_exactly(tmp_path):
    ref = authors_model()
    state = ref.state_dict()
    assert len(state) == 293  # as the authors' release: every tensor maps one to one
    torch.save(state, tmp_path / "air_bubble_diffusion_model.pth")
    res = CliRunner().invoke(
        main,
        [
            "import-model",
            str(tmp_path / "air_bubble_diffusion_model.pth"),
            str(tmp_path / "ab"),
            "--kind",
            "diffusion",
            "--label",
            "air_bubble",
        ],
    )
    assert res.exit_code == 0, res.output
    g = Generator.load(tmp_path / "ab", "cpu")
    assert sum(p.numel() for p in g.unet.parameters()) == sum(p.numel() for p in ref.parameters())
    assert (
        g.config.unet.groups == 4
        and g.config.unet.init_kernel == 1
        and g.config.schedule.timesteps == 500
    )
    assert (
        g.config.sampler == "ddpm"
        and not g.config.clip_sample
        and g.config.output_rounding == "truncate"
    )
    x = torch.randn(2, 1, 64, 64)
    t = torch.tensor([3, 421])
    with torch.no_grad():
        expected = ref(x, t)
        diff = (g.unet(x, t) - expected).abs().max().item()
    assert diff <= 1e-4 and expected.abs().max() > 0.1, (diff, expected.abs().max())
    assert len(g.scheduler.timesteps) == 500 and g.scheduler.config.clip_sample is False


def gaussian_data_eps(timesteps=500, mean=0.3, std=0.45):
    """The exact ε-predictor for pixelwise Gaussian data N(mean·pattern, std²): a smooth,
    well-conditioned stand-in network, so the comparison tests the sampler alone."""
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, timesteps), 0)
    pattern = mean * torch.sin(torch.linspace(0, 6, 64))[None, None, None, :]

    def eps(x, t):
        a = abar[t.long()].view(-1, 1, 1, 1)
        return torch.sqrt(1 - a) * (x - torch.sqrt(a) * pattern) / (a * std**2 + 1 - a)

    return eps


def test_imported_sampler_reproduces_the_authors_loop(tmp_path):
    torch.save(authors_model(dim=8, dim_mults=(1, 2), seed=1).state_dict(), tmp_path / "oil.pth")
    res = CliRunner().invoke(
        main,
        [
            "import-model",
            str(tmp_path / "oil.pth"),
            str(tmp_path / "oil"),
            "--kind",
            "diffusion",
            "--label",
            "oil",
        ],
    )
    assert res.exit_code == 0, res.output
    g = Generator.load(tmp_path / "oil", "cpu")
    assert g.sampling() == ("ddpm", None) and len(g.scheduler.timesteps) == 500
    eps = gaussian_data_eps()
    start = torch.randn(3, 1, 64, 64, generator=torch.Generator().manual_seed(7))
    ours = denoise(eps, g.scheduler, start.clone(), torch.Generator().manual_seed(8))
    theirs = authors_sampling(eps, start.clone(), torch.Generator().manual_seed(8))
    diff = (ours - theirs).abs().max().item()
    assert diff <= 1e-3, diff
    assert theirs.abs().max() > 1.0  # no clipping anywhere: values outside [-1, 1] survive
    assert 0.3 < theirs.std() < 0.7  # a real sample from the data model, not a blow-up


@pytest.mark.slow
def test_generate_cli_uses_the_imported_sampler_end_to_end(tmp_path):
    """`svpgen generate` on an imported model: ddpm over T = 500, no clipping, truncating
    uint8 conversion — against the re-stated loop with the same noise."""
    ref = authors_model(dim=8, dim_mults=(1, 2, 2, 2), seed=1)
    torch.save(ref.state_dict(), tmp_path / "oil.pth")
    assert (
        CliRunner()
        .invoke(
            main,
            [
                "import-model",
                str(tmp_path / "oil.pth"),
                str(tmp_path / "oil"),
                "--kind",
                "diffusion",
                "--label",
                "oil",
            ],
        )
        .exit_code
        == 0
    )
    res = CliRunner().invoke(
        main,
        [
            "generate",
            str(tmp_path / "oil"),
            str(tmp_path / "gen"),
            "--n",
            "1",
            "--seed",
            "0",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    store = ParticleStore(tmp_path / "gen")
    assert (
        store.provenance[0]["sampler"] == "ddpm" and store.table["label"].iloc[0] == "silicone_oil"
    )
    gen = torch.Generator().manual_seed(0)
    expected = authors_sampling(ref, torch.randn(1, 1, 64, 64, generator=gen), gen)
    truncated = ((expected + 1) / 2 * 255).clamp(0, 255).numpy().astype(np.uint8)[:, 0]
    delta = np.abs(store.images[:].astype(int) - truncated)
    assert delta.max() <= 2 and delta.mean() < 0.1, (
        delta.max(),
        delta.mean(),
    )  # float32 op order only


def test_classifier_imports_with_stated_normalisation(tmp_path):
    torch.manual_seed(2)
    ref = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    torch.save({"model": ref.state_dict()}, tmp_path / "resnet18_svp_model.pth")
    mean, std = (0.5, 0.45, 0.4), (0.25, 0.2, 0.22)
    res = CliRunner().invoke(
        main,
        [
            "import-model",
            str(tmp_path / "resnet18_svp_model.pth"),
            str(tmp_path / "clf"),
            "--kind",
            "classifier",
            "--mean",
            ",".join(map(str, mean)),
            "--std",
            ",".join(map(str, std)),
        ],
    )
    assert res.exit_code == 0, res.output
    clf = Classifier.load(tmp_path / "clf", "cpu")
    assert clf.classes == ["protein", "silicone_oil", "air_bubble"] and clf.config.in_chans == 3
    images = np.random.default_rng(0).integers(0, 256, (6, 64, 64), dtype=np.uint8)
    x = torch.from_numpy(images).float().div(255).unsqueeze(1).repeat(1, 3, 1, 1)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = ref(x).numpy()
    assert np.abs(clf.predict_logits(images) - expected).max() <= 1e-4
    from svpgen.data.store import Particles, provenance_record

    ParticleStore.write(
        tmp_path / "s",
        Particles.from_arrays(images, "protein", "real", [f"p{i}" for i in range(6)]),
        provenance_record("t"),
    )
    res = CliRunner().invoke(
        main,
        ["classify", str(tmp_path / "clf"), str(tmp_path / "s"), "--out", str(tmp_path / "p.csv")],
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        main,
        ["evaluate", str(tmp_path / "clf"), str(tmp_path / "s"), "--out", str(tmp_path / "ev")],
    )
    assert res.exit_code == 0, res.output


def test_not_such_a_checkpoint_names_the_problem(tmp_path):
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(SvpgenError, match="not a PyTorch checkpoint"):
        from svpgen.diffusion.authors import import_authors_diffusion

        import_authors_diffusion(tmp_path / "text.pth", tmp_path / "a", "air_bubble")
    state = authors_model(dim=8, dim_mults=(1, 2)).state_dict()
    state["downs.0.2.fn.fn.to_qkv.weight"] = torch.zeros(3, 8, 1, 1)
    torch.save(state, tmp_path / "bad_shape.pth")
    res = CliRunner().invoke(
        main,
        [
            "import-model",
            str(tmp_path / "bad_shape.pth"),
            str(tmp_path / "b"),
            "--kind",
            "diffusion",
            "--label",
            "air_bubble",
        ],
    )
    assert res.exit_code == 2 and "'downs.0.2.to_qkv.weight' has shape (3, 8, 1, 1)" in res.output
    state = authors_model(dim=8, dim_mults=(1, 2)).state_dict()
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "extra.pth")
    res = CliRunner().invoke(
        main,
        [
            "import-model",
            str(tmp_path / "extra.pth"),
            str(tmp_path / "c"),
            "--kind",
            "diffusion",
            "--label",
            "air_bubble",
        ],
    )
    assert res.exit_code == 2 and "'extra.weight' has no place" in res.output
    torch.save(
        {"model": timm.create_model("resnet18", pretrained=False, num_classes=3).state_dict()},
        tmp_path / "clf.pth",
    )
    res = CliRunner().invoke(
        main,
        [
            "import-model",
            str(tmp_path / "clf.pth"),
            str(tmp_path / "d"),
            "--kind",
            "diffusion",
            "--label",
            "air_bubble",
        ],
    )
    assert res.exit_code == 2 and "missing tensor 'init_conv.weight'" in res.output
    res = CliRunner().invoke(
        main,
        ["import-model", str(tmp_path / "extra.pth"), str(tmp_path / "e"), "--kind", "classifier"],
    )
    assert res.exit_code == 2 and "no 'fc.weight' tensor" in res.output
    assert not any((tmp_path / n).exists() for n in "abcde")
