"""What every importer shares: the collector that preprocesses crops and records skipped
inputs with their reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.data.preprocess import IMAGE_SIZE, FitMode, preprocess
from svpgen.data.store import Particles

REPORT_COLUMNS = ("file", "row", "status", "reason", "id")


class Collector:
    """Accumulates preprocessed crops and the import report for one import. ``label``
    (a canonical class) overrides every particle's label: a single-class sample's run."""

    def __init__(self, fit: FitMode = "crop", label: str | None = None):
        self.fit, self.label = fit, label
        self.images: list[np.ndarray] = []
        self.rows: list[dict] = []
        self.report: list[dict] = []

    def add(
        self,
        gray8: np.ndarray,
        row: dict,
        file: str | Path,
        line: int | None = None,
        note: str = "",
    ) -> None:
        """Preprocess one crop and keep it; ``row`` holds id, label, origin and extras."""
        self.images.append(preprocess(gray8, fit=self.fit))
        row.setdefault("native_h", gray8.shape[0])
        row.setdefault("native_w", gray8.shape[1])
        if self.label:
            row["label"] = self.label
        self.rows.append(row)
        self.report.append(
            {"file": str(file), "row": line, "status": "imported", "reason": note, "id": row["id"]}
        )

    def skip(self, file: str | Path, reason: str, line: int | None = None) -> None:
        """Record an input that was not imported, with its reason."""
        self.report.append(
            {"file": str(file), "row": line, "status": "skipped", "reason": reason, "id": None}
        )

    def particles(self, source: str = "real") -> Particles:
        """Everything collected as a batch of particles."""
        table = pd.DataFrame(self.rows)
        images = (
            np.stack(self.images)
            if self.images
            else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        )
        extra = {
            c: table[c].to_numpy() for c in table.columns if c not in ("id", "label", "origin")
        }
        return Particles.from_arrays(
            images,
            labels=table["label"].to_numpy() if len(table) else [],
            source=source,
            ids=table["id"].to_numpy() if len(table) else [],
            origins=table["origin"].to_numpy() if len(table) else [],
            **extra,
        )

    def report_frame(self) -> pd.DataFrame:
        """The import report: file, row, status, reason, id."""
        return pd.DataFrame(self.report, columns=list(REPORT_COLUMNS))
