"""Phase 1 configuration: the U-Net, the noise schedule, training, and the presets.

The ``paper`` preset is the paper's exact setup (Sec. 2.4): T = 1000 linear betas
1e-4 … 0.02, L1 loss on ε, U-Net dim 64 mults (1, 2, 4, 8), 1000 epochs on 1000 images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from svpgen.errors import SvpgenError
from svpgen.presets import lookup

LOSSES = ("l1", "mse")
OBJECTIVES = ("epsilon", "v", "edm")
# the samplers each objective can use (diffusers schedulers; see svpgen.diffusion.schedule)
SAMPLERS_FOR = {
    "epsilon": ("ddpm", "ddim", "dpmpp", "sde-dpmpp"),
    "v": ("ddpm", "ddim", "dpmpp", "sde-dpmpp"),
    "edm": ("edm-sde", "edm-dpmpp", "edm-euler"),
}
SAMPLERS = tuple(dict.fromkeys(s for names in SAMPLERS_FOR.values() for s in names))
ROUNDING = ("round", "truncate")
SYMMETRY_MODES = ("dihedral", "auto", "none")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


@dataclass(frozen=True)
class UNetConfig:
    """The paper's U-Net (:mod:`svpgen.diffusion.unet`): dim 64, mults (1, 2, 4, 8)."""

    dim: int = 64
    dim_mults: tuple[int, ...] = (1, 2, 4, 8)
    channels: int = 1
    groups: int = 8
    # levels (0 = full resolution) that get linear attention; None = every level (paper)
    linear_attention: tuple[int, ...] | None = None
    heads: int = 4
    dim_head: int = 32
    # the first convolution: 7×7 (denoising-diffusion-pytorch); the authors' release: 1×1
    init_kernel: int = 7
    # >1: pixel-unshuffle the input by this factor (and shuffle the output back): 4× less
    # compute at 2
    patch: int = 1

    def __post_init__(self):
        if self.patch not in (1, 2, 4):
            raise SvpgenError(f"patch must be 1, 2 or 4 (got {self.patch})")
        if self.init_kernel < 1 or self.init_kernel % 2 == 0:
            raise SvpgenError(f"init_kernel must be a positive odd number (got {self.init_kernel})")
        if self.dim < 1 or not self.dim_mults or any(m < 1 for m in self.dim_mults):
            raise SvpgenError(
                f"U-Net dim {self.dim} / dim_mults {self.dim_mults}: need positive values"
            )
        if self.dim % self.groups:
            raise SvpgenError(
                f"U-Net dim {self.dim} is not divisible by its {self.groups} GroupNorm groups"
            )
        levels = range(len(self.dim_mults))
        if self.linear_attention is not None and any(
            lv not in levels for lv in self.linear_attention
        ):
            raise SvpgenError(
                f"linear_attention levels {self.linear_attention} outside "
                f"0…{len(self.dim_mults) - 1}"
            )

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        d = dict(d)
        d["dim_mults"] = tuple(d["dim_mults"])
        if d.get("linear_attention") is not None:
            d["linear_attention"] = tuple(d["linear_attention"])
        return cls(**d)


