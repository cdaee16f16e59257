"""The paper's denoising U-Net (Ozbulak et al. 2025, Sec. 2.4; the Ho et al. DDPM U-Net as
popularised by the denoising-diffusion-pytorch package), written for this project.

* ResNet blocks of weight-standardized 3×3 convolutions + GroupNorm + SiLU, with the time
  embedding applied as a scale/shift after the first norm.
* Linear attention (with a GroupNorm in front) at every resolution — or only at the levels
  listed in ``linear_attention`` for cheaper CPU presets; full self-attention in the middle.
* Sinusoidal time embedding → MLP; downsampling by pixel-unshuffle + 1×1 conv (no strided
  convs); upsampling by nearest-neighbour ×2 + 3×3 conv.

Weight standardization always runs in float32: under fp16/bf16 autocast its variance
underflows (the known failure), so the standardized weight is computed in fp32 and cast
to the activation dtype only for the convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from svpgen.diffusion.config import UNetConfig


class WeightStandardizedConv2d(nn.Conv2d):
    """Conv2d whose kernel is standardized per output channel (Qiao et al. 2019)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.float()
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        w = ((w - mean) * torch.rsqrt(var + 1e-5)).to(x.dtype)  # autocast casts further if active
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, w, bias, self.stride, self.padding, self.dilation, self.groups)


class SinusoidalTimeEmbedding(nn.Module):
    """Transformer-style sin/cos embedding of the timestep."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(
            torch.arange(half, device=t.device, dtype=torch.float32)
            * (-math.log(10000.0) / (half - 1))
        )
        args = t.float()[:, None] * freqs[None, :]
        return torch.cat([args.sin(), args.cos()], dim=-1)


class Block(nn.Module):
    """Weight-standardized 3×3 conv → GroupNorm → (time scale/shift) → SiLU."""

    def __init__(self, dim_in: int, dim_out: int, groups: int):
        super().__init__()
        self.proj = WeightStandardizedConv2d(dim_in, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, dim_out)

    def forward(
        self, x: torch.Tensor, scale_shift: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return F.silu(x)


class ResnetBlock(nn.Module):
    """Two blocks with the time embedding applied to the first, plus a residual path."""

    def __init__(self, dim_in: int, dim_out: int, time_dim: int, groups: int):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, dim_out * 2))
        self.block1 = Block(dim_in, dim_out, groups)
        self.block2 = Block(dim_out, dim_out, groups)
        self.skip = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.time_mlp(t_emb)[:, :, None, None].chunk(2, dim=1)
        h = self.block1(x, (scale, shift))
        return self.block2(h) + self.skip(x)


class LinearAttention(nn.Module):
    """Efficient attention (Shen et al.): softmax over features for q, over positions for k."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        hidden = heads * dim_head
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), nn.GroupNorm(1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.to_qkv(self.norm(x)).reshape(b, 3, self.heads, -1, h * w).unbind(1)
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q).reshape(b, -1, h, w)
        return self.to_out(out) + x


class Attention(nn.Module):
    """Full multi-head self-attention over positions (used in the middle of the U-Net)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        hidden = heads * dim_head
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (
            self.to_qkv(self.norm(x))
            .reshape(b, 3, self.heads, -1, h * w)
            .transpose(-1, -2)
            .unbind(1)
        )
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(-1, -2).reshape(b, -1, h, w)) + x


class Downsample(nn.Module):
    """Halve the resolution without a strided conv: pixel-unshuffle then a 1×1 conv."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Conv2d(dim_in * 4, dim_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.pixel_unshuffle(x, 2))


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour ×2, then a 3×3 conv."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    """The denoising U-Net: ``forward(x, t)`` → the objective's prediction (ε̂ for the
    paper) for 1×64×64 images. With ``patch`` > 1 the image is pixel-unshuffled first (a
    2× patch: 4 channels at 32×32) and the output shuffled back, at ~¼ of the compute."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = cfg = config
        dims = [cfg.dim, *(cfg.dim * m for m in cfg.dim_mults)]
        time_dim = cfg.dim * 4
        attn_levels = (
            set(range(len(cfg.dim_mults)))
            if cfg.linear_attention is None
            else set(cfg.linear_attention)
        )
        channels = cfg.channels * cfg.patch**2  # pixel-unshuffled input
        self.init_conv = nn.Conv2d(channels, cfg.dim, cfg.init_kernel, padding=cfg.init_kernel // 2)
        self.time_mlp = nn.Sequential(
            SinusoidalTimeEmbedding(cfg.dim),
            nn.Linear(cfg.dim, time_dim),
            nn.GELU(),
            nn.Linear(time_dim, time_dim),
        )
        pairs = list(zip(dims[:-1], dims[1:]))
        n = len(pairs)
        self.downs = nn.ModuleList()
        for level, (d_in, d_out) in enumerate(pairs):
            last = level == n - 1
            self.downs.append(
                nn.ModuleList(
                    [
                        ResnetBlock(d_in, d_in, time_dim, cfg.groups),
                        ResnetBlock(d_in, d_in, time_dim, cfg.groups),
                        LinearAttention(d_in, cfg.heads, cfg.dim_head)
                        if level in attn_levels
                        else nn.Identity(),
                        nn.Conv2d(d_in, d_out, 3, padding=1) if last else Downsample(d_in, d_out),
                    ]
                )
            )
        mid = dims[-1]
        self.mid1 = ResnetBlock(mid, mid, time_dim, cfg.groups)
        self.mid_attn = Attention(mid, cfg.heads, cfg.dim_head)
        self.mid2 = ResnetBlock(mid, mid, time_dim, cfg.groups)
        self.ups = nn.ModuleList()
        for level, (d_in, d_out) in reversed(list(enumerate(pairs))):
            self.ups.append(
                nn.ModuleList(
                    [
                        ResnetBlock(d_out + d_in, d_out, time_dim, cfg.groups),
                        ResnetBlock(d_out + d_in, d_out, time_dim, cfg.groups),
                        LinearAttention(d_out, cfg.heads, cfg.dim_head)
                        if level in attn_levels
                        else nn.Identity(),
                        nn.Conv2d(d_out, d_in, 3, padding=1)
                        if level == 0
                        else Upsample(d_out, d_in),
                    ]
                )
            )
        self.final_block = ResnetBlock(cfg.dim * 2, cfg.dim, time_dim, cfg.groups)
        self.final_conv = nn.Conv2d(cfg.dim, channels, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        patch = self.config.patch
        if patch > 1:
            x = F.pixel_unshuffle(x, patch)
        x = self.init_conv(x)
        r = x
        t_emb = self.time_mlp(t)
        skips = []
        for block1, block2, attn, down in self.downs:
            x = block1(x, t_emb)
            skips.append(x)
            x = attn(block2(x, t_emb))
            skips.append(x)
            x = down(x)
        x = self.mid2(self.mid_attn(self.mid1(x, t_emb)), t_emb)
        for block1, block2, attn, up in self.ups:
            x = block1(torch.cat([x, skips.pop()], dim=1), t_emb)
            x = attn(block2(torch.cat([x, skips.pop()], dim=1), t_emb))
            x = up(x)
        out = self.final_conv(self.final_block(torch.cat([x, r], dim=1), t_emb))
        return F.pixel_shuffle(out, patch) if patch > 1 else out
