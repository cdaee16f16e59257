"""Simulation driver: per-class batched renderers → native optics → preprocessing.

Work is cut into chunks, each with its own child seed (``numpy.random.SeedSequence``),
so the bytes produced depend only on the seed and the counts — not on the number of
worker processes.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from svpgen.data.preprocess import IMAGE_SIZE, bilinear_weights, preprocess_batch
from svpgen.data.store import Particles
from svpgen.errors import SvpgenError
from svpgen.simulate.bubbles import render_bubbles
from svpgen.simulate.debris import render_fiber, render_glass
from svpgen.simulate.field import EDGE_TAPER, SIZE, col, gaussian_matrices, zoom_matrices
from svpgen.simulate.oil import render_oil
from svpgen.simulate.protein import render_protein

RENDERERS = {
    "protein": render_protein,
    "silicone_oil": render_oil,
    "air_bubble": render_bubbles,
    "glass": render_glass,
    "fiber": render_fiber,
}
# particles per task and per child seed: the renderers' N×64×64 temporaries stay in cache
CHUNK = 256
# pixels per block of the native-optics and preprocessing passes (≈ 64 crops of 64×64): on
# large stacks these elementwise passes are memory-bound, in cache they run ≈ 2.5× faster
BLOCK_PIXELS = 64 * IMAGE_SIZE * IMAGE_SIZE


@functools.lru_cache(maxsize=512)
def _resampling_weights(side: int) -> np.ndarray:
    """Pillow's bilinear weights from the 64-px render grid to a ``side``-px native grid
    (float32)."""
    return bilinear_weights(SIZE, side).astype(np.float32)


@dataclass(frozen=True)
class SimConfig:
    """Instrument and noise settings (spec defaults); ``profile`` picks the calibration."""

    # "flowcam": calibrated against a real FlowCam run as well as the paper's Fig. 5 tiles
    # (the default); "fig5": the paper's curated tiles alone (the simulator before)
    profile: str = "flowcam"
    pixel_um: float = 0.55  # FlowCam 10×
    # mean, sd of the background B, clipped to [120, 210]; None: the profile's — fig5 176 ± 3
    # (the real Fig. 5 tiles: 175–177), flowcam 162 ± 16 (a real FlowCam run's tiles: 140–157)
    background: tuple[float, float] | None = None
    psf_um: tuple[float, float] = (0.45, 0.9)
    noise_levels: tuple[float, float] = (1.0, 2.5)
    gradient_levels: tuple[float, float] = (0.0, 4.0)
    label_noise: float = 0.03  # symmetric; doubled below small_um
    small_um: float = 8.0
    min_native_px: int = 32  # FlowCam pads small captures; smaller crops would be pure blur
    max_native_px: int = 256  # larger crops are rendered at this side with a coarser µm/px
    workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, 4))

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise SvpgenError(
                f"unknown simulator profile {self.profile!r}; choose from {', '.join(PROFILES)}"
            )

    @property
    def background_mean_sd(self) -> tuple[float, float]:
        """The background's mean and sd: the config's own, else the profile's."""
        return self.background or PROFILES[self.profile]["background"]


# per calibration profile: the background, the share of particles framed as the paper's
# tiles (cropped tightly about the particle) rather than as a FlowCam collage tile (the
# particle at its native size inside a fixed margin, see _framing), and the range of the
# smallest peak contrast a recorded particle has (gray levels in the native crop before
# noise: the instrument records only what its segmentation found — 95% of a real run's
# tiles show a particle 12 levels from the background; fainter ones are raised to it)
PROFILES = {
    "fig5": {"background": (176.0, 3.0), "tight": 1.0},
    "flowcam": {"background": (162.0, 16.0), "tight": 0.45, "detect": (14.0, 26.0)},
}
# a FlowCam collage tile around a particle of P native px: P + a margin of ≈ 31 px + 0.4 P
# (the real run's tiles: 36 px around particles below 8 px, 55 px around 14–25 px ones)
TILE_MARGIN = (31.0, 3.0)
TILE_MARGIN_PER_PX = 0.4
MIN_ZOOM = 0.12


@dataclass
class Simulation:
    """Simulated particles, and their native-size crops when an export needs them."""

    particles: Particles
    native_crops: list[np.ndarray] | None  # uint8 crops at native size (for instrument exports)