@dataclass(frozen=True)
class ScheduleConfig:
    """The noising process and what the network predicts.

    * ``epsilon`` (the paper): DDPM forward process (T = 1000, linear betas 1e-4 … 0.02), the
      network predicts the noise ε.
    * ``v``: the same process, the network predicts v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans & Ho 2022).
    * ``edm``: Karras et al. 2022 preconditioning: x = y + σ·n with ln σ ~ N(p_mean, p_std²);
      D(x; σ) = c_skip·x + c_out·F(c_in·x, σ) with the data's σ_d; F is trained on
      (y − c_skip·x) / c_out, which equals EDM's λ-weighted denoising loss.
    """

    objective: str = "epsilon"
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"
    sigma_data: float = 0.5  # EDM: the data's std in [-1, 1] (measured on simulated crops: 0.49)
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    p_mean: float = -1.2  # EDM training noise levels: ln σ ~ N(p_mean, p_std²)
    p_std: float = 1.2

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise SvpgenError(
                f"unknown objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}"
            )
        if not 0 < self.sigma_min < self.sigma_max or self.sigma_data <= 0 or self.p_std <= 0:
            raise SvpgenError(
                "EDM noise settings must satisfy 0 < sigma_min < sigma_max, sigma_data > 0, "
                "p_std > 0"
            )
        if self.timesteps < 2:
            raise SvpgenError(f"timesteps must be ≥ 2 (got {self.timesteps})")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise SvpgenError(
                f"betas must satisfy 0 < beta_start < beta_end < 1 (got {self.beta_start}, "
                f"{self.beta_end})"
            )
        if self.beta_schedule not in BETA_SCHEDULES:
            raise SvpgenError(
                f"unknown beta_schedule {self.beta_schedule!r}; choose from "
                f"{', '.join(BETA_SCHEDULES)}"
            )

    def scheduler_kwargs(self) -> dict:
        """Keyword arguments shared by the DDPM-process (ε and v) diffusers schedulers."""
        return dict(
            num_train_timesteps=self.timesteps,
            beta_start=self.beta_start,
            beta_end=self.beta_end,
            beta_schedule=self.beta_schedule,
            prediction_type="v_prediction" if self.objective == "v" else "epsilon",
        )

    def edm_kwargs(self) -> dict:
        """Keyword arguments of diffusers' EDM schedulers."""
        return dict(sigma_min=self.sigma_min, sigma_max=self.sigma_max, sigma_data=self.sigma_data)


LR_SCHEDULES = ("constant", "cosine")
NETWORKS = ("unet", "pca-mlp")


@dataclass(frozen=True)
class LatentConfig:
    """The ``pca-mlp`` network (:mod:`svpgen.diffusion.latent`): ``components`` principal
    directions of the training images, an MLP of ``depth`` residual blocks of ``width``, and
    the latent prior the untrained model is exact for: one Gaussian (``mixture`` = 1, the
    principal coordinates' own variances) or a mixture of ``mixture`` full-covariance
    Gaussians fitted to the training images' latent codes."""

    components: int = 64
    width: int = 256
    depth: int = 4
    mixture: int = 1

    def __post_init__(self):
        if min(self.components, self.width, self.depth, self.mixture) < 1:
            raise SvpgenError(
                f"latent components, width, depth and mixture must be ≥ 1 "
                f"(got {self.components}, {self.width}, {self.depth}, {self.mixture})"
            )


