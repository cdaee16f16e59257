"""Folder import: ``root/<class>/*.{png,tif,tiff,bmp,jpg}``, or images straight in ``root``.

Each class folder's name is the lab's class name (kept in ``vs_class``; canonical synonyms
map to the canonical classes, any other name is a class of its own); images directly
under ``root`` (or in an ``unknown``/``unlabeled`` folder) import with label ``unknown``.
An image that is a collage (particles tiled on black, :mod:`.collage`) is split into its
particles; FlowCam's masks (``*_bin``) and background images (``cal_image_*``,
``rawfile_*``) are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

from svpgen.data.images import IMAGE_SUFFIXES, ImageReadError, read_gray8
from svpgen.data.importers.collage import collage_tiles, import_collage
from svpgen.data.importers.common import Collector

_NOT_PARTICLES = re.compile(r"(^cal_image_|^rawfile_|_bin$)", re.IGNORECASE)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def import_images(
    files: list[Path],
    root: Path,
    collector: Collector,
    vs_class: str | None = None,
    pixel_um: float | None = None,
) -> None:
    """Read image files into ``collector``: a particle each, or a collage's tiles."""
    for path in files:
        rel = path.relative_to(root).as_posix() if path != root else path.name
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            collector.skip(path, f"not an image file type ({path.suffix or 'no suffix'})")
            continue
        if _NOT_PARTICLES.search(path.stem):
            collector.skip(path, "FlowCam mask or background image (_bin, cal_image_, rawfile_)")
            continue
        try:
            gray = read_gray8(path)
        except ImageReadError as err:
            collector.skip(path, str(err))
            continue
        tiles = collage_tiles(gray)
        if tiles is not None:
            prefix = str(Path(rel).with_suffix(""))
            import_collage(
                path, gray, tiles, collector, prefix, vs_class=vs_class, pixel_um=pixel_um
            )
            continue
        row = {"id": rel, "origin": rel}
        if vs_class:
            row["vs_class"] = vs_class
        if pixel_um:
            row["pixel_um"] = pixel_um
        collector.add(gray, row, path)


def import_folder(root: Path, collector: Collector, pixel_um: float | None = None) -> None:
    """Read every image under ``root`` into ``collector``; skipped files get a reason."""
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    loose = [p for p in entries if p.is_file()]
    if loose:
        import_images(loose, root, collector, None, pixel_um)
    for folder in (p for p in entries if p.is_dir()):
        files = _images_in(folder)
        if not files:
            collector.skip(folder, "empty class folder")
            continue
        import_images(files, root, collector, folder.name, pixel_um)
