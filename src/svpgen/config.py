"""Dataclass configs and the three presets: ``smoke`` (tests, seconds), ``quick`` (the
README's main job on a 2-core CPU), ``paper`` (the paper's exact setup, for a GPU)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from svpgen.errors import SvpgenError

PRESETS = ("smoke", "quick", "paper")


def parse_mapping(text: str, option: str, example: str) -> dict[str, float]:
    """Parse ``name=value,name=value`` (values as floats); a clear error names the option."""
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise SvpgenError(f"{option} {text!r}: expected name=value,… e.g. {example}") from None


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
    table = {"diffusion": DIFFUSION_PRESETS, "classifier": CLASSIFIER_PRESETS, "study": STUDY_PRESETS}[kind]
    if name not in table:
        raise SvpgenError(f"unknown preset {name!r}; choose from {', '.join(table)}")
    return table[name]


def with_overrides(cfg, **overrides):
    """``replace`` that ignores ``None`` values (unset CLI options)."""
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


# The paper's Table 1: protein images (thousands) per configuration; every configuration
# has 1K real images of each minority class; Mixed-n adds generated minority images until
# each minority class matches the protein count.
TABLE1_PROTEIN_K = {"Real-0": 1, "Real-1": 2, "Real-2": 5, "Real-3": 10, "Real-4": 20,
                    "Mixed-1": 2, "Mixed-2": 5, "Mixed-3": 10, "Mixed-4": 20}
PAPER_GRID = {
    "optimizer": ("adam", "adamw"),
    "lr": (1e-5, 5e-4, 1e-4, 5e-3, 1e-3, 5e-2, 1e-2),
    "weight_decay": (1e-5, 1e-4, 1e-3),
    "batch_size": (32, 64, 128),
}


@dataclass(frozen=True)
class StudyConfig:
    """The whole two-phase study: data → diffusion → generation → Table 1 → grid → Table 2."""

    preset: str = "quick"
    scale: float = 0.05  # multiplies Table 1's counts (paper: 1.0)
    datasets: tuple[str, ...] = ("Real-0", "Real-2", "Real-4", "Mixed-2", "Mixed-4")
    archs: tuple[str, ...] = ("resnet18",)
    grid: dict = field(default_factory=lambda: {"optimizer": ("adam",), "lr": (1e-3,), "weight_decay": (1e-4,), "batch_size": (64,)})
    selection_metric: str = "macro_auprc"  # on the tuning split
    baselines: tuple[str, ...] = ("weighted", "oversample", "logit-adjust")  # run on baseline_dataset
    baseline_dataset: str = "Real-4"
    minority: tuple[str, ...] = ("silicone_oil", "air_bubble")
    diffusion_images: int = 400  # per minority class, disjoint from everything else
    eval_protein: int = 10_000  # paper: 500,000
    eval_minority: int = 100  # paper: 500
    prevalence: tuple[float, float, float] = (1000.0, 1.0, 1.0)  # protein : oil : bubble in deployment
    tune_protein: int = 400
    tune_minority: int = 100
    label_noise: float = 0.03  # simulated training pools; the evaluation set uses ground truth
    sampler: str = "ddim"  # fast samplers compared in benchmarks/bench_sampler_quality.py
    sampler_steps: int = 50
    audit: bool = True  # particle encoder, FID/KID per diffusion epoch, audit of generated images
    encoder_epochs: int = 3
    diffusion_preset: str = "quick"
    classifier_preset: str = "quick"
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudyConfig":
        known = {f.name: f for f in fields(cls)}
        bad = sorted(set(d) - set(known))
        if bad:
            raise SvpgenError(f"unknown study setting(s) {bad}; known: {', '.join(known)}")
        out = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        if "grid" in out:
            out["grid"] = {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in out["grid"].items()}
        return cls(**out)


STUDY_PRESETS: dict[str, StudyConfig] = {
    "smoke": StudyConfig(
        preset="smoke", scale=0.01, datasets=("Real-0", "Mixed-2"), baselines=("weighted",), baseline_dataset="Real-0",
        diffusion_images=24, eval_protein=300, eval_minority=20, tune_protein=40, tune_minority=12,
        sampler="dpmpp", sampler_steps=4, encoder_epochs=1, diffusion_preset="smoke", classifier_preset="smoke",
    ),
    "quick": StudyConfig(),
    "paper": StudyConfig(
        preset="paper", scale=1.0, datasets=tuple(TABLE1_PROTEIN_K), archs=("resnet18", "resnet50"), grid=dict(PAPER_GRID),
        diffusion_images=1000, eval_protein=500_000, eval_minority=500, tune_protein=4000, tune_minority=500,
        sampler="ddpm", sampler_steps=1000, diffusion_preset="paper", classifier_preset="paper",
    ),
}


def load_study_config(preset_name: str | None, config_file: str | Path | None) -> StudyConfig:
    """A preset, optionally overridden by a JSON file of StudyConfig fields."""
    base = STUDY_PRESETS.get(preset_name or "quick")
    if base is None:
        raise SvpgenError(f"unknown preset {preset_name!r}; choose from {', '.join(STUDY_PRESETS)}")
    if config_file:
        try:
            overrides = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SvpgenError(f"{config_file}: cannot read study config ({err})") from None
        base = StudyConfig.from_dict({**base.to_dict(), **overrides})
    return base
