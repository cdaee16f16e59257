"""FlowCam (VisualSpreadsheet) exports: collage images + ``.lst``, or a CSV data export.

``.lst``: line 1 the format version, line 2 ``num-fields|N``, then N ``name|type`` lines,
then one ``|``-separated row per particle. Field sets differ between versions, so fields
are found by name. Crop = ``collage[image_y:image_y+image_h, image_x:image_x+image_w]``.
``cal_const`` is µm per pixel; ESD = ``esd_diameter`` when present, else
``(raw_feret_mean − fringe_size)·cal_const``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.data.classes import UNKNOWN, canonical_label
from svpgen.data.images import ImageReadError, read_gray8
from svpgen.data.importers.common import Collector, normalise_header
from svpgen.errors import SvpgenError

_LST_TYPES = {"int32": int, "double": float, "string": str, "guid": str, "timestamp": str}


def parse_lst(path: Path) -> tuple[str, list[tuple[str, str]], list[tuple[int, list[str]]]]:
    """Return (version, [(field, type)], [(line number, raw values)]) of a ``.lst`` file."""
    lines = path.read_text(errors="replace").splitlines()
    if len(lines) < 2 or not lines[1].lower().startswith("num-fields|"):
        raise SvpgenError(f"{path}: line 2 must be 'num-fields|N' (got {lines[1][:40] if len(lines) > 1 else 'nothing'!r})")
    try:
        n_fields = int(lines[1].split("|", 1)[1])
    except ValueError:
        raise SvpgenError(f"{path}: line 2 has a bad field count {lines[1]!r}") from None
    header = [tuple(line.split("|", 1)) for line in lines[2 : 2 + n_fields]]
    if len(header) != n_fields or any(len(h) != 2 for h in header):
        raise SvpgenError(f"{path}: expected {n_fields} 'name|type' header lines")
    rows = [(i + 1, line.split("|")) for i, line in enumerate(lines[2 + n_fields :], start=2 + n_fields) if line.strip()]
    return lines[0].strip(), [(n.strip(), t.strip()) for n, t in header], rows


def _convert(value: str, kind: str):
    caster = _LST_TYPES.get(kind, str)
    try:
        return caster(value)
    except ValueError:
        return float(value) if caster is int else value


class _CollageCache:
    """Open each collage once; remember the ones that are missing or unreadable."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.arrays: dict[str, np.ndarray | str] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            try:
                self.arrays[name] = read_gray8(self.folder / name)
            except ImageReadError as err:
                self.arrays[name] = f"collage {name}: {err}"
        value = self.arrays[name]
        if isinstance(value, str):
            raise ImageReadError(value)
        return value


