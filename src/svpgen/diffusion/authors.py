"""The paper authors' released diffusion checkpoints (Ozbulak et al. 2025, released on
request under CC BY-NC-SA 4.0) as svpgen :class:`Generator` artefacts.

Their U-Net (``Unet(dim=64, channels=1, dim_mults=(1, 2, 4, 8))``, saved as a plain
``state_dict``) is the architecture of :mod:`svpgen.diffusion.unet` with three settings —
GroupNorm with 4 groups, a 1×1 first convolution, attention heads 4 × 32 — and other key
names; every tensor maps one to one. Their sampler is the paper's Algorithm 2 with
T = 500 linear betas 1e-4 … 0.02: ancestral DDPM on ε with variance β̃ₜ, no noise at
t = 0, no clipping of x̂₀, and ``((x + 1) / 2 · 255).clip(0, 255).astype(uint8)``
(truncation). The imported config reproduces all of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from svpgen.checkpoint import read_torch_state
from svpgen.diffusion.config import DiffusionConfig, ScheduleConfig, UNetConfig
from svpgen.diffusion.generator import Generator
from svpgen.diffusion.unet import UNet
from svpgen.errors import SvpgenError

# Their key → ours, applied in order to every key.
_RENAMES = (
    (r"^mid_block1\.", "mid1."),
    (r"^mid_block2\.", "mid2."),
    (r"^final_res_block\.", "final_block."),
    (r"\.mlp\.", ".time_mlp."),  # a ResnetBlock's time-embedding MLP
    (r"\.res_conv\.", ".skip."),
    (r"\.fn\.norm\.", ".norm."),  # Residual(PreNorm(dim, attention)) → our attention owns its norm
    (r"\.fn\.fn\.", "."),
    (r"^(downs|ups)\.(\d+)\.3\.1\.", r"\1.\2.3.proj."),  # Sequential(Rearrange|Upsample, Conv2d)
)
AUTHORS_TIMESTEPS = 500
AUTHORS_GROUPS = 4
AUTHORS_HEADS, AUTHORS_DIM_HEAD = 4, 32


def rename_key(key: str) -> str:
    """One of the authors' state-dict keys as svpgen's U-Net names it."""
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def unet_config_from(state: dict[str, torch.Tensor]) -> UNetConfig:
    """The U-Net the authors' tensors describe: width and levels from the shapes; GroupNorm
    groups and attention heads as in their code (neither is visible in the weights)."""
    try:
        init = state["init_conv.weight"]
        levels = sorted({int(k.split(".")[1]) for k in state if k.startswith("downs.")})
        dim = init.shape[0]
        outs = []
        for lv in levels:
            last = lv == levels[-1]
            weight = state[f"downs.{lv}.3.weight"] if last else state[f"downs.{lv}.3.1.weight"]
            outs.append(weight.shape[0])
    except (KeyError, IndexError) as err:
        raise SvpgenError(f"not the authors' U-Net: missing tensor {err}") from None
    if any(o % dim for o in outs):
        raise SvpgenError(
            f"not the authors' U-Net: level widths {outs} are not multiples of dim {dim}"
        )
    return UNetConfig(
        dim=dim,
        dim_mults=tuple(o // dim for o in outs),
        channels=init.shape[1],
        groups=AUTHORS_GROUPS,
        linear_attention=None,
        heads=AUTHORS_HEADS,
        dim_head=AUTHORS_DIM_HEAD,
        init_kernel=init.shape[-1],
    )


def convert_state(
    state: dict[str, torch.Tensor], unet: UNet, source: str
) -> dict[str, torch.Tensor]:
    """The authors' tensors under svpgen's names; an error names the first key or shape
    that does not match ``unet``."""
    converted = {rename_key(k): v for k, v in state.items()}
    expected = unet.state_dict()
    for key, value in converted.items():
        if key not in expected:
            original = next(k for k in state if rename_key(k) == key)
            raise SvpgenError(
                f"{source}: tensor {original!r} has no place in the authors' U-Net (dim "
                f"{unet.config.dim}, mults {unet.config.dim_mults})"
            )
        if tuple(value.shape) != tuple(expected[key].shape):
            raise SvpgenError(
                f"{source}: tensor {key!r} has shape {tuple(value.shape)}, the U-Net expects "
                f"{tuple(expected[key].shape)}"
            )
    missing = [k for k in expected if k not in converted]
    if missing:
        raise SvpgenError(f"{source}: {len(missing)} U-Net tensor(s) missing, first {missing[0]!r}")
    return converted


def authors_config(unet: UNetConfig) -> DiffusionConfig:
    """The authors' model and sampler, exactly: T = 500 linear betas, ancestral DDPM over
    all T steps, no x̂₀ clipping, truncating uint8 conversion; L1 on ε as in the paper."""
    return DiffusionConfig(
        unet=unet,
        schedule=ScheduleConfig(
            timesteps=AUTHORS_TIMESTEPS, beta_start=1e-4, beta_end=0.02, beta_schedule="linear"
        ),
        loss="l1",
        sampler="ddpm",
        sampler_steps=None,
        clip_sample=False,
        output_rounding="truncate",
        fid_epochs=(),
    )


def import_authors_diffusion(file: str | Path, out: str | Path, label: str) -> Generator:
    """Convert the authors' ``.pth`` of one class into a Generator artefact at ``out``."""
    state = read_torch_state(file)
    unet = UNet(unet_config_from(state))
    unet.load_state_dict(convert_state(state, unet, str(file)))
    metadata = {
        "imported_from": str(Path(file).resolve()),
        "origin": "Ozbulak et al. 2025, released model (CC BY-NC-SA 4.0)",
    }
    generator = Generator(unet, authors_config(unet.config), label, metadata)
    generator.save_pretrained(out)
    generator.path = Path(out)
    return generator
