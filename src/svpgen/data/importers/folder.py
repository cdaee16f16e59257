"""Folder-per-class import: ``root/<class>/*.{png,tif,tiff,bmp,jpg}``.

Class folders are mapped to canonical names through the synonym table; images directly
under ``root`` (or in an ``unknown``/``unlabeled`` folder) import with label ``unknown``.
"""

from __future__ import annotations

from pathlib import Path

from svpgen.data.classes import canonical_label
from svpgen.data.images import IMAGE_SUFFIXES, ImageReadError, read_gray8
from svpgen.data.importers.common import Collector


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def import_folder(root: Path, collector: Collector, pixel_um: float | None = None) -> None:
    """Read every image under ``root`` into ``collector``; skipped files get a reason."""
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    groups: list[tuple[str | None, str, list[Path]]] = []
    loose = [p for p in entries if p.is_file()]
    if loose:
        groups.append(("unknown", "", loose))
    for folder in (p for p in entries if p.is_dir()):
        groups.append((canonical_label(folder.name), folder.name, _images_in(folder)))
    for label, folder_name, files in groups:
        if folder_name and not files:
            collector.skip(root / folder_name, "empty class folder")
            continue
        for path in files:
            rel = path.relative_to(root).as_posix()
            if label is None:
                collector.skip(path, f"unknown class folder ({folder_name})")
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                collector.skip(path, f"not an image file type ({path.suffix or 'no suffix'})")
                continue
            try:
                gray = read_gray8(path)
            except ImageReadError as err:
                collector.skip(path, str(err))
                continue
            row = {"id": rel, "label": label, "origin": rel}
            if pixel_um:
                row["pixel_um"] = pixel_um
            collector.add(gray, row, path)
