"""``svpgen import``: read a folder tree or an instrument export into a ParticleStore.

Every skipped input is listed with its reason in ``OUT/import_report.csv``; the import
fails only when nothing usable was found, and it never half-writes the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from svpgen.atomic import write_csv
from svpgen.data.importers.common import Collector
from svpgen.data.importers.flowcam import import_flowcam_csv, import_lst
from svpgen.data.importers.folder import import_folder
from svpgen.data.importers.mfi import find_header_line, import_mfi
from svpgen.data.preprocess import FitMode
from svpgen.data.store import ParticleStore, Particles, WriteMode, provenance_record
from svpgen.errors import SvpgenError

ImportFormat = Literal["auto", "folder", "flowcam", "mfi"]


@dataclass
class ImportResult:
    particles: Particles
    report: pd.DataFrame
    format: str

    def skip_counts(self) -> pd.Series:
        skipped = self.report[self.report["status"] == "skipped"]
        return skipped["reason"].str.replace(r"\s*\(.*\)$", "", regex=True).value_counts()


def _csv_kind(path: Path) -> str | None:
    if find_header_line(path, "ECD") is not None:
        return "mfi"
    with open(path, errors="replace") as fh:
        head = fh.readline().lower()
    return "flowcam" if "image file" in head else None


def detect_format(src: Path) -> str:
    """Guess the export format of ``src`` (a folder, a ``.lst`` or a CSV file)."""
    if src.is_file():
        if src.suffix.lower() == ".lst":
            return "flowcam"
        if src.suffix.lower() == ".csv":
            kind = _csv_kind(src)
            if kind:
                return kind
        raise SvpgenError(f"{src}: cannot tell the format of this file (expected a .lst, a FlowCam CSV or an MFI CSV)")
    if any(src.glob("*.lst")):
        return "flowcam"
    for csv in sorted(src.glob("*.csv")):
        kind = _csv_kind(csv)
        if kind:
            return kind
    return "folder"


def read_source(src: str | Path, fmt: ImportFormat = "auto", fit: FitMode = "crop", drop_edge: bool = False) -> ImportResult:
    """Read ``src`` into memory (preprocessed 64×64 crops + table + report)."""
    src = Path(src)
    if not src.exists():
        raise SvpgenError(f"{src}: no such file or directory")
    fmt = detect_format(src) if fmt == "auto" else fmt
    collector = Collector(fit)
    folder = src if src.is_dir() else src.parent
    if fmt == "folder":
        if not src.is_dir():
            raise SvpgenError(f"{src}: the folder format needs a directory")
        import_folder(src, collector)
    elif fmt == "flowcam":
        lsts = [src] if src.suffix.lower() == ".lst" else sorted(folder.glob("*.lst"))
        csvs = [src] if src.suffix.lower() == ".csv" else [p for p in sorted(folder.glob("*.csv")) if _csv_kind(p) == "flowcam"]
        if not lsts and not csvs:
            raise SvpgenError(f"{src}: no FlowCam .lst file or CSV data export found")
        for lst in lsts:
            import_lst(lst, collector)
        if not lsts:
            for csv in csvs:
                import_flowcam_csv(csv, collector)
    elif fmt == "mfi":
        csvs = [src] if src.is_file() else sorted(folder.glob("*.csv"))
        if not csvs:
            raise SvpgenError(f"{src}: no MFI CSV file found")
        for csv in csvs:
            import_mfi(csv, collector, drop_edge=drop_edge)
    else:
        raise SvpgenError(f"unknown format {fmt!r} (use auto, folder, flowcam or mfi)")
    return ImportResult(collector.particles(), collector.report_frame(), fmt)


def import_source(
    src: str | Path,
    out: str | Path,
    fmt: ImportFormat = "auto",
    fit: FitMode = "crop",
    mode: WriteMode = "create",
    drop_edge: bool = False,
    command: str = "svpgen import",
) -> tuple[ParticleStore, ImportResult]:
    """Import ``src`` into the store ``out``; write ``out/import_report.csv``."""
    result = read_source(src, fmt, fit, drop_edge)
    out = Path(out)
    if len(result.particles) == 0:
        counts = ", ".join(f"{n} {r}" for r, n in result.skip_counts().items()) or "no files"
        raise SvpgenError(f"{src}: nothing usable found ({counts})")
    record = provenance_record(command, source_path=str(Path(src).resolve()), format=result.format, fit=fit)
    store = ParticleStore.write(out, result.particles, record, mode=mode)
    write_csv(out / "import_report.csv", result.report)
    return store, result
