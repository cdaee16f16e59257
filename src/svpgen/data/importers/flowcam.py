"""FlowCam (VisualSpreadsheet) exports: runs (``.lst`` + collages), libraries (``.flb`` +
``<name>_lib_images_NNNNNN.tif``), classifications (``.cla``) and particle CSV exports.

``.lst`` / ``.flb``: line 1 the format version (``017``…), line 2 ``num-fields|N``, then N
``name|type`` lines, then one ``|``-separated row per particle. Field sets differ between
versions (57, 64, 65… fields), so fields are found by name. Crop =
``collage[image_y:image_y+image_h, image_x:image_x+image_w]`` (0-based; library crops
start at 2). ``cal_const`` is µm per pixel; ESD = ``esd_diameter`` when present, else
``(raw_feret_mean − fringe_size)·cal_const``.

Labels from the instrument, kept per particle in ``vs_class`` and turned into labels
with the import's other class names (:func:`~svpgen.data.classes.resolve_class_names`: a
canonical synonym maps to its class, any other name is the lab's own class): a library's
particles carry the library's name; a ``.cla`` classification beside a ``.lst`` names the
particle ids of each class. ``.cla`` layout: ``v3``, the number of classifications, then
per classification its name and number of classes, and per class: name, ``OR``/``AND``,
a filter count and that many filter paths, a particle count and that many particle ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.data.images import ImageReadError, read_gray8
from svpgen.data.importers.common import Collector
from svpgen.data.importers.sniff import find_header_line, normalise_header
from svpgen.errors import SvpgenError

CSV_CLASS_COLUMNS = ("class", "classification", "label", "class_name", "category")
_LST_TYPES = {"int32": int, "double": float, "string": str, "guid": str, "timestamp": str}
_SUMMARY_START = re.compile(r"^=+\s*run summar(?:y|ies)\s*=+$", re.IGNORECASE)
_SECTION = re.compile(r"^=+.*=+$")


@dataclass(frozen=True)
class ListFile:
    """A parsed ``.lst``/``.flb``: version, (field, type) header, (line number, values) rows."""

    path: Path
    version: str
    header: list[tuple[str, str]]
    rows: list[tuple[int, list[str]]]

    @property
    def names(self) -> list[str]:
        """The field names in header order."""
        return [n for n, _ in self.header]


def parse_lst(path: Path) -> ListFile:
    """Parse a ``.lst`` or ``.flb`` file (any field version, LF or CRLF line endings)."""
    lines = path.read_text(errors="replace").lstrip("\ufeff").splitlines()
    at = next(
        (i for i, line in enumerate(lines[:3]) if line.strip().lower().startswith("num-fields|")),
        None,
    )
    if at is None:
        raise SvpgenError(f"{path}: no 'num-fields|N' line at the top; not a FlowCam list file")
    try:
        n_fields = int(lines[at].split("|", 1)[1])
    except ValueError:
        raise SvpgenError(f"{path}: line {at + 1} has a bad field count {lines[at]!r}") from None
    header = [
        tuple(part.strip() for part in line.split("|", 1))
        for line in lines[at + 1 : at + 1 + n_fields]
    ]
    if len(header) != n_fields or any(len(h) != 2 for h in header):
        raise SvpgenError(
            f"{path}: expected {n_fields} 'name|type' header lines after line {at + 1}"
        )
    start = at + 1 + n_fields
    rows = [
        (i + 1, line.split("|"))
        for i, line in enumerate(lines[start:], start=start)
        if line.strip()
    ]
    version = lines[at - 1].strip() if at else ""
    return ListFile(path, version, header, rows)


def _convert(value: str, kind: str):
    caster = _LST_TYPES.get(kind, str)
    try:
        return caster(value)
    except ValueError:
        return float(value) if caster is int and value.strip() else value


def read_cla(path: Path) -> list[tuple[str, str, str, int]]:
    """(classification, class name, particle id, line) for every particle a ``.cla`` names."""
    lines = [
        line.strip() for line in path.read_text(errors="replace").lstrip("\ufeff").splitlines()
    ]
    pos = 0

    def take(what: str) -> str:
        nonlocal pos
        if pos >= len(lines):
            raise SvpgenError(f"{path}: ends early, expected {what} at line {pos + 1}")
        pos += 1
        return lines[pos - 1]

    def take_int(what: str) -> int:
        text = take(what)
        try:
            return int(text)
        except ValueError:
            raise SvpgenError(
                f"{path}: line {pos}: expected {what} (a number), got {text!r}"
            ) from None

    take("the version line")
    out = []
    for _ in range(take_int("the number of classifications")):
        scheme = take("a classification name")
        for _ in range(take_int(f"the number of classes of {scheme!r}")):
            name = take("a class name")
            take("OR/AND")
            for _ in range(take_int(f"the filter count of class {name!r}")):
                take("a filter path")
            for _ in range(take_int(f"the particle count of class {name!r}")):
                out.append((scheme, name, take(f"a particle id of class {name!r}"), pos))
    return out


def write_cla(path: str | Path, classification: str, members: dict[str, list[str]]) -> Path:
    """Write a VisualSpreadsheet classification file (the ``v3`` layout :func:`read_cla`
    reads, CRLF line endings as VisualSpreadsheet writes them): one classification named
    ``classification``, each class with no filter and its particle ids. Atomic."""
    from svpgen.atomic import atomic_path

    lines = ["v3", "1", classification, str(len(members))]
    for name, ids in members.items():
        lines += [name, "OR", "0", str(len(ids)), *(str(i) for i in ids)]
    with atomic_path(path) as tmp:
        tmp.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return Path(path)


class _Images:
    """Open each collage (or particle image) once; find it case-insensitively in the
    export folder or below; remember the ones that are missing or unreadable."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.arrays: dict[str, np.ndarray | str] = {}
        self._index: dict[str, Path] | None = None

    def locate(self, name: str) -> Path | None:
        direct = self.folder / name
        if direct.is_file():
            return direct
        if self._index is None:
            self._index = {}
            for p in sorted(self.folder.rglob("*")):
                if p.is_file():
                    self._index.setdefault(p.name.lower(), p)
        return self._index.get(Path(str(name).replace("\\", "/")).name.lower())

    def get(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            path = self.locate(name)
            if path is None:
                self.arrays[name] = f"missing collage file ({name})"
            else:
                try:
                    self.arrays[name] = read_gray8(path)
                except ImageReadError as err:
                    self.arrays[name] = f"collage {name}: {err}"
        value = self.arrays[name]
        if isinstance(value, str):
            raise ImageReadError(value)
        return value


def _crop(image: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    if w < 1 or h < 1 or x < 0 or y < 0 or y + h > image.shape[0] or x + w > image.shape[1]:
        raise ImageReadError(
            f"crop outside collage (x={x} y={y} w={w} h={h}, collage "
            f"{image.shape[1]}x{image.shape[0]})"
        )
    return np.ascontiguousarray(image[y : y + h, x : x + w])


def _library_collage(flb: Path, named: str | None, images: _Images) -> str:
    """The image file a library row lives in: the row's ``collage_file`` when it exists,
    else ``<library>_lib_images_<page>.tif`` (page from the named file, else 000001)."""
    if named and images.locate(named) is not None:
        return named
    page = re.search(r"_(\d{6})\.\w+$", named or "")
    return f"{flb.stem}_lib_images_{page.group(1) if page else '000001'}.tif"


def _esd(fields: dict, cal: float) -> float:
    if "esd_diameter" in fields:
        return float(fields["esd_diameter"])
    if "raw_feret_mean" in fields:
        return (float(fields["raw_feret_mean"]) - float(fields.get("fringe_size", 0) or 0)) * cal
    return np.nan


def classifications_for(
    lst: Path, collector: Collector
) -> dict[str, tuple[str, str, tuple[Path, int]]]:
    """particle id → (classification, class name, where) from the ``.cla`` files that belong
    to ``lst``: same name, or every ``.cla`` in the folder when it holds only this list."""
    folder = lst.parent
    own = folder / f"{lst.stem}.cla"
    if own.is_file():
        clas = [own]
    elif len([p for p in folder.glob("*.lst")]) == 1:
        clas = sorted(folder.glob("*.cla"))
    else:
        clas = []
    assigned: dict[str, tuple[str, str, tuple[Path, int]]] = {}
    for cla in clas:
        try:
            entries = read_cla(cla)
        except SvpgenError as err:
            collector.skip(cla, f"unreadable classification ({err})")
            continue
        for scheme, name, pid, line in entries:
            if pid in assigned:
                if assigned[pid][1] != name:
                    collector.skip(
                        cla,
                        f"particle id {pid} already in class {assigned[pid][1]!r}; {name!r} "
                        "ignored",
                        line,
                    )
                continue
            assigned[pid] = (scheme, name, (cla, line))
    return assigned


def import_list(path: Path, collector: Collector, prefix: str, library: bool = False) -> None:
    """Import every particle row of one ``.lst`` run or ``.flb`` library and its images."""
    parsed = parse_lst(path)
    missing = [f for f in ("image_x", "image_y", "image_w", "image_h") if f not in parsed.names]
    if missing:
        raise SvpgenError(f"{path}: header lacks field(s) {', '.join(missing)}")
    images = _Images(path.parent)
    classes = {} if library else classifications_for(path, collector)
    seen: set[str] = set()
    for line_no, values in parsed.rows:
        if len(values) != len(parsed.header):
            collector.skip(
                path,
                f"wrong field count (expected {len(parsed.header)}, got {len(values)})",
                line_no,
            )
            continue
        fields = {name: _convert(v, kind) for (name, kind), v in zip(parsed.header, values)}
        named = fields.get("collage_file") or fields.get("image_file")
        collage = _library_collage(path, named, images) if library else named
        if not collage:
            collector.skip(path, "row names no collage_file", line_no)
            continue
        try:
            x, y, w, h = (_int(fields[k], k) for k in ("image_x", "image_y", "image_w", "image_h"))
            crop = _crop(images.get(str(collage)), x, y, w, h)
        except (ImageReadError, ValueError) as err:
            collector.skip(path, str(err), line_no)
            continue
        pid = str(fields.get("id", line_no))
        seen.add(pid)
        cal = float(fields.get("cal_const", np.nan) or np.nan)
        extras = {("particle_id" if k == "id" else k): v for k, v in fields.items()}
        if library:
            vs_class, scheme = path.stem, "library"
        elif pid in classes:
            scheme, vs_class, _ = classes[pid]
        else:
            vs_class, scheme = extras.pop("class", None), None
        row = {
            "id": f"{prefix}:{pid}",
            "origin": f"{collage}@{x},{y}",
            "pixel_um": cal,
            "esd_um": _esd(fields, cal),
            **extras,
        }
        if vs_class:
            row["vs_class"], row["vs_classification"] = str(vs_class), scheme
        collector.add(crop, row, path, line_no)
    for pid, (scheme, name, (cla, line)) in classes.items():
        if pid not in seen:
            collector.skip(
                cla,
                f"classification {scheme!r} class {name!r} names particle id {pid}, which "
                f"{path.name} does not import",
                line,
            )


def read_flowcam_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """A VisualSpreadsheet particle CSV export with normalised headers (``diameter_esd``…),
    and the 0-based line of its header."""
    start = find_header_line(path, "flowcam")
    if start is None:
        raise SvpgenError(
            f"{path}: no header with 'Image File' and particle columns; not a FlowCam data export"
        )
    try:
        table = pd.read_csv(path, skiprows=start, encoding_errors="replace", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SvpgenError(f"{path}: not a readable CSV ({str(err).splitlines()[0][:80]})") from None
    table.columns = [normalise_header(c) for c in table.columns]
    return table.dropna(how="all"), start


def _int(value, field: str) -> int:
    """A crop-box value as int; a clear reason when it is missing or not a number."""
    try:
        if isinstance(value, str) or pd.isna(value):
            value = float(str(value).strip())
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"missing or non-numeric {field} ({value!r})") from None


def import_flowcam_csv(csv: Path, collector: Collector, prefix: str) -> None:
    """Import a particle CSV export whose rows point at collage or per-particle images."""
    table, header_line = read_flowcam_csv(csv)
    images = _Images(csv.parent)
    box = ("image_x", "image_y", "image_width", "image_height")
    has_box = all(c in table.columns for c in box)
    for i, rec in enumerate(table.to_dict("records")):
        line_no = header_line + i + 2  # 1-based, after the header line
        name = rec.get("image_file")
        if pd.isna(name) or not str(name).strip():
            collector.skip(csv, "row names no Image File", line_no)
            continue
        name = str(name).strip()
        try:
            image = images.get(name)
            if has_box and not all(pd.isna(rec[k]) for k in box):
                x, y, w, h = (_int(rec[k], k) for k in box)
                crop = image if image.shape == (h, w) else _crop(image, x, y, w, h)
            else:
                x = y = 0
                crop = image
        except (ImageReadError, ValueError) as err:
            reason = str(err).replace("missing collage file", "missing image file")
            collector.skip(csv, reason, line_no)
            continue
        pid = rec.get("particle_id", rec.get("name", line_no - 1))
        pid = int(pid) if isinstance(pid, float) and pid.is_integer() else pid
        vs_class = next(
            (rec.pop(k) for k in CSV_CLASS_COLUMNS if k in rec and not pd.isna(rec[k])),
            None,
        )
        row = {
            "id": f"{prefix}:{pid}",
            "origin": f"{name}@{x},{y}",
            "pixel_um": float(rec.get("calibration_factor", np.nan)),
            "esd_um": float(rec.get("diameter_esd", np.nan)),
            **{k: v for k, v in rec.items() if k not in ("id", "label", "origin")},
        }
        if vs_class:
            row["vs_class"] = str(vs_class)
        collector.add(crop, row, csv, line_no)


def read_run_summary(folder: Path) -> dict[str, str]:
    """Key/value run metadata from ``*_summary.csv`` (``key,value`` lines after a
    ``=Run Summaries=`` or ``======== Run Summary ========`` marker) or ``*_run_summary.txt``
    (``Key: value`` lines, tab- or space-indented). The first value of a repeated key wins.
    Empty when absent."""
    summary: dict[str, str] = {}
    for path in sorted(folder.glob("*_summary.csv")):
        inside = False
        for line in path.read_text(errors="replace").splitlines():
            text = line.strip()
            if _SECTION.match(text):
                if inside:
                    break
                inside = bool(_SUMMARY_START.match(text))
                continue
            if inside and "," in text:
                key, value = text.split(",", 1)
                summary.setdefault(key.strip(), value.strip().strip('"'))
    for path in sorted(folder.glob("*_run_summary.txt")):
        for line in path.read_text(errors="replace").splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                if key.strip():
                    summary.setdefault(key.strip(), value.strip())
    return summary
