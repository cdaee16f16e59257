"""The study's configuration: the paper's Table 1, its grid, and the study presets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from svpgen.errors import SvpgenError
from svpgen.presets import lookup

# The paper's Table 1: protein images (thousands) per configuration; every configuration
# has 1K real images of each minority class; Mixed-n adds generated minority images until
# each minority class matches the protein count.
TABLE1_PROTEIN_K = {
    "Real-0": 1,
    "Real-1": 2,
    "Real-2": 5,
    "Real-3": 10,
    "Real-4": 20,
    "Mixed-1": 2,
    "Mixed-2": 5,
    "Mixed-3": 10,
    "Mixed-4": 20,
}
PAPER_GRID = {
    "optimizer": ("adam", "adamw"),
    "lr": (1e-5, 5e-4, 1e-4, 5e-3, 1e-3, 5e-2, 1e-2),
    "weight_decay": (1e-5, 1e-4, 1e-3),
    "batch_size": (32, 64, 128),
}


_RENAMED = {"eval_protein": "eval_majority", "tune_protein": "tune_majority"}  # older settings


@dataclass(frozen=True)
class StudyConfig:
    """The whole two-phase study: data → diffusion → generation → Table 1 → grid → Table 2."""

    preset: str = "quick"
    scale: float = 0.05  # multiplies Table 1's counts (paper: 1.0)
    datasets: tuple[str, ...] = (
        "Real-2",
        "Real-4",
        "Mixed-2",
        "Mixed-4",
    )  # the two Mixed-n vs Real-n pairs
    archs: tuple[str, ...] = ("resnet18",)
    grid: dict = field(
        default_factory=lambda: {
            "optimizer": ("adam",),
            "lr": (1e-3,),
            "weight_decay": (1e-4,),
            "batch_size": (64,),
        }
    )
    selection_metric: str = "macro_auprc"  # on the tuning split
    baselines: tuple[str, ...] = ("logit-adjust",)  # imbalance baselines, run on baseline_dataset
    baseline_dataset: str = "Real-4"
    # the field's baselines on the particles' morphology parameters, fitted on each Real-n
    morphology_baselines: tuple[str, ...] = ("rules", "forest")
    # the study's classes, its minority classes (each gets a generator) and the deployment
    # prevalence per class (in ``classes`` order, or {class: value}); None: derived — from the
    # data's labelled classes with --data (else protein and the minority classes), the paper's
    # silicone oil and air bubbles (where present; else every class but the most frequent),
    # and 1000 per majority class : 1 per minority class. ``resolve_classes`` fills them in.
    classes: tuple[str, ...] | None = None
    minority: tuple[str, ...] | None = None
    prevalence: tuple[float, ...] | dict[str, float] | None = None
    diffusion_images: int = 400  # per minority class, disjoint from everything else
    # evaluation images per majority class (protein in the paper; 500,000 there): ≥ 30,000
    # measure a majority false-positive rate to ±0.05%
    eval_majority: int = 30_000
    eval_minority: int = 1_000  # paper: 500
    tune_majority: int = 400
    tune_minority: int = 100
    label_noise: float = 0.03  # simulated training pools; the evaluation set uses ground truth
    simulator: str = "flowcam"  # the simulator's calibration profile (svpgen.simulate.SimConfig)
    sampler: str | None = None  # None: each diffusion model's recommended sampler (config.json)
    sampler_steps: int | None = None
    audit: bool = True  # particle encoder, FID/KID per diffusion epoch, audit of generated images
    encoder_epochs: int = 3
    diffusion_preset: str = "quick"
    classifier_preset: str = "quick"
    seed: int = 0
    # classifier training seeds per cell; ≥ 2 adds the between-seed spread to every interval
    seeds: int = 1
    bootstrap: int = 400  # stratified bootstrap replicates behind Table 2's intervals
    # int8 inference for the evaluation, kept while it stays within 0.5 points macro AUPRC of
    # fp32 on the quick study (bench_classify --model/--eval); the paper preset uses fp32
    eval_int8: bool = True

    def __post_init__(self):
        unknown = [d for d in (*self.datasets, self.baseline_dataset) if d not in TABLE1_PROTEIN_K]
        if unknown:
            raise SvpgenError(
                f"unknown dataset(s) {unknown}; Table 1 has {', '.join(TABLE1_PROTEIN_K)}"
            )
        strays = sorted(set(self.morphology_baselines) - {"rules", "forest", "boosting"})
        if strays:
            raise SvpgenError(f"unknown morphology baseline(s) {strays}; rules, forest or boosting")
        if self.scale <= 0:
            raise SvpgenError(f"scale must be > 0 (got {self.scale})")
        if self.seeds < 1 or self.bootstrap < 50:
            raise SvpgenError(
                f"seeds must be ≥ 1 and bootstrap ≥ 50 (got {self.seeds}, {self.bootstrap})"
            )
        if self.classes is not None:
            if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
                raise SvpgenError(f"a study needs ≥ 2 distinct classes (got {self.classes})")
            strays = [c for c in self.minority or () if c not in self.classes]
            if strays:
                raise SvpgenError(f"minority class(es) {strays} are not among {self.classes}")
            if self.minority is not None and len(self.minority) >= len(self.classes):
                raise SvpgenError(f"minority {self.minority} leaves no majority class")
            if isinstance(self.prevalence, tuple) and len(self.prevalence) != len(self.classes):
                raise SvpgenError(
                    f"prevalence {self.prevalence} needs one value per class {self.classes}"
                )

    @property
    def majority(self) -> tuple[str, ...]:
        """The classes that are not minority classes (protein in the paper)."""
        return tuple(c for c in self.classes or () if c not in (self.minority or ()))

    def prevalence_by_class(self) -> dict[str, float]:
        """The deployment prevalence per class (a resolved config)."""
        return dict(zip(self.classes, self.prevalence))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudyConfig":
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known - set(_RENAMED))
        if bad:
            raise SvpgenError(f"unknown study setting(s) {bad}; known: {', '.join(known)}")
        out = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        for old, new in _RENAMED.items():
            if old in out:
                out[new] = out.pop(old)
        if "grid" in out:
            out["grid"] = {
                k: tuple(v) if isinstance(v, (list, tuple)) else (v,)
                for k, v in out["grid"].items()
            }
        return cls(**out)

    @classmethod
    def from_preset(cls, name: str) -> "StudyConfig":
        """The ``smoke`` / ``quick`` / ``paper`` study preset."""
        return lookup(PRESETS, name, "study")


PRESETS: dict[str, StudyConfig] = {
    "smoke": StudyConfig(
        preset="smoke",
        scale=0.01,
        datasets=("Real-0", "Mixed-2"),
        baselines=("weighted",),
        baseline_dataset="Real-0",
        diffusion_images=24,
        eval_majority=300,
        eval_minority=20,
        tune_majority=40,
        tune_minority=12,
        bootstrap=100,
        sampler_steps=4,
        encoder_epochs=1,
        diffusion_preset="smoke",
        classifier_preset="smoke",
    ),
    "quick": StudyConfig(),
    "paper": StudyConfig(
        preset="paper",
        scale=1.0,
        datasets=tuple(TABLE1_PROTEIN_K),
        archs=("resnet18", "resnet50"),
        grid=dict(PAPER_GRID),
        baselines=("weighted", "oversample", "logit-adjust"),
        diffusion_images=1000,
        eval_majority=500_000,
        eval_minority=500,
        tune_majority=4000,
        tune_minority=500,
        diffusion_preset="paper",
        classifier_preset="paper",
        eval_int8=False,
    ),
}


def load_study_config(preset_name: str | None, config_file: str | Path | None) -> StudyConfig:
    """A preset, optionally overridden by a JSON file of StudyConfig fields."""
    base = StudyConfig.from_preset(preset_name or "quick")
    if config_file:
        try:
            overrides = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SvpgenError(f"{config_file}: cannot read study config ({err})") from None
        base = StudyConfig.from_dict({**base.to_dict(), **overrides})
    return base
