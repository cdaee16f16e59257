"""One home for a study's folder layout and for what a Table 2 cell is: the runner, the
grid, the comparisons and the report ask :class:`StudyLayout` where things live and name
cells with :class:`Cell`, instead of building and parsing path strings each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# the models of a cell that are not CNNs: the morphology baselines (svpgen.classify.baselines)
MORPHOLOGY_MODELS = ("rules", "forest", "boosting")
STAGES = ("data", "encoder", "diffusion", "generate", "audit", "grid", "baselines", "evaluate")


@dataclass(frozen=True)
class Cell:
    """One Table 2 cell: a model (a CNN architecture or a morphology baseline), a Table 1
    dataset and an imbalance strategy."""

    model: str
    dataset: str
    imbalance: str = "none"

    @property
    def key(self) -> str:
        """The cell's name, e.g. ``resnet18/Mixed-4`` or ``resnet18/Real-4+logit-adjust``."""
        return f"{self.model}/{self.dataset}" + (
            "" if self.imbalance == "none" else f"+{self.imbalance}"
        )

    @property
    def folder(self) -> str:
        """The cell's folder below its model's: ``Mixed-4``, ``Real-4_logit-adjust``."""
        return self.dataset + ("" if self.imbalance == "none" else f"_{self.imbalance}")

    @property
    def is_baseline(self) -> bool:
        """Whether the cell's model is a morphology baseline rather than a CNN."""
        return self.model in MORPHOLOGY_MODELS

    @property
    def real_dataset(self) -> str:
        """The Real-n set holding the cell's real images (Mixed-n's are Real-n's)."""
        return "Real-" + self.dataset.split("-")[1]

    @classmethod
    def from_key(cls, key: str) -> "Cell":
        """The cell a :attr:`key` names."""
        model, _, rest = key.partition("/")
        dataset, _, imbalance = rest.partition("+")
        return cls(model, dataset, imbalance or "none")

    @classmethod
    def from_folder(cls, model: str, folder: str) -> "Cell":
        """The cell a :attr:`folder` below ``model``'s folder holds."""
        dataset, _, imbalance = folder.partition("_")
        return cls(model, dataset, imbalance or "none")


@dataclass(frozen=True)
class StudyLayout:
    """Where everything of the study in ``root`` lives."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def settings(self) -> Path:
        """``study.json``: the resolved config and the data source."""
        return self.root / "study.json"

    @property
    def log(self) -> Path:
        """``study.log``: the timestamped lines the study printed."""
        return self.root / "study.log"

    def stage(self, name: str) -> Path:
        """A finished stage's record (its presence means: done)."""
        return self.root / "stages" / f"{name}.json"

    def stage_records(self) -> list[Path]:
        """The finished stages' records, in pipeline order."""
        order = {s: i for i, s in enumerate(STAGES)}
        found = (self.root / "stages").glob("*.json")
        return sorted(found, key=lambda p: (order.get(p.stem, len(STAGES)), p.stem))

    def _folders(self, name: str) -> list[Path]:
        """The folders below ``root/name``, sorted."""
        return sorted(p for p in (self.root / name).glob("*") if p.is_dir())

    def pool(self, name: str) -> Path:
        """A data pool's store: ``train``, ``tune``, ``eval``."""
        return self.root / "data" / name

    @property
    def data(self) -> Path:
        """The folder of the data pools."""
        return self.root / "data"

    def diffusion_pool(self, label: str) -> Path:
        """The store that trains ``label``'s generator."""
        return self.pool(f"diffusion_{label}")

    @property
    def encoder(self) -> Path:
        """The particle encoder (FID/KID/precision/recall features)."""
        return self.root / "encoder"

    def generator(self, label: str) -> Path:
        """``label``'s diffusion model."""
        return self.root / "diffusion" / label

    def generators(self) -> list[Path]:
        """The diffusion models trained so far."""
        return self._folders("diffusion")

    @property
    def generated_root(self) -> Path:
        """The folder of the generated stores."""
        return self.root / "generated"

    def generated(self, label: str) -> Path:
        """The store of ``label``'s generated images."""
        return self.generated_root / label

    def audit(self, label: str) -> Path:
        """``label``'s generative audit."""
        return self.root / "audit" / label

    def audits(self) -> list[Path]:
        """The audits written so far."""
        return self._folders("audit")

    @property
    def runs(self) -> Path:
        """The grid trials' run folders (``runs/<model>/<cell>/<grid point>``)."""
        return self.root / "runs"

    @property
    def grid_results(self) -> Path:
        """Every trial's record and the best per cell."""
        return self.root / "grid_results.json"

    @property
    def ray(self) -> Path:
        """Ray Tune's own storage."""
        return self.root / "ray"

    def baseline(self, cell: Cell) -> Path:
        """A morphology baseline fitted for ``cell`` (``baselines/<kind>/<Real-n>``)."""
        return self.root / "baselines" / cell.model / cell.dataset

    def baselines(self) -> list[tuple[Cell, Path]]:
        """The morphology baselines fitted so far."""
        found = sorted((self.root / "baselines").glob("*/*/config.json"))
        return [(Cell(p.parent.parent.name, p.parent.name), p.parent) for p in found]

    def evaluation(self, cell: Cell, seed: int = 0) -> Path:
        """A cell's evaluation for one training seed (``eval/<model>/<cell>/seed<k>``)."""
        return self.root / "eval" / cell.model / cell.folder / f"seed{seed}"

    def evaluations(self) -> list[tuple[Cell, int, Path]]:
        """Every evaluation written so far (those with predictions), by cell and seed."""
        out = []
        for cell_dir in sorted(p for p in (self.root / "eval").glob("*/*") if p.is_dir()):
            cell = Cell.from_folder(cell_dir.parent.name, cell_dir.name)
            seeds = [(int(re.sub(r"\D", "", p.name) or 0), p) for p in cell_dir.glob("seed*")]
            out += [(cell, k, p) for k, p in sorted(seeds) if (p / "predictions.csv").exists()]
        return out

    @property
    def report(self) -> Path:
        """The report's folder."""
        return self.root / "report"

    @property
    def figures(self) -> Path:
        """The report's figures."""
        return self.report / "figures"
