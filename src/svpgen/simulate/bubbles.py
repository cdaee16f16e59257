"""Air bubbles: index 1.0 in water → total internal reflection, a black annulus.

Calibrated against the 70 real bubbles of the paper's Fig. 5 (the realism check of
:mod:`svpgen.simulate.realism`; numbers in the README). In a 64×64 crop:

* small, complete (64%): a dark dome (half-depth radius 8.5–11.5 px, steep edge, a
  slightly irregular outline) and a bright halo around it (+24–48 at ≈ 2× the half
  radius); 10% of them with a light spot at the centre;
* large (33%), bigger than the crop and cut by the camera frame (the body lies along a crop axis): a gray window (62–82) with a lighter rim (+50–75, 2.5–4.5 px wide, just inside its edge) inside a
  black annulus (8–16); the crop shows either the window's edge or the bubble's outer
  edge with its bright fringe (228–250) decaying into the background.

Fields include the background B, before the instrument's PSF and sampling.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from svpgen.simulate.field import SIZE, col, fractal_noise, radius, ring

LARGE_SHARE = 0.33  # 23 of the 70 real tiles
WINDOW_VIEW_SHARE = 0.30  # 7 of those 23 are inside the bubble's window


def _small(rng: np.random.Generator, k: int, background: np.ndarray):
    cx, cy = SIZE / 2 + rng.normal(0, 1.2, (2, k))
    aspect = rng.uniform(0.85, 1.0, k)
    r = radius(cx, cy, aspect, rng.uniform(0, np.pi, k))
    # one "contrast" per bubble (focus and size): a darker core comes with a brighter, wider halo
    contrast = rng.random(k)
    half = 8.5 + 3.0 * (0.5 * contrast + 0.5 * rng.random(k))
    noise = fractal_noise(rng, k, beta=2.5)
    outline = r * (1 + 0.06 * noise)  # a slightly irregular outline …
    dome = 1.0 / (1.0 + (outline / col(half)) ** col(rng.uniform(3.5, 6.0, k)))
    depth = 100 + 50 * contrast + rng.normal(0, 8, k)
    dev = -col(depth) * dome + 6 * noise * dome  # … and a mottled core
    halo = 24 + 24 * contrast + rng.normal(0, 5, k)
    dev += col(halo) * ring(r, half * rng.uniform(1.85, 2.2, k), 3.5 + 1.5 * contrast)
    spot = rng.random(k) < 0.10
    dev += col(spot * rng.uniform(20, 60, k)) * np.exp(-((r / 2.0) ** 2))
    esd = np.clip(np.exp(np.log(15.0) + 0.8 * rng.standard_normal(k)), 2.0, 150.0)
    scale = SIZE / (2 * 2.2 * half)  # crop px per µm-equivalent of the particle
    return col(background) + dev, esd, esd * scale, np.where(spot, "small_spot", "small").astype(object), aspect


def _large(rng: np.random.Generator, k: int, background: np.ndarray):
    R = rng.uniform(60, 200, k)
    aspect = rng.uniform(0.8, 1.0, k)
    window_r = rng.uniform(0.3, 0.65, k) * R
    window_view = rng.random(k) < WINDOW_VIEW_SHARE
    # A bubble bigger than the crop is cut by the camera frame, whose edges are the crop's
    # axes: in the real edge views the body lies along an axis (±10°); window views (a crop
    # inside the bubble) come in any direction.
    axis_aligned = rng.integers(0, 4, k) * (np.pi / 2) + rng.normal(0, np.radians(8), k)
    angle = np.where(window_view, rng.uniform(0, 2 * np.pi, k), axis_aligned)
    # distance from the crop centre to the bubble centre: at the window edge or the outer edge
    dist = np.where(window_view, window_r + rng.uniform(-12, 12, k), R + rng.uniform(-16, 0, k))
    cx, cy = SIZE / 2 - dist * np.cos(angle), SIZE / 2 - dist * np.sin(angle)
    r = radius(cx, cy, aspect, rng.uniform(0, np.pi, k))
    off = rng.uniform(0, 0.15, k) * R
    r_window = radius(cx + off * np.cos(angle), cy + off * np.sin(angle), aspect, 0.0)
    level, rim, dark = rng.uniform(62, 82, k), rng.uniform(50, 75, k), rng.uniform(8, 16, k)
    rim_w = rng.uniform(2.5, 4.5, k)  # the rim lies just inside the window's edge
    fringe_w, fringe_peak, decay = rng.uniform(2, 6, k), rng.uniform(228, 250, k), rng.uniform(5, 10, k)
    inside_window = expit((col(window_r) - r_window) / 1.2)
    inside_bubble = expit(col(R) - r)
    body = col(dark) + (col(level) - col(dark)) * inside_window + col(rim) * ring(r_window, window_r - rim_w, rim_w)
    outside = r - col(R)
    bg = col(background)
    fringe = np.where(outside < col(fringe_w), col(fringe_peak), bg + (col(fringe_peak) - bg) * np.exp(-np.maximum(outside - col(fringe_w), 0) / col(decay)))
    esd = rng.uniform(60, 250, k)
    return body * inside_bubble + fringe * (1 - inside_bubble), esd, esd * SIZE / (2 * R), np.where(window_view, "large_window", "large_edge").astype(object), aspect


def render_bubbles(rng: np.random.Generator, n: int, background: np.ndarray, pixel_um: float):
    """Ideal intensity fields (N×64×64) and per-particle metadata of ``n`` air bubbles."""
    large = rng.random(n) < LARGE_SHARE
    fields = np.empty((n, SIZE, SIZE), np.float32)
    esd, side, aspect = np.empty(n), np.empty(n), np.empty(n)
    subtype = np.empty(n, object)
    for mask, render in ((~large, _small), (large, _large)):
        idx = np.flatnonzero(mask)
        if len(idx):
            fields[idx], esd[idx], side_um, subtype[idx], aspect[idx] = render(rng, len(idx), background[idx])
            side[idx] = side_um / pixel_um
    defocus = rng.uniform(0.1, 0.6, n)  # applied with the PSF
    return np.maximum(fields, 2.0), {"esd_um": esd, "native_side": side, "subtype": subtype, "aspect": aspect, "defocus_px": defocus}
