"""Write a simulation as a ParticleStore, a folder-per-class tree, or a FlowCam export.

The folder and FlowCam writers save the native-size crops, so importing them back through
the project's preprocessing gives exactly the stored 64×64 images.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from svpgen.errors import SvpgenError
from svpgen.simulate.engine import Simulation

LST_FIELDS = [
    ("id", "int32"), ("image_x", "int32"), ("image_y", "int32"), ("image_w", "int32"), ("image_h", "int32"),
    ("src_x", "int32"), ("src_y", "int32"), ("src_image", "int32"), ("cal_image", "int32"), ("ppc", "double"),
    ("camera", "int32"), ("cal_const", "double"), ("fringe_size", "double"), ("raw_area", "double"),
    ("raw_feret_max", "double"), ("raw_feret_min", "double"), ("raw_feret_mean", "double"), ("raw_perimeter", "double"),
    ("raw_convex_perimeter", "double"), ("abd_area", "double"), ("abd_diameter", "double"), ("length", "double"),
    ("width", "double"), ("esd_diameter", "double"), ("aspect_ratio", "double"), ("perimeter", "double"),
    ("convex_perimeter", "double"), ("intensity", "double"), ("sigma_intensity", "double"), ("sum_intensity", "double"),
    ("compactness", "double"), ("elongation", "double"), ("roughness", "double"), ("edge_gradient", "double"),
    ("circle_fit", "double"), ("symmetry", "double"), ("circularity_hu", "double"), ("intensity_calimage", "double"),
    ("raw_convex_hull_area", "double"), ("raw_filled_area", "double"), ("filled_area", "double"),
    ("feret_max_angle", "double"), ("feret_min_angle", "double"), ("avg_red", "double"), ("avg_green", "double"),
    ("avg_blue", "double"), ("ch1_peak", "double"), ("ch1_width", "double"), ("ch1_area", "double"),
    ("ch2_peak", "double"), ("ch2_width", "double"), ("ch2_area", "double"), ("ch3_peak", "double"),
    ("ch3_width", "double"), ("ch3_area", "double"), ("timestamp", "timestamp"), ("collage_file", "string"),
]
COLLAGE_SIDE = 1024
GAP = 2


def _fresh_dir(out: Path) -> Path:
    if out.exists() and (out.is_file() or any(out.iterdir())):
        raise SvpgenError(f"{out} exists and is not empty; choose a new directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def _commit(tmp: Path, out: Path) -> None:
    if out.exists():
        out.rmdir()
    os.rename(tmp, out)


def write_folder(sim: Simulation, out: Path) -> None:
    """``out/<label>/<id>.png`` with the native-size crops (labels after label noise)."""
    if sim.native_crops is None:
        raise SvpgenError("folder export needs the native crops (simulate with keep_native=True)")
    tmp = _fresh_dir(out)
    try:
        t = sim.particles.table
        for crop, pid, label in zip(sim.native_crops, t["id"], t["label"]):
            (tmp / label).mkdir(exist_ok=True)
            Image.fromarray(crop).save(tmp / label / f"{pid}.png")
        t.to_csv(tmp / "truth.csv", index=False)
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pack(sizes: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Shelf-pack (h, w) crops into COLLAGE_SIDE² pages: (page, x, y) per crop."""
    places, page, x, y, shelf = [], 0, GAP, GAP, 0
    for h, w in sizes:
        if x + w + GAP > COLLAGE_SIDE:
            x, y, shelf = GAP, y + shelf + GAP, 0
        if y + h + GAP > COLLAGE_SIDE:
            page, x, y, shelf = page + 1, GAP, GAP, 0
        places.append((page, x, y))
        x += w + GAP
        shelf = max(shelf, h)
    return places


def write_flowcam(sim: Simulation, out: Path, run: str = "sim_run", fluid_volume_ml: float = 0.1, efficiency: float = 0.6) -> None:
    """A VisualSpreadsheet-like export: collage TIFFs on black, ``_bin`` masks, ``<run>.lst``
    (version line, 57-field header, one row per particle), ``<run>_summary.csv`` and the
    simulator's ground truth in ``<run>_truth.csv`` (not part of a real export)."""
    if sim.native_crops is None:
        raise SvpgenError("FlowCam export needs the native crops (simulate with keep_native=True)")
    t = sim.particles.table
    crops = sim.native_crops
    places = _pack([c.shape for c in crops])
    n_pages = (places[-1][0] + 1) if places else 0
    tmp = _fresh_dir(out)
    try:
        start = dt.datetime(2025, 1, 30, 21, 40, 43)
        rows = []
        for page in range(n_pages):
            collage = np.zeros((COLLAGE_SIDE, COLLAGE_SIDE), np.uint8)
            mask = np.zeros_like(collage)
            name = f"{run}_{page + 1:06d}.tif"
            for i in (i for i, p in enumerate(places) if p[0] == page):
                crop = crops[i]
                h, w = crop.shape
                _, x, y = places[i]
                collage[y : y + h, x : x + w] = crop
                bg = float(t["background"].iloc[i]) if "background" in t else 175.0
                particle = np.abs(crop.astype(np.float32) - bg) > 12
                mask[y : y + h, x : x + w] = particle * 255
                cal = float(t["pixel_um"].iloc[i])
                esd = float(t["esd_um"].iloc[i])
                area_px = float(particle.sum())
                abd = 2 * np.sqrt(area_px / np.pi) * cal
                vals = crop[particle] if particle.any() else crop.ravel()
                fields = dict.fromkeys((f for f, _ in LST_FIELDS), 0)
                fields.update(
                    id=i + 1, image_x=x, image_y=y, image_w=w, image_h=h, src_x=x, src_y=y, src_image=i + 1, cal_image=1,
                    ppc=1.0, camera=0, cal_const=round(cal, 6), fringe_size=0.0, raw_area=area_px,
                    raw_feret_mean=round(esd / cal, 4), abd_area=round(area_px * cal * cal, 4), abd_diameter=round(abd, 4),
                    esd_diameter=round(esd, 4), intensity=round(float(vals.mean()), 3), sigma_intensity=round(float(vals.std()), 3),
                    sum_intensity=float(vals.sum()), filled_area=round(area_px * cal * cal, 4),
                    timestamp=(start + dt.timedelta(milliseconds=37 * i)).isoformat(timespec="milliseconds"),
                    collage_file=name,
                )
                rows.append("|".join(str(fields[f]) for f, _ in LST_FIELDS))
            tifffile.imwrite(tmp / name, collage)
            tifffile.imwrite(tmp / f"{run}_{page + 1:06d}_bin.tif", mask)
        header = ["017", f"num-fields|{len(LST_FIELDS)}"] + [f"{n}|{k}" for n, k in LST_FIELDS]
        (tmp / f"{run}.lst").write_text("\n".join(header + rows) + "\n")
        processed = fluid_volume_ml / efficiency
        (tmp / f"{run}_summary.csv").write_text(
            "=Run Summaries=\n"
            f"Magnification,10X\nParticle Count,{len(t)}\nFluid Volume Imaged,{fluid_volume_ml:.4f} ml\n"
            f"Sample Volume Processed,{processed:.4f} ml\nEfficiency,{100 * efficiency:.1f}%\n=Run Summaries End=\n"
        )
        truth = t[["label", "true_label", "subtype", "esd_um"]].copy()
        truth.insert(0, "id", [f"{run}:{i + 1}" for i in range(len(t))])
        truth.to_csv(tmp / f"{run}_truth.csv", index=False)
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
