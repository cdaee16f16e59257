"""Phase 2 configuration: the classifier, its training, and the presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from svpgen.errors import SvpgenError
from svpgen.presets import lookup

ARCHS = ("resnet18", "resnet50")
STEMS = ("standard", "small")
OPTIMIZERS = ("adam", "adamw")
IMBALANCE = ("none", "weighted", "oversample", "logit-adjust")


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
    patience: int = 5  # early stopping: evaluations on the tuning split without improvement
    # train at least this many optimizer steps (more epochs on small datasets, no early stop
    # before): quick's Real-2 (350 images, 6 steps/epoch) otherwise stopped after 30 steps
    # predicting protein only
    min_steps: int = 0
    imbalance: str = "none"  # none (paper) | weighted | oversample | logit-adjust
    seed: int = 0
    channels_last: bool = True
    # input: the gray crop scaled to [0, 1], repeated to ``in_chans`` channels, then
    # (x − mean) / std. No per-image standardisation: the absolute gray level is a class cue.
    in_chans: int = 1
    input_mean: tuple[float, ...] = (0.6,)
    input_std: tuple[float, ...] = (0.2,)

    def __post_init__(self):
        if self.in_chans not in (1, 3):
            raise SvpgenError(
                f"in_chans must be 1 (gray) or 3 (gray repeated), got {self.in_chans}"
            )
        for name in ("input_mean", "input_std"):
            if len(getattr(self, name)) not in (1, self.in_chans):
                raise SvpgenError(f"{name} {getattr(self, name)} needs 1 or {self.in_chans} values")
        if any(v <= 0 for v in self.input_std):
            raise SvpgenError(f"input_std must be > 0 (got {self.input_std})")
        for name, allowed in (
            ("arch", ARCHS),
            ("stem", STEMS),
            ("optimizer", OPTIMIZERS),
            ("imbalance", IMBALANCE),
        ):
            if getattr(self, name) not in allowed:
                raise SvpgenError(
                    f"unknown {name} {getattr(self, name)!r}; choose from {', '.join(allowed)}"
                )
        for name in ("lr", "batch_size", "epochs", "patience"):
            if getattr(self, name) <= 0:
                raise SvpgenError(f"classifier {name} must be > 0 (got {getattr(self, name)})")
        if self.min_steps < 0:
            raise SvpgenError(f"classifier min_steps must be ≥ 0 (got {self.min_steps})")

    def to_dict(self) -> dict:
        return asdict(self)

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Epochs to run: ``epochs``, or more where that is needed for ``min_steps``."""
        return max(self.epochs, -(-self.min_steps // max(1, steps_per_epoch)))

    def evaluate_every(self, steps_per_epoch: int) -> int:
        """Epochs between evaluations on the tuning split: 1, or — where ``min_steps``
        stretches a small set's training — as many as keep it to about ``epochs``
        evaluations (scoring 600 tuning images after every 6-step epoch took a third of
        the quick study's Real-2 trial)."""
        return -(-self.epochs_for(steps_per_epoch) // self.epochs)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        )

    @classmethod
    def from_preset(cls, name: str) -> "ClassifierConfig":
        """The ``smoke`` / ``quick`` / ``paper`` classifier preset."""
        return lookup(PRESETS, name, "classifier")


PRESETS: dict[str, ClassifierConfig] = {
    "smoke": ClassifierConfig(arch="resnet18", batch_size=16, epochs=2, patience=2),
    "quick": ClassifierConfig(arch="resnet18", batch_size=64, epochs=5, patience=3, min_steps=100),
    "paper": ClassifierConfig(arch="resnet18", epochs=100, patience=10),
}
