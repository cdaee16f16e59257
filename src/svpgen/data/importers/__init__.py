"""``svpgen import``: read a folder tree or an instrument export into a ParticleStore.

What an input is comes from its content (:mod:`svpgen.data.importers.sniff`), not only its
extension: FlowCam runs (``.lst`` + collages, with an optional ``.cla`` classification),
FlowCam libraries (``.flb`` + ``_lib_images_`` collages, anywhere below a folder), FlowCam
particle CSV exports, MFI CSV exports, or a folder-per-class image tree.

Every skipped input is listed with its reason in ``OUT/import_report.csv``; the import
fails only when nothing usable was found, and it never half-writes the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from svpgen.atomic import write_csv
from svpgen.data.classes import UNKNOWN, canonical_label
from svpgen.data.importers.common import Collector
from svpgen.data.importers.flowcam import import_flowcam_csv, import_list
from svpgen.data.importers.folder import import_folder
from svpgen.data.importers.mfi import import_mfi
from svpgen.data.importers.sniff import sniff
from svpgen.data.preprocess import FitMode
from svpgen.data.store import Particles, ParticleStore, WriteMode, provenance_record
from svpgen.errors import SvpgenError

ImportFormat = Literal["auto", "folder", "flowcam", "mfi"]
_TABLE_SUFFIXES = (".lst", ".flb", ".csv", ".txt")


@dataclass
class ImportResult:
    """What an import read: the particles, the per-input report, the detected format."""

    particles: Particles
    report: pd.DataFrame
    format: str

    def skip_counts(self) -> pd.Series:
        """Skipped inputs per reason (details in parentheses folded away)."""
        skipped = self.report[self.report["status"] == "skipped"]
        return skipped["reason"].str.replace(r"\s*\(.*\)$", "", regex=True).value_counts()


@dataclass
class _Inputs:
    """The instrument files found under a source, by kind."""

    lists: list[Path]  # .lst runs
    libraries: list[Path]  # .flb libraries
    flowcam_csvs: list[Path]
    mfi_csvs: list[Path]


def _find_inputs(src: Path) -> _Inputs:
    if src.is_file():
        files = [src]
    else:
        files = sorted(
            p
            for p in src.rglob("*")
            if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES and not p.name.startswith(".")
        )
    kinds = {p: sniff(p) for p in files}
    lists = [p for p, k in kinds.items() if k == "flowcam-list"]
    return _Inputs(
        lists=[p for p in lists if p.suffix.lower() != ".flb"],
        libraries=[p for p in lists if p.suffix.lower() == ".flb"],
        flowcam_csvs=[p for p, k in kinds.items() if k == "flowcam-csv"],
        mfi_csvs=[p for p, k in kinds.items() if k == "mfi"],
    )


def detect_format(src: Path, inputs: _Inputs | None = None) -> str:
    """'flowcam', 'mfi' or 'folder' for a source (a folder or a single file)."""
    inputs = inputs or _find_inputs(src)
    if inputs.lists or inputs.libraries or inputs.flowcam_csvs:
        return "flowcam"
    if inputs.mfi_csvs:
        return "mfi"
    if src.is_file():
        raise SvpgenError(
            f"{src}: cannot tell the format of this file (expected a FlowCam .lst/.flb, a FlowCam particle CSV or an MFI CSV)"
        )
    return "folder"


def _prefix(path: Path, root: Path) -> str:
    """A particle-id prefix unique within the import: the file's path below the root."""
    base = root if root.is_dir() else root.parent
    return path.relative_to(base).with_suffix("").as_posix()


def _import_flowcam(src: Path, inputs: _Inputs, collector: Collector) -> None:
    if not (inputs.lists or inputs.libraries or inputs.flowcam_csvs):
        raise SvpgenError(f"{src}: no FlowCam .lst/.flb file or particle CSV export found")
    for lst in inputs.lists:
        import_list(lst, collector, _prefix(lst, src))
    for flb in inputs.libraries:
        import_list(flb, collector, _prefix(flb, src), library=True)
    covered = {p.parent for p in inputs.lists + inputs.libraries}
    for csv in inputs.flowcam_csvs:
        if csv.parent in covered and not src.is_file():
            collector.skip(
                csv,
                "particle CSV beside a .lst/.flb describing the same particles (the list file was imported)",
            )
            continue
        import_flowcam_csv(csv, collector, _prefix(csv, src))


def read_source(
    src: str | Path,
    fmt: ImportFormat = "auto",
    fit: FitMode = "crop",
    drop_edge: bool = False,
    label: str | None = None,
) -> ImportResult:
    """Read ``src`` into memory (preprocessed 64×64 crops + table + report). ``label``
    assigns one class to every particle (a run of a single-class sample)."""
    src = Path(src)
    if not src.exists():
        raise SvpgenError(f"{src}: no such file or directory")
    if label is not None:
        canon = canonical_label(label)
        if canon in (None, UNKNOWN):
            raise SvpgenError(
                f"--label {label!r} is not a particle class (e.g. protein, silicone_oil, air_bubble)"
            )
        label = canon
    inputs = None if fmt == "folder" else _find_inputs(src)
    fmt = detect_format(src, inputs) if fmt == "auto" else fmt
    collector = Collector(fit, label)
    if fmt == "folder":
        if not src.is_dir():
            raise SvpgenError(f"{src}: the folder format needs a directory")
        import_folder(src, collector)
    elif fmt == "flowcam":
        _import_flowcam(src, inputs, collector)
    elif fmt == "mfi":
        if not inputs.mfi_csvs:
            raise SvpgenError(
                f"{src}: no header line containing 'ECD' and MFI particle columns found; no MFI CSV export"
            )
        for csv in inputs.mfi_csvs:
            import_mfi(csv, collector, _prefix(csv, src), drop_edge=drop_edge)
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
    label: str | None = None,
) -> tuple[ParticleStore, ImportResult]:
    """Import ``src`` into the store ``out``; write ``out/import_report.csv``."""
    result = read_source(src, fmt, fit, drop_edge, label)
    out = Path(out)
    if len(result.particles) == 0:
        counts = ", ".join(f"{n} {r}" for r, n in result.skip_counts().items()) or "no files"
        raise SvpgenError(f"{src}: nothing usable found ({counts})")
    record = provenance_record(
        command, source_path=str(Path(src).resolve()), format=result.format, fit=fit, label=label
    )
    store = ParticleStore.write(out, result.particles, record, mode=mode)
    write_csv(out / "import_report.csv", result.report)
    return store, result
