"""Bare FlowCam collages: the collage images VisualSpreadsheet writes during a run
(``<run>_000001.tif``…) — particles tiled at their native size on a black (0) background —
kept without the ``.lst`` that says where each tile is.

A collage is recognised by its content: at least 5% of its pixels exactly black and at
least two tiles, where a tile is a connected region of non-black pixels (4-neighbours)
whose bounding box it fills (holes inside it count as filled). Tiles are cut by their
bounding boxes and numbered in reading order (top to bottom, then left to right); each
keeps its position in the collage (``image_x``, ``image_y``, ``image_w``, ``image_h``,
VisualSpreadsheet's names, and ``origin = <collage>@x,y``). Regions that are not
rectangular (tiles touching each other) or thinner than 4 px are skipped with their
position. µm per pixel comes from ``--pixel-um``, else from the run's ``.ctx`` context file
beside the collage (an INI file; VisualSpreadsheet's ``CalibrationConstant``, in any
section), else it is left unknown.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from svpgen.data.images import MIN_SIDE
from svpgen.data.importers.common import Collector

MIN_BLACK_FRACTION = 0.05
MIN_FILL = 0.98  # a tile fills its bounding box; two touching tiles of unequal size do not
CALIBRATION_KEYS = ("calibrationconstant", "calibration_constant", "calibrationfactor", "cal_const")
_PAGE = re.compile(r"_\d{6}$")


@dataclass(frozen=True)
class Tile:
    """One region of a collage: its box, and why it was not kept (empty when it was)."""

    x: int
    y: int
    w: int
    h: int
    problem: str = ""


def find_tiles(gray: np.ndarray) -> list[Tile]:
    """Every non-black region of a collage, in reading order, with a problem for those
    that are not usable tiles."""
    labels, n = ndi.label(gray > 0)
    tiles = []
    for index, box in enumerate(ndi.find_objects(labels), 1):
        if box is None:
            continue
        y, x = box[0].start, box[1].start
        h, w = box[0].stop - y, box[1].stop - x
        fill = float(ndi.binary_fill_holes(labels[box] == index).mean())
        problem = ""
        if min(h, w) < MIN_SIDE:
            problem = f"region too thin to be a particle tile ({w}x{h} px)"
        elif fill < MIN_FILL:
            problem = (
                f"non-rectangular region ({w}x{h} px, {fill:.0%} filled): tiles touching each other"
            )
        tiles.append(Tile(x, y, w, h, problem))
    return sorted(tiles, key=lambda t: (t.y, t.x))


def collage_tiles(gray: np.ndarray) -> list[Tile] | None:
    """The regions of a collage (:func:`find_tiles`), or None when the image is not one:
    a collage has a black background and ≥ 2 tiles, and most of its regions are tiles."""
    if gray.ndim != 2 or float((gray == 0).mean()) < MIN_BLACK_FRACTION:
        return None
    tiles = find_tiles(gray)
    good = sum(1 for t in tiles if not t.problem)
    return tiles if good >= 2 and good >= 0.9 * len(tiles) else None


def context_pixel_um(collage: Path) -> tuple[float | None, str]:
    """µm per pixel from the run's ``.ctx`` beside a collage (``<run>.ctx``, or the only
    ``.ctx`` in the folder), and a note on where it came from or why it is missing."""
    folder, run = collage.parent, _PAGE.sub("", collage.stem)
    candidates = [folder / f"{run}.ctx"] if (folder / f"{run}.ctx").is_file() else []
    candidates = candidates or sorted(folder.glob("*.ctx"))
    if len(candidates) != 1:
        found = "no .ctx" if not candidates else f"{len(candidates)} .ctx files"
        return None, f"µm/px unknown ({found} beside the collage; give --pixel-um)"
    ctx = candidates[0]
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        text = ctx.read_text(errors="replace")
        parser.read_string(text if text.lstrip().startswith("[") else "[top]\n" + text)
    except (OSError, configparser.Error) as err:
        return None, f"µm/px unknown ({ctx.name} unreadable: {str(err).splitlines()[0][:60]})"
    for section in parser.sections():
        for key in CALIBRATION_KEYS:
            if parser.has_option(section, key):
                value = parser.get(section, key).strip()
                try:
                    um = float(value)
                except ValueError:
                    return None, f"µm/px unknown ({ctx.name}: [{section}] {key} = {value!r})"
                if um > 0:
                    return um, f"µm/px {um:g} from {ctx.name} [{section}]"
    return None, f"µm/px unknown ({ctx.name} has no CalibrationConstant)"


def import_collage(
    path: Path,
    gray: np.ndarray,
    tiles: list[Tile],
    collector: Collector,
    prefix: str,
    *,
    vs_class: str | None = None,
    pixel_um: float | None = None,
) -> None:
    """Add a collage's tiles to ``collector`` (ids ``<prefix>:<region number>``); regions
    that are not tiles are skipped with their position."""
    if pixel_um is None:
        pixel_um, note = context_pixel_um(path)
    else:
        note = f"µm/px {pixel_um:g} (--pixel-um)"
    for number, tile in enumerate(tiles, 1):
        if tile.problem:
            collector.skip(path, f"{tile.problem} at x={tile.x} y={tile.y}")
            continue
        crop = np.ascontiguousarray(gray[tile.y : tile.y + tile.h, tile.x : tile.x + tile.w])
        row = {
            "id": f"{prefix}:{number}",
            "origin": f"{path.name}@{tile.x},{tile.y}",
            "collage_file": path.name,
            "image_x": tile.x,
            "image_y": tile.y,
            "image_w": tile.w,
            "image_h": tile.h,
            "pixel_um": pixel_um if pixel_um is not None else np.nan,
        }
        if vs_class:
            row["vs_class"] = vs_class
        collector.add(crop, row, path, note=note)
