"""Write a simulation as a ParticleStore, a folder-per-class tree, or a FlowCam export.

The folder and FlowCam writers save the native-size crops, so importing them back through
the project's preprocessing gives exactly the stored 64×64 images.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from svpgen.errors import SvpgenError
from svpgen.simulate.engine import Simulation

# The 65-field header of a real VisualSpreadsheet export (format version 017), in its order.
LST_FIELDS = [
    ("id", "int32"),
    ("image_x", "int32"),
    ("image_y", "int32"),
    ("image_w", "int32"),
    ("image_h", "int32"),
    ("src_x", "int32"),
    ("src_y", "int32"),
    ("src_image", "int32"),
    ("cal_image", "int32"),
    ("ppc", "int32"),
    ("camera", "int32"),
    ("cal_const", "double"),
    ("fringe_size", "double"),
    ("sphere_count", "int32"),
    ("raw_sphere_volume", "double"),
    ("raw_sphere_complement", "double"),
    ("raw_sphere_unknown", "double"),
    ("raw_area", "double"),
    ("raw_feret_max", "double"),
    ("raw_feret_min", "double"),
    ("raw_feret_mean", "double"),
    ("raw_perimeter", "double"),
    ("raw_convex_perimeter", "double"),
    ("raw_legendre_major", "double"),
    ("raw_legendre_minor", "double"),
    ("abd_area", "double"),
    ("abd_diameter", "double"),
    ("length", "double"),
    ("width", "double"),
    ("esd_diameter", "double"),
    ("fd_diameter", "double"),
    ("perimeter", "double"),
    ("convex_perimeter", "double"),
    ("intensity", "double"),
    ("sigma_intensity", "double"),
    ("sum_intensity", "double"),
    ("compactness", "double"),
    ("elongation", "double"),
    ("roughness", "double"),
    ("edge_gradient", "double"),
    ("elapsed_time", "double"),
    ("circle_fit", "double"),
    ("symmetry", "double"),
    ("circularity_hu", "double"),
    ("intensity_calimage", "double"),
    ("raw_convex_hull_area", "double"),
    ("raw_filled_area", "double"),
    ("filled_area", "double"),
    ("feret_max_angle", "double"),
    ("feret_min_angle", "double"),
    ("avg_red", "double"),
    ("avg_green", "double"),
    ("avg_blue", "double"),
    ("ch1_peak", "double"),
    ("ch1_width", "double"),
    ("ch1_area", "double"),
    ("ch2_peak", "double"),
    ("ch2_width", "double"),
    ("ch2_area", "double"),
    ("ch3_peak", "double"),
    ("ch3_width", "double"),
    ("ch3_area", "double"),
    ("timestamp", "timestamp"),
    ("collage_file", "string"),
    ("image_id", "guid"),
]
# Real collages: 1200 px wide × 1920 px high, crops packed from the top-left with 2 px gaps.
COLLAGE_W, COLLAGE_H = 1200, 1920
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
    """Shelf-pack (h, w) crops into COLLAGE_W × COLLAGE_H pages: (page, x, y) per crop."""
    places, page, x, y, shelf = [], 0, 0, 0, 0
    for h, w in sizes:
        if x + w > COLLAGE_W:
            x, y, shelf = 0, y + shelf + GAP, 0
        if y + h > COLLAGE_H:
            page, x, y, shelf = page + 1, 0, 0, 0
        places.append((page, x, y))
        x += w + GAP
        shelf = max(shelf, h)
    return places


def _lst_value(value, kind: str) -> str:
    """A field as VisualSpreadsheet writes it: doubles with 4 decimals, ints bare."""
    if kind == "double":
        return f"{float(value):.4f}"
    if kind == "int32":
        return str(int(value))
    return str(value)


def _run_summary(
    run: str, n: int, fluid_volume_ml: float, efficiency: float, start: dt.datetime
) -> str:
    """``<run>_run_summary.txt`` as VisualSpreadsheet writes it: ``Key: value`` lines,
    tab-indented under section names, with CRLF line endings."""
    processed = fluid_volume_ml / efficiency
    lines = [
        f"Name: {run}",
        "Run Summary",
        f"\tStart Time: {start:%Y-%m-%d %H:%M:%S}",
        "\tMode: AutoImage",
        "\tMagnification: 10X",
        f"\tParticle Count: {n}",
        f"\tSample Volume Processed: {processed:.4f} ml",
        f"\tFluid Volume Imaged: {fluid_volume_ml:.4f} ml",
        f"\tEfficiency: {100 * efficiency:.1f}%",
        "Software",
        "\tSoftware: VisualSpreadsheet (svpgen simulator)",
    ]
    return "\r\n".join(lines) + "\r\n"


def write_flowcam(
    sim: Simulation,
    out: Path,
    run: str = "sim_run",
    fluid_volume_ml: float = 0.1,
    efficiency: float = 0.6,
) -> None:
    """A VisualSpreadsheet export as the instrument writes it: RGB LZW-compressed collage
    TIFFs (1200×1920, crops on black), LZW ``_bin`` masks, ``<run>.lst`` (version ``017``,
    the real 65-field header, one row per particle), ``<run>_run_summary.txt``, and the
    simulator's ground truth in ``<run>_truth.csv`` (not part of a real export)."""
    if sim.native_crops is None:
        raise SvpgenError("FlowCam export needs the native crops (simulate with keep_native=True)")
    t = sim.particles.table
    crops = sim.native_crops
    places = _pack([c.shape for c in crops])
    n_pages = (places[-1][0] + 1) if places else 0
    kinds = dict(LST_FIELDS)
    tmp = _fresh_dir(out)
    try:
        start = dt.datetime(2025, 1, 30, 21, 40, 43)
        rows = []
        for page in range(n_pages):
            collage = np.zeros((COLLAGE_H, COLLAGE_W), np.uint8)
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
                mean = float(vals.mean())
                fields = dict.fromkeys(kinds, 0)
                fields.update(
                    id=i + 1,
                    image_x=x,
                    image_y=y,
                    image_w=w,
                    image_h=h,
                    src_x=x,
                    src_y=y,
                    src_image=i + 1,
                    cal_image=1,
                    ppc=1,
                    camera=0,
                    cal_const=cal,
                    fringe_size=0.0,
                    raw_area=area_px,
                    raw_feret_mean=esd / cal,
                    abd_area=area_px * cal * cal,
                    abd_diameter=abd,
                    esd_diameter=esd,
                    fd_diameter=esd,
                    intensity=mean,
                    sigma_intensity=float(vals.std()),
                    sum_intensity=float(vals.sum()),
                    raw_filled_area=area_px,
                    filled_area=area_px * cal * cal,
                    elapsed_time=0.037 * i,
                    avg_red=mean,
                    avg_green=mean,
                    avg_blue=mean,
                    timestamp=(start + dt.timedelta(milliseconds=37 * i)).isoformat(
                        timespec="milliseconds"
                    ),
                    collage_file=name,
                    image_id=str(
                        uuid.UUID(bytes=hashlib.md5(f"{run}:{i}".encode()).digest())
                    ).upper(),
                )
                rows.append("|".join(_lst_value(fields[f], k) for f, k in LST_FIELDS))
            Image.fromarray(collage).convert("RGB").save(tmp / name, compression="tiff_lzw")
            Image.fromarray(mask).save(
                tmp / f"{run}_{page + 1:06d}_bin.tif", compression="tiff_lzw"
            )
        header = ["017", f"num-fields|{len(LST_FIELDS)}"] + [f"{n}|{k}" for n, k in LST_FIELDS]
        (tmp / f"{run}.lst").write_text("\n".join(header + rows) + "\n")
        (tmp / f"{run}_run_summary.txt").write_bytes(
            _run_summary(run, len(t), fluid_volume_ml, efficiency, start).encode()
        )
        truth = t[["label", "true_label", "subtype", "esd_um"]].copy()
        truth.insert(0, "id", [f"{run}:{i + 1}" for i in range(len(t))])
        truth.to_csv(tmp / f"{run}_truth.csv", index=False)
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
