"""What every importer shares: the collector that preprocesses crops, records skipped
inputs with their reason, and normalises instrument column names."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.data.preprocess import FitMode, preprocess
from svpgen.data.store import Particles

REPORT_COLUMNS = ("file", "row", "status", "reason", "id")


def normalise_header(name: str) -> str:
    """'Diameter (ESD) (µm)' → 'diameter_esd'; 'Image Height (px)' → 'image_height'.

    Units in trailing parentheses are dropped, µ becomes u, case is folded, and
    non-alphanumerics become underscores. '#' (MFI's particle number) becomes 'number'.
    """
    text = str(name).strip().replace("µ", "u").replace("μ", "u")
    if text == "#":
        return "number"
    text = re.sub(r"\s*\((?:um|px|pixels|s|sec|%|um2|um\^2|mm|ml)\)\s*$", "", text, flags=re.IGNORECASE)
    text = text.replace("#", " number ")
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


class Collector:
    """Accumulates preprocessed crops and the import report for one import."""

    def __init__(self, fit: FitMode = "crop"):
        self.fit = fit
        self.images: list[np.ndarray] = []
        self.rows: list[dict] = []
        self.report: list[dict] = []

    def add(self, gray8: np.ndarray, row: dict, file: str | Path, line: int | None = None, note: str = "") -> None:
        """Preprocess one crop and keep it; ``row`` holds id, label, origin and extras."""
        self.images.append(preprocess(gray8, fit=self.fit))
        row.setdefault("native_h", gray8.shape[0])
        row.setdefault("native_w", gray8.shape[1])
        self.rows.append(row)
        self.report.append({"file": str(file), "row": line, "status": "imported", "reason": note, "id": row["id"]})

    def skip(self, file: str | Path, reason: str, line: int | None = None) -> None:
        self.report.append({"file": str(file), "row": line, "status": "skipped", "reason": reason, "id": None})

    def particles(self, source: str = "real") -> Particles:
        table = pd.DataFrame(self.rows)
        images = np.stack(self.images) if self.images else np.zeros((0, 64, 64), np.uint8)
        extra = {c: table[c].to_numpy() for c in table.columns if c not in ("id", "label", "origin")}
        return Particles.from_arrays(
            images,
            labels=table["label"].to_numpy() if len(table) else [],
            source=source,
            ids=table["id"].to_numpy() if len(table) else [],
            origins=table["origin"].to_numpy() if len(table) else [],
            **extra,
        )

    def report_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.report, columns=list(REPORT_COLUMNS))
