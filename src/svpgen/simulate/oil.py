"""Silicone oil droplets (n ≈ 1.40 in water, ≈1.333): a weak lens, mostly a phase object.

The focus mode sets the look [F]: bright centre 50%, dark centre 30% (ring minimum, unlike
small bubbles), faint 12%, other 8% (touching doublets, slight elongation, protein coat).
"""

from __future__ import annotations

import numpy as np

from svpgen.simulate.field import SIZE, col, fractal_noise, radius, ring

MODES = ("bright", "dark", "faint", "other")
MODE_P = (0.50, 0.30, 0.12, 0.08)


# The [F] ranges describe final crops, after the instrument's PSF and the resampling of a
# small native crop have softened them. The ideal optical field is sharper, so its contrast
# is set this much higher; tests/test_simulate.py measures the result against the [F] ranges.
PSF_COMPENSATION = 1.6


def droplet_profile(rng, r: np.ndarray, mode: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Deviation from background for each droplet (N×64×64); ``scale`` ≈ 1 stretches radii."""
    k = len(mode)
    dev = np.zeros_like(r)
    sc = col(scale)
    bright = col(mode == "bright")
    dev += bright * (
        col(rng.uniform(60, 80, k)) * np.exp(-((r / (sc * col(rng.uniform(5, 7, k)))) ** 2))
        - col(rng.uniform(80, 110, k)) * ring(r, scale * rng.uniform(12, 15, k), 3.2 * scale)
        + col(rng.uniform(5, 15, k)) * ring(r, scale * rng.uniform(20, 24, k), 3.0 * scale)
    )
    dark = col(mode == "dark")
    dev += dark * (
        -col(rng.uniform(14, 26, k)) * np.exp(-((r / (sc * 6.0)) ** 2))
        - col(rng.uniform(85, 105, k)) * ring(r, scale * rng.uniform(9, 11, k), 3.0 * scale)
        + col(rng.uniform(25, 30, k)) * ring(r, scale * rng.uniform(18, 21, k), 3.0 * scale)
    )
    faint = col(mode == "faint")
    sign = col(np.where(rng.random(k) < 0.5, 1.0, -1.0))
    amp = col(rng.uniform(10, 25, k))
    dev += faint * (
        sign * amp * np.exp(-((r / (sc * 6.0)) ** 2)) - amp * ring(r, scale * rng.uniform(11, 14, k), 2.5 * scale)
    )
    return dev * PSF_COMPENSATION


def render_oil(rng: np.random.Generator, n: int, background: np.ndarray, pixel_um: float):
    """Ideal intensity fields (N×64×64) and per-particle metadata of ``n`` oil droplets."""
    mode = rng.choice(np.array(MODES, dtype=object), size=n, p=MODE_P)
    d = np.clip(np.exp(np.log(4.0) + 0.6 * rng.standard_normal(n)), 1.5, 40.0)
    ar = rng.uniform(0.9, 1.0, n)
    angle = rng.uniform(0, np.pi, n)
    cx, cy = SIZE / 2 + rng.uniform(-1.5, 1.5, (2, n))
    scale = rng.uniform(0.85, 1.15, n)
    other = mode == "other"
    kind = np.where(other, rng.choice(np.array(["doublet", "elongated", "coated"], dtype=object), size=n), "")
    ar = np.where(kind == "elongated", rng.uniform(0.9, 0.93, n), ar)
    # "other" droplets reuse the bright/dark looks; doublets are two smaller touching droplets
    look = np.where(other, rng.choice(np.array(["bright", "dark"], dtype=object), size=n), mode)
    doublet = kind == "doublet"
    scale = np.where(doublet, scale * 0.62, scale)
    offset = np.where(doublet, 13.0 * scale, 0.0)
    r1 = radius(cx - offset * np.cos(angle), cy - offset * np.sin(angle), ar, angle)
    dev = droplet_profile(rng, r1, look, scale)
    if doublet.any():
        idx = np.flatnonzero(doublet)
        r2 = radius(cx[idx] + offset[idx] * np.cos(angle[idx]), cy[idx] + offset[idx] * np.sin(angle[idx]), ar[idx], angle[idx])
        second = droplet_profile(rng, r2, look[idx], scale[idx])
        dev[idx] = np.where(np.abs(second) > np.abs(dev[idx]), second, dev[idx])
    coated = np.flatnonzero(kind == "coated")
    if len(coated):
        r = r1[coated]
        patch_angle = rng.uniform(0, 2 * np.pi, len(coated))
        yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
        side = (np.cos(patch_angle)[:, None, None] * (xx - col(cx[coated])) + np.sin(patch_angle)[:, None, None] * (yy - col(cy[coated]))) > 0
        shell = (r > 12 * col(scale[coated])) & (r < 20 * col(scale[coated])) & side
        dev[coated] += shell * 14 * fractal_noise(rng, len(coated), beta=1.2) - shell * 10
    fields = np.maximum(col(background) + dev, 2.0)  # intensity stays physical before blur
    side_px = d / pixel_um * SIZE / (2 * 16 * scale)
    subtype = np.where(other, "other_" + kind.astype(str), mode.astype(str)).astype(object)
    return fields.astype(np.float32), {"esd_um": d, "native_side": side_px, "subtype": subtype, "aspect": ar}
