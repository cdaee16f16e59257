"""MFI (MVAS) CSV exports with particle thumbnails or full frames.

The CSV starts with a metadata preamble; the header is the first line mentioning ``ECD``.
Thumbnails are matched to rows by ``#`` (the last integer in a file name) or by
(``Frame #``, ``Particle #``); without thumbnails, crops are cut from frame images
(names containing ``frame`` and the frame number) by the X/Y bounding box; rows with
neither are kept as measurements without an image (``STORE/measurements.parquet``).
Intensities above 255 (10-bit cameras) are rescaled by the bit-depth rule of
:mod:`svpgen.data.images`. Headers in MVAS's spelling or in a lab's lower snake case
(``particle_id, frame_num, ecd_um…``) are read alike (:func:`.sniff.mfi_column_name`).
µm per pixel, when absent, is ECD / (2·√(Area_px/π)). ``Edge Particle = 1`` rows are
kept and flagged in ``edge_particle`` unless ``drop_edge`` is set.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.data.images import IMAGE_SUFFIXES, ImageReadError, read_gray8
from svpgen.data.importers.common import Collector
from svpgen.data.importers.sniff import find_header_line, mfi_column_name
from svpgen.errors import SvpgenError

CLASS_COLUMNS = (
    "class",
    "classification",
    "particle_class",
    "label",
    "category",
    "type",
    "particle_type",
)
NO_IMAGE = "no thumbnail or frame image: kept as measurements only"


def read_mfi_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """The particle table of an MFI CSV export, with normalised headers, and the 0-based
    line of its header."""
    start = find_header_line(path, "mfi")
    if start is None:
        raise SvpgenError(
            f"{path}: no header line containing 'ECD' and MFI particle columns found; not an MFI "
            "export"
        )
    try:
        table = pd.read_csv(path, skiprows=start, skipinitialspace=True, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise SvpgenError(
            f"{path}: malformed MFI table ({str(err).splitlines()[0][:80]})"
        ) from None
    table.columns = [mfi_column_name(c) for c in table.columns]
    return table.dropna(how="all"), start


def _index_images(
    root: Path,
) -> tuple[dict[int, Path], dict[tuple[int, int], Path], dict[int, Path]]:
    by_number: dict[int, Path] = {}
    by_frame_particle: dict[tuple[int, int], Path] = {}
    frames: dict[int, Path] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        stem = p.stem.lower()
        ints = [int(s) for s in re.findall(r"\d+", stem)]
        if not ints:
            continue
        if "frame" in stem and "particle" not in stem:
            frames[ints[-1]] = p
            continue
        by_number.setdefault(ints[-1], p)
        if len(ints) >= 2:
            by_frame_particle[(ints[-2], ints[-1])] = p
    return by_number, by_frame_particle, frames


def _frame_crop(
    frame: np.ndarray, rec: dict, box_cols: tuple[str, ...], frame_no: int
) -> tuple[np.ndarray, int, int]:
    """A particle's crop from its frame by the inclusive X/Y bounding box, and its corner."""
    try:
        x0, x1, y0, y1 = (int(rec[c]) for c in box_cols)
    except (TypeError, ValueError):
        raise ImageReadError(f"non-numeric bounding box {[rec[c] for c in box_cols]}") from None
    h, w = frame.shape
    if x0 < 0 or y0 < 0 or x1 >= w or y1 >= h or x1 < x0 or y1 < y0:
        raise ImageReadError(f"bounding box outside frame {frame_no} ({x0},{y0})-({x1},{y1})")
    return np.ascontiguousarray(frame[y0 : y1 + 1, x0 : x1 + 1]), x0, y0


def import_mfi(
    csv: Path,
    collector: Collector,
    prefix: str,
    drop_edge: bool = False,
    bit_depth: int | None = None,
) -> None:
    """Import the particles of one MFI CSV export; a class/label/type column (MVAS or a
    lab's own) is kept in ``vs_class``. Rows without a thumbnail or frame are kept as
    measurements (no image)."""
    table, header_line = read_mfi_csv(csv)
    by_number, by_fp, frames = _index_images(csv.parent)
    box_cols = ("x_left", "x_right", "y_top", "y_bottom")
    frame_cache: dict[int, np.ndarray] = {}
    for i, rec in enumerate(table.to_dict("records")):
        line_no = header_line + i + 2  # 1-based file line
        try:
            number = int(rec["number"]) if "number" in rec and not pd.isna(rec["number"]) else i + 1
            edge = bool(int(rec.get("edge_particle", 0) or 0))
            key_fp = (int(rec.get("frame_number", -1)), int(rec.get("particle_number", -1)))
            ecd = float(rec["ecd"])
        except (TypeError, ValueError) as err:
            collector.skip(csv, f"malformed row ({str(err)[:60]})", line_no)
            continue
        if edge and drop_edge:
            collector.skip(csv, "edge particle (dropped)", line_no)
            continue
        area = pd.to_numeric(rec.get("area", np.nan), errors="coerce")
        vs_class = next(
            (rec.pop(k) for k in CLASS_COLUMNS if k in rec and not pd.isna(rec[k])), None
        )
        row = {
            "id": f"{prefix}:{number}",
            "pixel_um": ecd / (2 * np.sqrt(area / np.pi)) if area and area > 0 else np.nan,
            "esd_um": ecd,
            "edge_particle": edge,
            **{k: v for k, v in rec.items() if k not in ("id", "label", "origin", "edge_particle")},
        }
        if vs_class is not None:
            row["vs_class"] = str(vs_class)
        path = by_number.get(number) or by_fp.get(key_fp)
        try:
            if path is not None:
                crop = read_gray8(path, bit_depth)
                row["origin"] = path.name
            elif all(c in rec for c in box_cols) and key_fp[0] in frames:
                frame_no = key_fp[0]
                if frame_no not in frame_cache:
                    frame_cache[frame_no] = read_gray8(frames[frame_no], bit_depth)
                crop, x0, y0 = _frame_crop(frame_cache[frame_no], rec, box_cols, frame_no)
                row["origin"] = f"{frames[frame_no].name}@{x0},{y0}"
            else:
                row["origin"] = ""
                collector.measure(row, csv, line_no, NO_IMAGE)
                continue
        except ImageReadError as err:
            collector.skip(csv, str(err), line_no)
            continue
        collector.add(crop, row, csv, line_no, note="edge particle" if edge else "")