@dataclass(frozen=True)
class ModelConfig:
    """What a model's weights depend on: the network, its settings, the noise schedule."""

    # the paper's U-Net, or "pca-mlp": a latent MLP (svpgen.diffusion.latent; EDM, MSE)
    network: str = "unet"
    unet: UNetConfig = field(default_factory=UNetConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)  # the pca-mlp network
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self):
        if self.network not in NETWORKS:
            raise SvpgenError(
                f"unknown network {self.network!r}; choose from {', '.join(NETWORKS)}"
            )


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained (paper: L1 on ε, 1000 epochs on 1000 images)."""

    loss: str = "l1"  # paper: L1 on ε; "mse" as an option
    # ε / v only: weight each sample by min(SNR, γ)/SNR (Hang et al. 2023)
    min_snr_gamma: float | None = None
    lr: float = 1e-4
    lr_schedule: str = "constant"  # paper: constant; "cosine": 5% warm-up, then cosine decay to 0
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
    channels_last: bool = False
    # the symmetries training augments with: all eight of the square (the paper's), those the
    # class's images do not reject ("auto", svpgen.data.augment.invariant_symmetries), or none
    symmetries: str = "dihedral"

    def __post_init__(self):
        if self.symmetries not in SYMMETRY_MODES:
            raise SvpgenError(
                f"unknown symmetries {self.symmetries!r}; choose from {', '.join(SYMMETRY_MODES)}"
            )
        if self.loss not in LOSSES:
            raise SvpgenError(f"unknown loss {self.loss!r} (use {' or '.join(LOSSES)})")
        for name in ("lr", "batch_size", "epochs", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise SvpgenError(f"diffusion {name} must be > 0 (got {getattr(self, name)})")
        if self.lr_schedule not in LR_SCHEDULES:
            raise SvpgenError(
                f"unknown lr_schedule {self.lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}"
            )
        if not 0 <= self.ema_decay < 1:
            raise SvpgenError(f"ema_decay must be in [0, 1) (got {self.ema_decay})")


@dataclass(frozen=True)
class SamplingConfig:
    """How a model samples by default: what `generate`, `Generator.sample` and FID use."""

    sampler: str = "dpmpp"
    sampler_steps: int | None = None  # None: the sampler's own default
    # clip x̂₀ to [-1, 1] while sampling (dpmpp: dynamic thresholding); the authors' code: no
    clip_sample: bool = True
    output_rounding: str = "round"  # [-1, 1] → uint8: round to nearest; the authors' code truncates

    def __post_init__(self):
        if self.output_rounding not in ROUNDING:
            raise SvpgenError(
                f"unknown output_rounding {self.output_rounding!r}; choose from "
                f"{', '.join(ROUNDING)}"
            )


_PARTS = {"model": ModelConfig, "training": TrainingConfig, "sampling": SamplingConfig}
# each setting's part, for the flat names (``cfg.lr``, ``DiffusionConfig(lr=...)``)
_PART_OF = {f.name: part for part, kind in _PARTS.items() for f in fields(kind)}


@dataclass(frozen=True, init=False)
class DiffusionConfig:
    """Phase 1: one diffusion model per minority class (paper Sec. 2.4), in three parts —
    the model (what its weights depend on), its training and its default sampling.

    Settings can be given and read by their own names as well as by part:
    ``DiffusionConfig(lr=1e-3)``, ``cfg.lr``, ``dataclasses.replace(cfg, epochs=10)``.
    """

    model: ModelConfig
    training: TrainingConfig
    sampling: SamplingConfig

    def __init__(
        self,
        model: ModelConfig | None = None,
        training: TrainingConfig | None = None,
        sampling: SamplingConfig | None = None,
        **settings,
    ):
        unknown = sorted(set(settings) - set(_PART_OF))
        if unknown:
            raise SvpgenError(f"unknown diffusion setting(s) {unknown}")
        given = {"model": model, "training": training, "sampling": sampling}
        for part, kind in _PARTS.items():
            own = {k: v for k, v in settings.items() if _PART_OF[k] == part}
            base = given[part] or kind()
            object.__setattr__(self, part, replace(base, **own) if own else base)
        self.__post_init__()

    def __post_init__(self):
        objective = self.model.schedule.objective
        allowed = SAMPLERS_FOR[objective]
        if self.sampling.sampler not in allowed:
            raise SvpgenError(
                f"sampler {self.sampling.sampler!r} does not fit the {objective} objective; "
                f"choose from {', '.join(allowed)}"
            )
        if self.training.min_snr_gamma is not None and (
            objective == "edm" or self.training.min_snr_gamma <= 0
        ):
            raise SvpgenError("min_snr_gamma needs the epsilon or v objective and a value > 0")
        if self.model.network == "pca-mlp" and (objective != "edm" or self.training.loss != "mse"):
            raise SvpgenError("the pca-mlp network needs the edm objective and the mse loss")

    def __getattr__(self, name: str):
        # a setting by its own name (cfg.lr is cfg.training.lr); only called for names that
        # are not attributes — the parts themselves are
        part = _PART_OF.get(name)
        if part is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, part), name)

    def to_dict(self) -> dict:
        return asdict(self)

    def architecture(self) -> tuple:
        """What a saved model's weights depend on: the network, its settings, the schedule."""
        m = self.model
        return m.network, m.latent if m.network == "pca-mlp" else m.unet, m.schedule

    @classmethod
    def from_dict(cls, d: dict) -> "DiffusionConfig":
        """A config from :meth:`to_dict` — or from a model saved before the config had parts
        (its settings side by side)."""
        flat = {**d.get("model", {}), **d.get("training", {}), **d.get("sampling", {})}
        flat |= {k: v for k, v in d.items() if k not in _PARTS}
        flat["unet"] = UNetConfig.from_dict(flat["unet"])
        flat["schedule"] = ScheduleConfig(**flat["schedule"])
        flat["latent"] = LatentConfig(**flat.get("latent", {}))
        flat["fid_epochs"] = tuple(flat.get("fid_epochs", ()))
        return cls(**{k: v for k, v in flat.items() if k in _PART_OF})

    @classmethod
    def from_preset(cls, name: str) -> "DiffusionConfig":
        """The ``smoke`` / ``quick`` / ``paper`` diffusion preset."""
        return lookup(PRESETS, name, "diffusion")


