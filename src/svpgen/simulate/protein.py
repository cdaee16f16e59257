"""Protein aggregates: translucent, low-index objects seen by edge/phase contrast.

Shapes: random-walk unions of 20–300 blobs, thresholded multi-octave noise, or 10–15%
fibrils (curvilinear strands); optional voids. Optics: thickness t from the shape,
amplitude A² = 1 − a·t, phase φ ∝ t, I = B·[A² − κ·Δz·∇²φ] with a defocus Δz, plus a fine
speckle texture. Sub-types: translucent 45% (tile std 6–12), network 30% (std 12–25),
dense 25% (compact, dark core, bright internal lobes, halo — the confuser for bubbles/oil).
5% are small round "oil-like" particles (Δn ≈ 0.02, rough edge): a deliberate confuser,
drawn with the droplet renderer at a third of its contrast. No real protein reference is
available offline; these numbers are the simulator spec's, not a calibration.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from svpgen.simulate.field import (
    SIZE,
    blob,
    blur,
    col,
    fractal_noise,
    gaussian_spot,
    radius,
    ring,
    white_noise,
)
from svpgen.simulate.oil import droplet_deviation

# The protein texture's zero-mean part is set this much above its target tile std: the
# instrument's PSF and the resampling of a small native crop attenuate it, and
# tests/test_simulate.py measures the final tiles against the targets.
PSF_COMPENSATION = 1.6

SUBTYPES = ("translucent", "network", "dense", "floc", "soft")
# the sub-types' shares per calibration profile (the round confusers come on top): the
# simulator spec's, and with what a real FlowCam run of a stressed antibody shows —
# textured flocs with bright speckle and, most of all, small soft out-of-focus blobs
SUBTYPE_P = {
    "fig5": (0.45, 0.30, 0.25, 0.0, 0.0),
    "flowcam": (0.24, 0.14, 0.05, 0.32, 0.25),
}


# the defocus term's strength for translucent and network aggregates: the spec's, and for a
# real FlowCam run weaker — its aggregates show lobes and speckle, not the crisp bright halo
# that marks a defocused droplet there
EDGE_CONTRAST = {"fig5": (0.15, 0.45), "flowcam": (0.03, 0.15)}


def power_law_sizes(rng, n, lo=2.0, hi=200.0):
    """Diameters with n(d) ∝ d^-alpha, alpha ~ U(2.5, 3.5), truncated to [lo, hi] µm."""
    a = 1.0 - rng.uniform(2.5, 3.5, n)
    u = rng.random(n)
    return (lo**a + u * (hi**a - lo**a)) ** (1.0 / a)


def _laplacian(f: np.ndarray) -> np.ndarray:
    p = np.pad(f, ((0, 0), (1, 1), (1, 1)), mode="edge")
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:] - 4 * f


def _scatter(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Accumulate (N, K, 2) point positions (x, y) into N×64×64 count grids."""
    n, k, _ = points.shape
    xi = np.clip(np.rint(points[..., 0] - 0.5), 0, SIZE - 1).astype(np.int64)
    yi = np.clip(np.rint(points[..., 1] - 0.5), 0, SIZE - 1).astype(np.int64)
    flat = (np.arange(n)[:, None] * SIZE * SIZE + yi * SIZE + xi)[valid]
    return np.bincount(flat, minlength=n * SIZE * SIZE).reshape(n, SIZE, SIZE).astype(np.float32)


def _blob_union(rng, n, extent):
    """Random-walk union of 20–300 Gaussian blobs, scaled to ``extent`` (64-px units)."""
    kmax = 300
    counts = rng.integers(20, kmax + 1, n)
    steps = rng.standard_normal((n, kmax, 2)).astype(np.float32)
    walk = np.cumsum(steps, axis=1)
    valid = np.arange(kmax)[None, :] < counts[:, None]
    centre = (walk * valid[..., None]).sum(1) / counts[:, None]
    walk -= centre[:, None, :]
    spread = np.sqrt((walk**2).sum(-1) * valid).max(1) + 1e-3
    walk *= (extent / 2 * 0.8 / spread)[:, None, None]
    walk += SIZE / 2
    grid = _scatter(walk, valid)
    sigma = np.clip(extent / np.sqrt(counts) * 0.9, 1.2, 6.0)
    density = blur(grid, sigma)
    peak = 1.0 / (2 * np.pi * sigma**2)
    return density > col(0.3 * peak)


def _noise_shape(rng, n, extent):
    noise = fractal_noise(rng, n, beta=rng.uniform(2.5, 3.5))
    r = radius(
        SIZE / 2 + rng.uniform(-2, 2, n),
        SIZE / 2 + rng.uniform(-2, 2, n),
        rng.uniform(0.6, 1.0, n),
        rng.uniform(0, np.pi, n),
    )
    envelope = 1.0 - (r / col(extent / 2)) ** 2
    return (0.45 * noise + 1.2 * envelope) > 0.35


