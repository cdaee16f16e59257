"""``svpgen import``: read a folder tree or an instrument export into a ParticleStore.

What an input is comes from its content (:mod:`svpgen.data.importers.sniff`), not only its
extension: FlowCam runs (``.lst`` + collages, with an optional ``.cla`` classification),
FlowCam libraries (``.flb`` + ``_lib_images_`` collages, anywhere below a folder), FlowCam
particle CSV exports, MFI CSV exports, bare collage images (split into their tiles), or a
folder-per-class image tree (whose collages are split too).

Class names are the lab's own: every original name is kept in ``vs_class`` and all of an
import's names become labels together (a class map first, then the canonical synonyms,
else the name itself; :func:`svpgen.data.classes.resolve_class_names`).

Every skipped input is listed with its reason in ``OUT/import_report.csv``; the import
fails only when nothing usable was found, and it never half-writes the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from svpgen.atomic import write_csv
from svpgen.data.classes import UNKNOWN, class_label
from svpgen.data.images import IMAGE_SUFFIXES, ImageReadError, read_gray8
from svpgen.data.importers.collage import collage_tiles
from svpgen.data.importers.common import Collector
from svpgen.data.importers.flowcam import import_flowcam_csv, import_list
from svpgen.data.importers.folder import import_folder, import_images
from svpgen.data.importers.mfi import import_mfi
from svpgen.data.importers.sniff import sniff
from svpgen.data.preprocess import FitMode
from svpgen.data.store import Particles, ParticleStore, WriteMode, provenance_record
from svpgen.errors import SvpgenError

ImportFormat = Literal["auto", "folder", "collage", "flowcam", "mfi"]
_TABLE_SUFFIXES = (".lst", ".flb", ".csv", ".txt")


@dataclass
class ImportResult:
    """What an import read: the particles, the per-input report, the detected format."""

    particles: Particles
    report: pd.DataFrame
    format: str
    measurements: pd.DataFrame  # instrument rows without an image
    class_labels: dict[str, str]  # each original class name → its label
    unmatched_map_entries: list[str]  # class-map entries no class name matched

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
    """'flowcam', 'mfi', 'collage' (a single collage image) or 'folder' for a source."""
    inputs = inputs or _find_inputs(src)
    if inputs.lists or inputs.libraries or inputs.flowcam_csvs:
        return "flowcam"
    if inputs.mfi_csvs:
        return "mfi"
    if src.is_file():
        if src.suffix.lower() in IMAGE_SUFFIXES:
            try:
                gray = read_gray8(src)
            except ImageReadError as err:
                raise SvpgenError(f"{src}: unreadable image ({err})") from None
            if collage_tiles(gray) is not None:
                return "collage"
            raise SvpgenError(
                f"{src}: an image that is no collage (no black background holding ≥ 2 "
                "particle tiles); import single-particle images as a folder"
            )
        raise SvpgenError(
            f"{src}: cannot tell the format of this file (expected a FlowCam .lst/.flb, "
            "a FlowCam particle CSV, an MFI CSV or a collage image)"
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
                "particle CSV beside a .lst/.flb describing the same particles (the list file was "
                "imported)",
            )
            continue
        import_flowcam_csv(csv, collector, _prefix(csv, src))


def read_source(
    src: str | Path,
    *,
    fmt: ImportFormat = "auto",
    fit: FitMode = "crop",
    drop_edge: bool = False,
    label: str | None = None,
    class_map: Mapping[str, str] | None = None,
    pixel_um: float | None = None,
) -> ImportResult:
    """Read ``src`` into memory (preprocessed 64×64 crops + table + report). ``label``
    assigns one class to every particle (a run of a single-class sample); ``class_map``
    maps the lab's class names (lab name → class) before the synonyms do; ``pixel_um``
    sets µm per pixel for images that carry none (collages, image folders)."""
    src = Path(src)
    if not src.exists():
        raise SvpgenError(f"{src}: no such file or directory")
    if label is not None and class_label(label) == UNKNOWN:
        raise SvpgenError(f"--label {label!r} is not a class name (e.g. silicone_oil, protein)")
    if pixel_um is not None and not pixel_um > 0:
        raise SvpgenError(f"--pixel-um must be > 0 (got {pixel_um})")
    inputs = _find_inputs(src) if fmt not in ("folder", "collage") else _Inputs([], [], [], [])
    kind = detect_format(src, inputs) if fmt == "auto" else fmt
    collector = Collector(fit, label, class_map)
    if kind in ("folder", "collage"):
        if src.is_dir():
            import_folder(src, collector, pixel_um)
        elif kind == "collage":
            import_images([src], src.parent, collector, None, pixel_um)
        else:
            raise SvpgenError(f"{src}: the folder format needs a directory")
    elif kind == "flowcam":
        _import_flowcam(src, inputs, collector)
    elif kind == "mfi":
        if not inputs.mfi_csvs:
            raise SvpgenError(
                f"{src}: no header line containing 'ECD' and MFI particle columns found; "
                "no MFI CSV export"
            )
        for csv in inputs.mfi_csvs:
            import_mfi(csv, collector, _prefix(csv, src), drop_edge=drop_edge)
    else:
        raise SvpgenError(f"unknown format {kind!r} (use auto, folder, collage, flowcam or mfi)")
    return ImportResult(
        with_sizes(collector.particles()),
        collector.report_frame(),
        kind,
        collector.measurements(),
        collector.labels(),
        collector.unmatched_map_entries(),
    )


def with_sizes(particles: Particles) -> Particles:
    """Fill ``esd_um`` from the crop (:mod:`svpgen.data.morphology`'s mean Feret diameter)
    where the export gives no size but µm per pixel is known (collages, image folders with
    ``--pixel-um``), so counts by size work; ``esd_source`` says which rows were measured
    by the instrument and which computed."""
    table = particles.table
    missing = table["esd_um"].isna() & pd.to_numeric(table["pixel_um"], errors="coerce").gt(0)
    if not missing.any():
        return particles
    from svpgen.data.morphology import computed_features

    rows = np.flatnonzero(missing.to_numpy())
    sizes = computed_features(particles.images[rows], table.iloc[rows])["esd_um"].to_numpy()
    table = table.copy()
    table["esd_source"] = table["esd_um"].notna().map({True: "instrument", False: None})
    table.loc[table.index[rows], "esd_um"] = sizes
    table.loc[table.index[rows], "esd_source"] = "computed"
    return Particles(particles.images, table)


def import_source(
    src: str | Path,
    out: str | Path,
    *,
    mode: WriteMode = "create",
    command: str = "svpgen import",
    **options,
) -> tuple[ParticleStore, ImportResult]:
    """Import ``src`` into the store ``out`` (``options``: those of :func:`read_source`);
    write ``out/import_report.csv``. Instrument rows without any image are kept as the
    store's measurements."""
    result = read_source(src, **options)
    out = Path(out)
    if len(result.particles) == 0 and len(result.measurements) == 0:
        counts = ", ".join(f"{n} {r}" for r, n in result.skip_counts().items()) or "no files"
        raise SvpgenError(f"{src}: nothing usable found ({counts})")
    settings: dict = {k: v for k, v in options.items() if v is not None and k != "fmt"}
    if "class_map" in settings:
        settings["class_map"] = dict(settings["class_map"])
    record = provenance_record(
        command, source_path=str(Path(src).resolve()), format=result.format, **settings
    )
    store = ParticleStore.write(
        out, result.particles, record, mode=mode, measurements=result.measurements
    )
    write_csv(out / "import_report.csv", result.report)
    return store, result