def _framing(rng: np.random.Generator, meta: dict, cfg: SimConfig, n: int) -> np.ndarray:
    """Per particle, how much its field shrinks about the crop centre (≤ 1) to sit in a
    FlowCam collage tile: a particle of P = ESD / µm-per-px native pixels gets a tile of
    P + margin, so the 64-px field, which spans ``native_side`` native px, shrinks by
    ``native_side / (P + margin)``. Particles framed tightly (the profile's share, except
    those a renderer marks ``tile_only``, and those it marks ``framed`` — cut by the camera
    frame) keep 1."""
    share = PROFILES[cfg.profile]["tight"]
    if share >= 1.0:  # no draw: the fig5 profile's bytes are the simulator's before
        return np.ones(n)
    tight = (rng.random(n) < share) & ~np.asarray(meta.get("tile_only", np.zeros(n, bool)), bool)
    tight |= np.asarray(meta.get("framed", np.zeros(n, bool)), bool)
    if tight.all():
        return np.ones(n)
    particle = meta["esd_um"] / cfg.pixel_um
    margin = np.maximum(rng.normal(*TILE_MARGIN, n) + TILE_MARGIN_PER_PX * particle, 24.0)
    zoom = np.clip(meta["native_side"] / (particle + margin), MIN_ZOOM, 1.0)
    return np.where(tight, 1.0, zoom)


def _frame_in_tiles(
    rng: np.random.Generator, fields: np.ndarray, background: np.ndarray, meta: dict, cfg: SimConfig
) -> None:
    """Shrink the particles that sit in a FlowCam tile's margin (:func:`_framing`) into the
    crop centre, in place: the deviation from the background, softly cut round inside the crop's
    edge, area-resampled; the field then spans the whole tile (``native_side`` updated)
    and the renderer's defocus blur shrinks with it."""
    zoom = _framing(rng, meta, cfg, len(fields))
    idx = np.flatnonzero(zoom < 1)
    if not len(idx):
        return
    z = zoom_matrices(zoom[idx])
    bg = col(background[idx])
    fields[idx] = bg + z @ ((fields[idx] - bg) * EDGE_TAPER) @ np.swapaxes(z, 1, 2)
    meta["native_side"] = meta["native_side"] / zoom
    if "defocus_px" in meta:
        meta["defocus_px"] = meta["defocus_px"] * zoom