def _fibrils(rng, n, extent):
    steps = 160
    strands = 3
    pts = np.empty((n, strands * steps, 2), np.float32)
    valid = np.zeros((n, strands * steps), bool)
    n_strands = rng.integers(1, strands + 1, n)
    for s in range(strands):
        heading = rng.uniform(0, 2 * np.pi, n)[:, None] + np.cumsum(
            rng.normal(0, 0.12, (n, steps)), axis=1
        )
        length = (extent * rng.uniform(0.5, 1.0, n))[:, None]
        step = length / steps
        xy = np.stack(
            [np.cumsum(np.cos(heading) * step, 1), np.cumsum(np.sin(heading) * step, 1)], -1
        )
        xy -= xy.mean(1, keepdims=True)
        xy += SIZE / 2 + rng.uniform(-6, 6, (n, 1, 2))
        pts[:, s * steps : (s + 1) * steps] = xy
        valid[:, s * steps : (s + 1) * steps] = (s < n_strands)[:, None]
    grid = _scatter(pts, valid)
    thick = rng.uniform(0.8, 1.8, n)
    density = blur(np.minimum(grid, 1.0), thick)
    return density > col(0.25 / (2 * np.pi * thick**2) * 2.5)


def _translucent_or_network(rng, idx_count, background, subtype, edge=(0.15, 0.45)):
    """``edge``: the range of the defocus term's strength (the phase-contrast rims)."""
    n = idx_count
    extent = SIZE * rng.uniform(0.5, 0.95, n)
    network = subtype == "network"
    method = rng.random(n)
    mask = np.empty((n, SIZE, SIZE), bool)
    for chosen, make in (
        (method < 0.13, _fibrils),
        ((method >= 0.13) & (method < 0.55), _blob_union),
        (method >= 0.55, _noise_shape),
    ):
        if chosen.any():
            mask[chosen] = make(rng, int(chosen.sum()), extent[chosen])
    voids = rng.random(n) < 0.2
    if voids.any():
        vr = radius(SIZE / 2 + rng.uniform(-8, 8, n), SIZE / 2 + rng.uniform(-8, 8, n))
        mask &= ~((vr < col(rng.uniform(2, 6, n))) & voids[:, None, None])
    thickness = blur(mask.astype(np.float32), np.full(n, 1.2))
    texture = fractal_noise(rng, n, beta=1.0)
    thickness *= 1.0 + 0.35 * texture
    absorption = rng.uniform(0.02, 0.12, n)
    defocus = rng.uniform(-1, 1, n)
    kappa = rng.uniform(*edge, n)
    dev = col(background) * (
        -col(absorption) * thickness - col(kappa * defocus) * _laplacian(thickness)
    )
    speckle = white_noise(rng, (n, SIZE, SIZE)) * blur(mask.astype(np.float32), np.full(n, 0.8))
    dev += col(rng.uniform(3, 8, n)) * speckle
    # Calibrate to the sub-type's tile std and tile mean. The mean is carried by a step
    # over the mask (low frequency: survives the blur), the rest of the variance by the
    # zero-mean texture, which gets PSF_COMPENSATION because the blur attenuates it.
    std = np.where(network, rng.uniform(12, 25, n), rng.uniform(6, 12, n))
    fill = np.clip(mask.mean(axis=(1, 2)), 0.02, 0.98)
    mean = -np.minimum(rng.uniform(3, 25, n), 0.9 * std * np.sqrt(fill / (1 - fill)))
    step = mean / fill
    texture_std = np.sqrt(np.maximum(std**2 - step**2 * fill * (1 - fill), (0.3 * std) ** 2))
    dev -= dev.mean(axis=(1, 2), keepdims=True)
    dev *= col(texture_std * PSF_COMPENSATION / (dev.std(axis=(1, 2)) + 1e-3))
    dev += mask * col(step)
    return dev, extent, mask


def _dense(rng, n, background):
    extent = SIZE * rng.uniform(0.5, 0.8, n)
    ar = rng.uniform(0.7, 0.95, n)
    cx, cy = SIZE / 2 + rng.uniform(-2, 2, (2, n))
    r = radius(cx, cy, ar, rng.uniform(0, np.pi, n))
    edge = col(extent / 2)
    lumpy = r * (1 + 0.12 * fractal_noise(rng, n, beta=3.0))
    inside = expit(edge - lumpy)
    dev = -col(rng.uniform(80, 130, n)) * blob(lumpy, extent / 2 * 0.75) * inside
    for _ in range(4):  # bright internal lobes: round Gaussians, made as outer products of 1-D ones
        ang, rad = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 0.55, n) * extent / 2
        amplitude = rng.uniform(20, 50, n) * (rng.random(n) < 0.8)
        width = rng.uniform(2, 4, n)
        dev += (
            col(amplitude)
            * gaussian_spot(cx + rad * np.cos(ang), cy + rad * np.sin(ang), width)
            * inside
        )
    dev += col(rng.uniform(15, 30, n)) * ring(lumpy, extent / 2 + 2, 2.5)
    dev += col(rng.uniform(4, 9, n)) * white_noise(rng, (n, SIZE, SIZE)) * inside
    return dev, extent, ar


