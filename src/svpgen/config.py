"""Dataclass configs and the three presets: ``smoke`` (tests, seconds), ``quick`` (the
README's main job on a 2-core CPU), ``paper`` (the paper's exact setup, for a GPU)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from svpgen.errors import SvpgenError

PRESETS = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class UNetConfig:
    """The paper's U-Net (diffusion/unet.py): dim 64, mults (1, 2, 4, 8)."""

    dim: int = 64
    dim_mults: tuple[int, ...] = (1, 2, 4, 8)
    channels: int = 1
    groups: int = 8
    # levels (0 = full resolution) that get linear attention; None = every level (paper)
    linear_attention: tuple[int, ...] | None = None
    heads: int = 4
    dim_head: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        d = dict(d)
        d["dim_mults"] = tuple(d["dim_mults"])
        if d.get("linear_attention") is not None:
            d["linear_attention"] = tuple(d["linear_attention"])
        return cls(**d)


@dataclass(frozen=True)
class ScheduleConfig:
    """DDPM forward process (paper: T = 1000, linear betas 1e-4 … 0.02)."""

    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"

    def to_dict(self) -> dict:
        return asdict(self)

    def scheduler_kwargs(self) -> dict:
        """Keyword arguments shared by every diffusers scheduler."""
        return dict(
            num_train_timesteps=self.timesteps,
            beta_start=self.beta_start,
            beta_end=self.beta_end,
            beta_schedule=self.beta_schedule,
            prediction_type="epsilon",
        )


@dataclass(frozen=True)
class DiffusionConfig:
    """Phase 1: one DDPM per minority class (paper Sec. 2.4)."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: str = "l1"  # paper: L1 on ε; "mse" as an option
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 1000
    max_images: int | None = 1000  # training images per class (paper: 1,000)
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    checkpoint_every: int = 10  # epochs
    seed: int = 0
    fid_epochs: tuple[int, ...] = ()  # epochs at which FID/KID are computed (paper Fig. 4b)
    fid_samples: int = 100
    eval_sampler: str = "dpmpp"
    eval_steps: int = 20
    channels_last: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiffusionConfig":
        d = dict(d)
        d["unet"] = UNetConfig.from_dict(d["unet"])
        d["schedule"] = ScheduleConfig(**d["schedule"])
        d["fid_epochs"] = tuple(d.get("fid_epochs", ()))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class ClassifierConfig:
    """Phase 2: a timm ResNet trained on Real-n / Mixed-n (paper Sec. 2.5)."""

    arch: str = "resnet18"
    stem: str = "standard"  # paper: the standard ImageNet stem; "small" keeps 64×64 detail
    pretrained: str | None = None  # a local weights file; nothing is downloaded
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    epochs: int = 30
    patience: int = 5  # early stopping on the tuning split
    imbalance: str = "none"  # none (paper) | weighted | oversample | logit-adjust
    seed: int = 0
    channels_last: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


DIFFUSION_PRESETS: dict[str, DiffusionConfig] = {
    "smoke": DiffusionConfig(
        unet=UNetConfig(dim=8, dim_mults=(1, 2), groups=4, linear_attention=(1,), heads=2, dim_head=8),
        lr=1e-3, batch_size=8, epochs=2, max_images=32, checkpoint_every=1, fid_samples=16, eval_steps=5,
    ),
    "quick": DiffusionConfig(
        unet=UNetConfig(dim=16, dim_mults=(1, 2, 2, 4), groups=8, linear_attention=(3,), heads=4, dim_head=16),
        lr=2e-3, batch_size=32, epochs=40, max_images=400, ema_decay=0.99, checkpoint_every=5,
        fid_epochs=(1, 5, 10, 20, 40), fid_samples=100, channels_last=True,
    ),
    "paper": DiffusionConfig(fid_epochs=(1, 5, 10, 20, 50, 100, 200, 500, 1000)),
}

CLASSIFIER_PRESETS: dict[str, ClassifierConfig] = {
    "smoke": ClassifierConfig(arch="resnet18", batch_size=16, epochs=2, patience=2),
    "quick": ClassifierConfig(arch="resnet18", batch_size=64, epochs=8, patience=3),
    "paper": ClassifierConfig(arch="resnet18", epochs=100, patience=10),
}


def preset(kind: str, name: str):
    table = {"diffusion": DIFFUSION_PRESETS, "classifier": CLASSIFIER_PRESETS}[kind]
    if name not in table:
        raise SvpgenError(f"unknown preset {name!r}; choose from {', '.join(table)}")
    return table[name]


def with_overrides(cfg, **overrides):
    """``replace`` that ignores ``None`` values (unset CLI options)."""
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def write_json(path: str | Path, data: dict) -> None:
    """Write JSON atomically."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
