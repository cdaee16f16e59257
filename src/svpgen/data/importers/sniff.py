"""Tell instrument files apart by their content, not their extension.

* FlowCam list files (``.lst`` runs, ``.flb`` libraries): a ``num-fields|N`` line near the top.
* FlowCam (VisualSpreadsheet) particle CSV exports: a header with ``Image File`` and the
  crop box or other particle columns (``Particle ID``, ``Diameter (ESD)``…).
* MFI (MVAS) CSV exports: a header (after a free-form preamble) with an ``ECD`` column
  and at least two other MFI particle columns (``Frame #``, ``X Left``, ``Edge Particle``…),
  in MVAS's own spelling or in the lower snake case labs keep their tables in
  (``particle_id, frame_num, ecd_um, intensity_mean, x_left…``; :func:`mfi_column_name`).
  A cell that merely *starts* with "ECD" (a GUID such as ``ECD3F2A1-…``) does not count.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

HEAD_BYTES = 256 * 1024  # enough for a preamble and a header; never the whole file
HEADER_SEARCH_LINES = 500

FLOWCAM_CSV_HINTS = frozenset(
    {
        "particle_id",
        "diameter_esd",
        "diameter_abd",
        "image_x",
        "image_y",
        "image_width",
        "image_height",
        "capture_x",
        "capture_y",
        "calibration_factor",
        "uuid",
        "name",
        "source_image",
        "original_reference_id",
    }
)
MFI_COLUMNS = frozenset(
    {
        "number",
        "frame_number",
        "particle_number",
        "time_stamp",
        "area",
        "perimeter",
        "circularity",
        "intensity_mean",
        "intensity_std",
        "intensity_min",
        "intensity_max",
        "max_feret_diameter",
        "aspect_ratio",
        "x_left",
        "x_right",
        "y_top",
        "y_bottom",
        "edge_particle",
    }
)


# lower-snake-case spellings of MVAS columns in labs' own tables
MFI_ALIASES = {
    "particle_id": "number",
    "particle_no": "number",
    "frame": "frame_number",
    "frame_num": "frame_number",
    "frame_no": "frame_number",
    "frame_id": "frame_number",
    "particle_num": "particle_number",
    "particle_in_frame": "particle_number",
    "timestamp": "time_stamp",
    "area_pixels": "area",
    "intensity_sd": "intensity_std",
}
_UNIT_SUFFIXES = ("_um2", "_um", "_px", "_pixels", "_s")


def mfi_column_name(name: str) -> str:
    """An MFI column's name as svpgen keys it: :func:`normalise_header`, then the snake-case
    aliases (``frame_num`` → ``frame_number``) and trailing units (``ecd_um`` → ``ecd``)."""
    key = normalise_header(name)
    key = MFI_ALIASES.get(key, key)
    for suffix in _UNIT_SUFFIXES:
        stem = key.removesuffix(suffix)
        if stem != key and (stem in MFI_COLUMNS or stem == "ecd"):
            return stem
    return key


def normalise_header(name: str) -> str:
    """'Diameter (ESD) (µm)' → 'diameter_esd'; 'Image Height (px)' → 'image_height'.

    Units in trailing parentheses are dropped, µ becomes u, case is folded, and
    non-alphanumerics become underscores. '#' (MFI's particle number) becomes 'number'.
    """
    text = str(name).strip().lstrip("\ufeff").replace("µ", "u").replace("μ", "u")
    if text == "#":
        return "number"
    text = re.sub(
        r"\s*\((?:um|px|pixels|s|sec|%|um2|um\^2|mm|ml)\)\s*$", "", text, flags=re.IGNORECASE
    )
    text = text.replace("#", " number ")
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def head_lines(path: Path, limit: int = HEADER_SEARCH_LINES) -> list[str]:
    """The first ``limit`` lines of a text file (any line ending, BOM stripped)."""
    with open(path, "rb") as fh:
        data = fh.read(HEAD_BYTES)
    return data.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()[:limit]


def _cells(line: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(line)))
    except (csv.Error, StopIteration):
        return []


def is_flowcam_header(cells: set[str]) -> bool:
    """Normalised header cells of a VisualSpreadsheet particle CSV export."""
    return "image_file" in cells and len(cells & FLOWCAM_CSV_HINTS) >= 2


def is_mfi_header(cells: set[str]) -> bool:
    """Normalised header cells of an MFI (MVAS) particle table."""
    return "ecd" in cells and len(cells & MFI_COLUMNS) >= 2


def find_header_line(path: Path, kind: str) -> int | None:
    """0-based index of the first line that is a ``kind`` ("flowcam" or "mfi") CSV header."""
    test = is_flowcam_header if kind == "flowcam" else is_mfi_header
    name = normalise_header if kind == "flowcam" else mfi_column_name
    for i, line in enumerate(head_lines(path)):
        if "," in line and test({name(c) for c in _cells(line)}):
            return i
    return None


def is_list_file(path: Path) -> bool:
    """A FlowCam ``.lst``/``.flb`` list: ``num-fields|N`` on one of the first three lines."""
    return any(line.strip().lower().startswith("num-fields|") for line in head_lines(path, 3))


def sniff(path: Path) -> str | None:
    """'flowcam-list', 'flowcam-csv', 'mfi' or None for one file."""
    try:
        if is_list_file(path):
            return "flowcam-list"
        if find_header_line(path, "flowcam") is not None:
            return "flowcam-csv"
        if find_header_line(path, "mfi") is not None:
            return "mfi"
    except OSError:
        return None
    return None