def _floc(rng, n, background):
    """A textured floc as a FlowCam sees it: lumpy lobes seen by phase contrast — bright
    lobes and dark ones side by side, with weak rims from the defocus term — a light
    absorption, and bright speckle where the aggregate focuses light."""
    extent = SIZE * rng.uniform(0.55, 0.9, n)
    mask = _blob_union(rng, n, extent)
    soft = blur(mask.astype(np.float32), rng.uniform(1.2, 2.0, n))
    thickness = soft * (1.0 + 0.6 * fractal_noise(rng, n, beta=2.0))
    kappa = rng.uniform(0.05, 0.2, n) * np.where(rng.random(n) < 0.6, 1.0, -1.0)
    dev = col(background) * (
        -col(rng.uniform(0.0, 0.12, n)) * thickness - col(kappa) * _laplacian(thickness)
    )
    lobes = fractal_noise(rng, n, beta=2.8)  # smooth lobes of either sign
    bright, dark = np.maximum(lobes - 0.3, 0), np.maximum(-lobes - 0.3, 0)
    dev += soft * (col(rng.uniform(30, 80, n)) * bright - col(rng.uniform(20, 60, n)) * dark)
    density = rng.uniform(0.01, 0.05, n)
    points = (rng.random((n, SIZE, SIZE), dtype=np.float32) < col(density)) & mask
    sparkle = blur(points.astype(np.float32), rng.uniform(0.8, 1.6, n))
    dev += col(rng.uniform(150, 400, n)) * sparkle
    dev += col(rng.uniform(3, 8, n)) * white_noise(rng, (n, SIZE, SIZE)) * mask
    return dev, extent


def _soft(rng, n, background):
    """A small aggregate far out of focus: a soft blob, darker (70%) or lighter than the
    background, barely structured."""
    extent = SIZE * rng.uniform(0.35, 0.7, n)
    cx, cy = SIZE / 2 + rng.uniform(-2, 2, (2, n))
    r = radius(cx, cy, rng.uniform(0.6, 1.0, n), rng.uniform(0, np.pi, n))
    r *= 1 + 0.15 * fractal_noise(rng, n, beta=3.0)
    sign = np.where(rng.random(n) < 0.7, -1.0, 1.0)
    dev = col(sign * rng.uniform(8, 35, n)) * np.exp(-((r / col(extent / 2)) ** 2))
    return dev, extent


def render_protein(
    rng: np.random.Generator,
    n: int,
    background: np.ndarray,
    pixel_um: float,
    profile: str = "flowcam",
):
    """Ideal intensity fields (N×64×64) and per-particle metadata of ``n`` protein aggregates."""
    d = power_law_sizes(rng, n)
    round_ = rng.random(n) < 0.05
    subtype = np.where(
        round_, "round", rng.choice(np.array(SUBTYPES, dtype=object), size=n, p=SUBTYPE_P[profile])
    ).astype(object)
    dev = np.zeros((n, SIZE, SIZE), np.float32)
    extent = np.zeros(n)
    aspect = np.ones(n)
    tn = np.flatnonzero((subtype == "translucent") | (subtype == "network"))
    if len(tn):
        dev[tn], extent[tn], _ = _translucent_or_network(
            rng, len(tn), background[tn], subtype[tn], EDGE_CONTRAST[profile]
        )
    de = np.flatnonzero(subtype == "dense")
    if len(de):
        dev[de], extent[de], aspect[de] = _dense(rng, len(de), background[de])
    for name, make in (("floc", _floc), ("soft", _soft)):
        idx = np.flatnonzero(subtype == name)
        if len(idx):
            dev[idx], extent[idx] = make(rng, len(idx), background[idx])
    flocs = np.flatnonzero(subtype == "floc")
    if len(flocs):  # flocs are the large ones: ESD lognormal, median 12 µm
        d[flocs] = np.clip(np.exp(np.log(12.0) + 0.6 * rng.standard_normal(len(flocs))), 3, 200)
    ro = np.flatnonzero(round_)
    if len(ro):  # small round protein particles that look like (fainter, rough-edged) droplets
        k = len(ro)
        R = rng.uniform(14, 20, k).astype(np.float32)
        cx, cy = SIZE / 2 + rng.normal(0, 1.2, (2, k))
        r = radius(cx, cy, rng.uniform(0.85, 1.0, k)) * (
            1 + 0.06 * fractal_noise(rng, k, beta=2.0)
        )  # rough edge
        look = rng.choice(np.array(["faint", "dark", "bright"], dtype=object), size=k)
        dev[ro] = droplet_deviation(rng, look, r, r, R, cx, cy) * col(
            rng.uniform(0.25, 0.45, k)
        )  # Δn 0.02 vs 0.067
        extent[ro] = 2 * R
        d[ro] = np.clip(d[ro], 2, 12)
    side = d / pixel_um * SIZE / extent
    return (col(background) + dev).astype(np.float32), {
        "esd_um": d,
        "native_side": side,
        "subtype": subtype,
        "aspect": aspect,
        # the looks only a run's tiles show (calibrated on one), not a curated tight crop
        "tile_only": np.isin(subtype, ("floc", "soft")),
    }