def _finish(
    rng: np.random.Generator,
    fields: np.ndarray,
    background: np.ndarray,
    meta: dict,
    cfg: SimConfig,
    keep_native: bool,
):
    """Native optics and sensor: PSF, native resolution, noise, gradient, uint8, preprocess.

    Particles are processed in groups of equal native side, in cache-sized blocks: the PSF
    blur and the resampling to the native grid are one matrix per particle (Pillow's
    bilinear weights for a float image, times the Gaussian), and the 8-bit preprocessing is
    the batched, Pillow-exact ``preprocess_batch``.
    """
    n = len(fields)
    true_side = np.maximum(meta["native_side"], cfg.min_native_px)
    side = np.clip(np.rint(true_side), cfg.min_native_px, cfg.max_native_px).astype(int)
    pixel_um = cfg.pixel_um * true_side / side
    psf_px = rng.uniform(*cfg.psf_um, n) / pixel_um * SIZE / side  # native px → render-grid px
    defocus_px = meta.get("defocus_px", np.zeros(n))  # a renderer's own defocus, in render-grid px
    optics = gaussian_matrices(np.hypot(psf_px, defocus_px))  # two Gaussian blurs in one
    noise_sd = rng.uniform(*cfg.noise_levels, n).astype(np.float32)
    grad = rng.uniform(*cfg.gradient_levels, n).astype(np.float32)
    grad_angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    detect = PROFILES[cfg.profile].get("detect")
    floor = rng.uniform(*detect, n).astype(np.float32) if detect else None
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    natives: list | None = [None] * n if keep_native else None
    for s in np.unique(side):
        group = np.flatnonzero(side == s)
        to_grid = _resampling_weights(int(s))
        ramp = np.linspace(-0.5, 0.5, s, dtype=np.float32)
        block = max(1, BLOCK_PIXELS // max(int(s), IMAGE_SIZE) ** 2)
        for start in range(0, len(group), block):
            idx = group[start : start + block]
            to_native = to_grid @ optics[idx]  # (k, s, 64)
            native = to_native @ fields[idx] @ np.swapaxes(to_native, 1, 2)
            if floor is not None:  # the instrument keeps only particles it could segment
                bg = col(background[idx])
                peak = np.abs(native - bg).max(axis=(1, 2))
                native = bg + (native - bg) * col(
                    np.maximum(1.0, floor[idx] / np.maximum(peak, 1e-3))
                )
            native += col(grad[idx] * np.cos(grad_angle[idx])) * ramp[None, None, :]
            native += col(grad[idx] * np.sin(grad_angle[idx])) * ramp[None, :, None]
            native += rng.standard_normal(native.shape, dtype=np.float32) * col(noise_sd[idx])
            crops = np.clip(np.rint(native), 0, 255).astype(np.uint8)
            images[idx] = preprocess_batch(crops)
            if keep_native:
                for i, crop in zip(idx, crops):
                    natives[i] = crop
    return images, natives, side, pixel_um


def _one_blas_thread() -> None:
    """Worker start-up: one BLAS thread per process. The matrices are small (≤ 256 px), where
    BLAS threads cost more than they give, and the worker processes already use the cores.
    (Set once per process: entering ``threadpool_limits`` costs ≈ 1 ms, per chunk ≈ 1%.)"""
    threadpool_limits(limits=1, user_api="blas")


def _render_chunk(args):
    label, n, seed_seq, cfg, keep_native = args
    rng = np.random.default_rng(seed_seq)
    background = np.clip(rng.normal(*cfg.background_mean_sd, n), 120, 210).astype(np.float32)
    fields, meta = RENDERERS[label](rng, n, background, cfg.pixel_um, cfg.profile)
    _frame_in_tiles(rng, fields, background, meta, cfg)
    images, natives, side, pixel_um = _finish(rng, fields, background, meta, cfg, keep_native)
    columns = {
        "native_h": side,
        "native_w": side,
        "pixel_um": pixel_um,
        "esd_um": meta["esd_um"],
        "subtype": meta["subtype"].astype(str),
        "background": background,
    }
    return images, natives, columns


def _label_noise(
    rng: np.random.Generator, labels: np.ndarray, esd: np.ndarray, cfg: SimConfig
) -> np.ndarray:
    classes = np.unique(labels)
    if cfg.label_noise <= 0 or len(classes) < 2:
        return labels.copy()
    rate = np.where(esd < cfg.small_um, 2 * cfg.label_noise, cfg.label_noise)
    flip = rng.random(len(labels)) < rate
    noisy = labels.copy()
    for i in np.flatnonzero(flip):
        others = classes[classes != labels[i]]
        noisy[i] = others[rng.integers(len(others))]
    return noisy


def simulate(
    counts: dict[str, int],
    seed: int = 0,
    config: SimConfig | None = None,
    keep_native: bool = False,
    progress: bool = False,
) -> Simulation:
    """Render ``counts[label]`` particles per class. Same seed and counts → same bytes."""
    cfg = config or SimConfig()
    unknown = sorted(set(counts) - set(RENDERERS))
    if unknown:
        raise SvpgenError(f"cannot simulate class(es) {unknown}; choose from {sorted(RENDERERS)}")
    root = np.random.SeedSequence(seed)
    class_seeds = root.spawn(len(RENDERERS) + 1)
    jobs = []
    for ci, label in enumerate(RENDERERS):
        n = int(counts.get(label, 0))
        if n < 0:
            raise SvpgenError(f"--{label.replace('_', '-')} must be ≥ 0 (got {n})")
        chunk_seeds = class_seeds[ci].spawn((n + CHUNK - 1) // CHUNK)
        for k, ss in enumerate(chunk_seeds):
            jobs.append((label, min(CHUNK, n - k * CHUNK), ss, cfg, keep_native))
    total = sum(j[1] for j in jobs)
    results = []
    bar = tqdm(total=total, unit="particle", desc="simulate", disable=not progress)
    if cfg.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=cfg.workers, initializer=_one_blas_thread) as pool:
            for job, res in zip(jobs, pool.map(_render_chunk, jobs)):
                results.append(res)
                bar.update(job[1])
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            for job in jobs:
                results.append(_render_chunk(job))
                bar.update(job[1])
    bar.close()

    labels = (
        np.concatenate([np.full(j[1], j[0], dtype=object) for j in jobs])
        if jobs
        else np.array([], object)
    )
    images = (
        np.concatenate([r[0] for r in results])
        if results
        else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    )
    columns = (
        {k: np.concatenate([r[2][k] for r in results]) for k in results[0][2]} if results else {}
    )
    natives = [c for r in results for c in r[1]] if keep_native and results else None
    noisy = _label_noise(
        np.random.default_rng(class_seeds[-1]), labels, columns.get("esd_um", np.array([])), cfg
    )
    per_class = {}
    ids = []
    for lab in labels:
        per_class[lab] = per_class.get(lab, 0) + 1
        ids.append(f"sim{seed}-{lab}-{per_class[lab]:07d}")
    particles = Particles.from_arrays(
        images,
        labels=noisy,
        source="simulated",
        ids=ids,
        origins="simulator",
        true_label=labels.astype(str),
        **columns,
    )
    return Simulation(particles, natives)
