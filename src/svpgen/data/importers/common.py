"""What every importer shares: the collector that preprocesses crops, resolves the lab's
class names to labels, and records skipped inputs with their reason."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.data.classes import UNKNOWN, class_label, normalise_class_name, resolve_class_names
from svpgen.data.preprocess import IMAGE_SIZE, FitMode, preprocess
from svpgen.data.store import Particles

REPORT_COLUMNS = ("file", "row", "status", "reason", "id")


class Collector:
    """Accumulates preprocessed crops, instrument rows without an image, and the import
    report for one import.

    Importers keep each particle's original class name (instrument class, library or
    class folder) in ``vs_class``; :meth:`particles` turns the names into labels all
    together (:func:`~svpgen.data.classes.resolve_class_names`, with ``class_map`` first).
    ``label`` gives every particle one class instead: a single-class sample's run.
    """

    def __init__(
        self,
        fit: FitMode = "crop",
        label: str | None = None,
        class_map: Mapping[str, str] | None = None,
    ):
        self.fit = fit
        self.label = class_label(label) if label is not None else None
        self.class_map = dict(class_map or {})
        self.images: list[np.ndarray] = []
        self.rows: list[dict] = []
        self.measured: list[dict] = []
        self.report: list[dict] = []

    def add(
        self,
        gray8: np.ndarray,
        row: dict,
        file: str | Path,
        line: int | None = None,
        note: str = "",
    ) -> None:
        """Preprocess one crop and keep it; ``row`` holds id, origin, ``vs_class`` and extras."""
        self.images.append(preprocess(gray8, fit=self.fit))
        row.setdefault("native_h", gray8.shape[0])
        row.setdefault("native_w", gray8.shape[1])
        self.rows.append(row)
        self.report.append(
            {"file": str(file), "row": line, "status": "imported", "reason": note, "id": row["id"]}
        )

    def measure(self, row: dict, file: str | Path, line: int | None, reason: str) -> None:
        """Keep an instrument row that has no image (for the morphology baselines)."""
        self.measured.append(row)
        self.report.append(
            {
                "file": str(file),
                "row": line,
                "status": "measured",
                "reason": reason,
                "id": row["id"],
            }
        )

    def skip(self, file: str | Path, reason: str, line: int | None = None) -> None:
        """Record an input that was not imported, with its reason."""
        self.report.append(
            {"file": str(file), "row": line, "status": "skipped", "reason": reason, "id": None}
        )

    def _names(self) -> list[str]:
        return [n for r in self.rows + self.measured if (n := _class_name(r.get("vs_class")))]

    def labels(self) -> dict[str, str]:
        """Every original class name seen (particles and measurements) → its label."""
        return resolve_class_names(self._names(), self.class_map)

    def unmatched_map_entries(self) -> list[str]:
        """Class-map entries that matched no class name of the import."""
        seen = {normalise_class_name(n) for n in self._names()}
        return sorted(k for k in self.class_map if k not in seen)

    def _labelled(self, rows: list[dict]) -> pd.DataFrame:
        table = pd.DataFrame(rows)
        if not len(table):
            return table
        if self.label is not None:
            table["label"] = self.label
        elif "vs_class" in table.columns:
            mapping = self.labels()
            table["label"] = [mapping.get(_class_name(v) or "", UNKNOWN) for v in table["vs_class"]]
        else:
            table["label"] = UNKNOWN
        return table

    def particles(self, source: str = "real") -> Particles:
        """Everything collected as a batch of particles."""
        table = self._labelled(self.rows)
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

    def measurements(self, source: str = "real") -> pd.DataFrame:
        """The instrument rows kept without an image, labelled like the particles."""
        table = self._labelled(self.measured)
        if len(table):
            table["source"] = source
        return table

    def report_frame(self) -> pd.DataFrame:
        """The import report: file, row, status, reason, id."""
        return pd.DataFrame(self.report, columns=list(REPORT_COLUMNS))


def _class_name(value) -> str | None:
    """An original class name as text; None for a missing one (None, NaN, blank)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None