def _crop(collage: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    if w < 1 or h < 1 or x < 0 or y < 0 or y + h > collage.shape[0] or x + w > collage.shape[1]:
        raise ImageReadError(f"crop outside collage (x={x} y={y} w={w} h={h}, collage {collage.shape[1]}x{collage.shape[0]})")
    return collage[y : y + h, x : x + w]


def import_lst(lst: Path, collector: Collector) -> None:
    """Import every particle row of one ``.lst`` and its collages."""
    _, header, rows = parse_lst(lst)
    names = [n for n, _ in header]
    missing = [f for f in ("image_x", "image_y", "image_w", "image_h") if f not in names]
    if missing:
        raise SvpgenError(f"{lst}: header lacks field(s) {', '.join(missing)}")
    run = lst.stem
    collages = _CollageCache(lst.parent)
    for line_no, values in rows:
        if len(values) != len(header):
            collector.skip(lst, f"wrong field count (expected {len(header)}, got {len(values)})", line_no)
            continue
        fields = {name: _convert(v, kind) for (name, kind), v in zip(header, values)}
        collage_name = fields.get("collage_file") or fields.get("image_file")
        if not collage_name:
            collector.skip(lst, "row names no collage_file", line_no)
            continue
        try:
            x, y, w, h = (int(fields[k]) for k in ("image_x", "image_y", "image_w", "image_h"))
            crop = _crop(collages.get(str(collage_name)), x, y, w, h)
        except (ImageReadError, ValueError) as err:
            reason = str(err)
            if "missing file" in reason:
                reason = f"missing collage file ({collage_name})"
            collector.skip(lst, reason, line_no)
            continue
        cal = float(fields.get("cal_const", np.nan) or np.nan)
        if "esd_diameter" in fields:
            esd = float(fields["esd_diameter"])
        elif "raw_feret_mean" in fields:
            esd = (float(fields["raw_feret_mean"]) - float(fields.get("fringe_size", 0) or 0)) * cal
        else:
            esd = np.nan
        extras = {("particle_id" if k == "id" else k): v for k, v in fields.items()}
        label = canonical_label(extras.pop("class", UNKNOWN)) or UNKNOWN
        row = {
            "id": f"{run}:{fields.get('id', line_no)}",
            "label": label,
            "origin": f"{collage_name}@{x},{y}",
            "pixel_um": cal,
            "esd_um": esd,
            **extras,
        }
        collector.add(np.ascontiguousarray(crop), row, lst, line_no)


def read_flowcam_csv(path: Path) -> pd.DataFrame:
    """A FlowCam CSV data export with normalised headers (``diameter_esd``, ``image_x``…)."""
    try:
        table = pd.read_csv(path, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SvpgenError(f"{path}: not a readable CSV ({str(err).splitlines()[0][:80]})") from None
    table.columns = [normalise_header(c) for c in table.columns]
    if "image_file" not in table.columns:
        raise SvpgenError(f"{path}: no 'Image File' column; not a FlowCam data export")
    return table


def import_flowcam_csv(csv: Path, collector: Collector) -> None:
    """Import a FlowCam CSV export whose rows point at collage or per-particle images."""
    table = read_flowcam_csv(csv)
    images = _CollageCache(csv.parent)
    has_box = all(c in table.columns for c in ("image_x", "image_y", "image_width", "image_height"))
    for i, rec in enumerate(table.to_dict("records")):
        line_no = i + 2  # 1-based, after the header line
        name = str(rec["image_file"])
        try:
            image = images.get(name)
            if has_box and not pd.isna(rec["image_x"]):
                box = [int(rec[k]) for k in ("image_x", "image_y", "image_width", "image_height")]
                crop = image if image.shape == (box[3], box[2]) else _crop(image, *box)
            else:
                crop = image
        except (ImageReadError, ValueError) as err:
            reason = str(err)
            collector.skip(csv, f"missing image file ({name})" if "missing file" in reason else reason, line_no)
            continue
        pid = rec.get("particle_id", rec.get("name", line_no - 1))
        label = canonical_label(rec.pop("class", UNKNOWN)) if "class" in rec else UNKNOWN
        row = {
            "id": f"{csv.stem}:{pid}",
            "label": label or UNKNOWN,
            "origin": f"{name}@{rec.get('image_x', 0)},{rec.get('image_y', 0)}",
            "pixel_um": float(rec.get("calibration_factor", np.nan)),
            "esd_um": float(rec.get("diameter_esd", np.nan)),
            **{k: v for k, v in rec.items() if k not in ("id", "label", "origin")},
        }
        collector.add(np.ascontiguousarray(crop), row, csv, line_no)


def read_run_summary(folder: Path) -> dict[str, str]:
    """Key/value run metadata from ``*_summary.csv`` (between ``=Run Summaries=`` markers)
    or an older ``*_run_summary.txt`` (``Key: value`` lines). Empty when absent."""
    summary: dict[str, str] = {}
    for path in sorted(folder.glob("*_summary.csv")):
        inside = False
        for line in path.read_text(errors="replace").splitlines():
            if line.strip().startswith("=Run Summaries End="):
                break
            if inside and "," in line:
                key, value = line.split(",", 1)
                summary[key.strip()] = value.strip().strip('"')
            inside = inside or line.strip().startswith("=Run Summaries=")
    for path in sorted(folder.glob("*_run_summary.txt")):
        for line in path.read_text(errors="replace").splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                summary.setdefault(key.strip(), value.strip())
    return summary