PRESETS: dict[str, DiffusionConfig] = {
    "smoke": DiffusionConfig(
        unet=UNetConfig(
            dim=8, dim_mults=(1, 2, 2), groups=4, linear_attention=(2,), heads=2, dim_head=8
        ),
        lr=1e-3,
        batch_size=8,
        epochs=2,
        max_images=32,
        checkpoint_every=1,
        fid_samples=16,
        sampler_steps=5,
    ),
    # chosen by measurement on simulated droplets and bubbles (README "The quick generator"):
    # EDM in the 128 principal components of the class's images, starting from the exact
    # denoiser of a 64-Gaussian mixture fitted to them, an MLP denoiser on top trained 1,000
    # optimizer steps of 200 images (≈ 45 s on one core), the EDM SDE solver at 20 steps without
    # clipping x̂₀ (the mixture's denoiser stays in range; clipping it at every step left
    # saturated droplet centres a noisy plateau below 255 that boosted trees tell from real);
    # augmented only by the symmetries the class's images keep (bubbles: the left-right mirror)
    "quick": DiffusionConfig(
        network="pca-mlp",
        latent=LatentConfig(components=128, width=256, depth=4, mixture=64),
        schedule=ScheduleConfig(objective="edm", p_mean=-0.4, p_std=1.6),
        loss="mse",
        lr=1e-3,
        batch_size=200,
        epochs=500,
        max_images=400,
        ema_decay=0.999,
        checkpoint_every=100,
        fid_epochs=(1, 100, 250, 500),
        fid_samples=100,
        sampler="edm-sde",
        sampler_steps=20,
        clip_sample=False,
        symmetries="auto",
    ),
    "paper": DiffusionConfig(fid_epochs=(1, 5, 10, 20, 50, 100, 200, 500, 1000), sampler="ddpm"),
}

# The quick preset's U-Net (its default before the pca-mlp network; `--network unet` with the
# quick preset): EDM with a wide noise-level distribution, MSE, 2×2 patches (4× less compute
# per image), 36 epochs × 400 images (≈ 3 min per class on 2 cores), EDM-DPM-Solver++ 20 steps.
QUICK_UNET = DiffusionConfig(
    unet=UNetConfig(
        dim=16,
        dim_mults=(1, 2, 2, 4),
        groups=8,
        linear_attention=(3,),
        heads=4,
        dim_head=16,
        patch=2,
    ),
    schedule=ScheduleConfig(objective="edm", p_mean=-0.4, p_std=1.6),
    loss="mse",
    lr=2e-3,
    batch_size=32,
    epochs=36,
    max_images=400,
    ema_decay=0.99,
    checkpoint_every=4,
    fid_epochs=(1, 12, 24, 36),
    fid_samples=100,
    sampler="edm-dpmpp",
    sampler_steps=20,
    channels_last=True,
)
