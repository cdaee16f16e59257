"""Air bubbles: index 1.0 in water → total internal reflection, a black annulus.

Calibrated against the 70 real bubbles of the paper's Fig. 5 (the realism check of
:mod:`svpgen.simulate.realism`; numbers in the README). In a 64×64 crop:

* small, complete (67%): a dark dome (half-depth radius 8.5–11.5 px, depth 60–150 — the
  fig5 profile's 100–150 —, steep edge, a slightly irregular outline) a little below the
  crop's centre (oblique light), and a bright halo around it (+30–44 at ≈ 2× the half
  radius); 10% of them with a light spot at the centre;
* large (33%), bigger than the crop: a gray window (62–82) with a lighter rim (+50–75,
  2.5–4.5 px wide, just inside its edge) inside a black annulus (10–16, 20–35 px wide) and
  an outer edge that rises softly out of the black into a narrow bright fringe
  (235–255 before the optics) and the background. The crop shows the window (30%), the
  window, annulus and outer edge together (32%), or the outer edge of a bigger bubble, cut
  by the camera frame so that its body lies along a crop axis (38%).

Fields include the background B, before the instrument's PSF and sampling.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import expit

from svpgen.simulate.field import SIZE, col, fractal_noise, radius, ring

# The illumination is slightly oblique: in the real tiles a small bubble's dark dome sits
# below its crop's centre (the mean dipole of r = 6–14 px points up, 4.5 standard errors
# from zero). Image coordinates: 0 = +x, π/2 = down.
SHADOW_DIRECTION = np.radians(110.0)
LARGE_SHARE = 0.33  # 24 of the 70 real tiles
# what the crop of a large bubble shows (real: 7 window, 8 window + annulus + outer edge, 9 edge)
LARGE_VIEWS = ("window", "annulus", "edge")
LARGE_VIEW_P = (0.30, 0.32, 0.38)
# a small bubble's dome depth: a + b·c^γ + N(0, σ) for its contrast c ~ U(0, 1). The fig5
# profile keeps the first calibration (102–147: the real tiles' median, 5th percentile 90);
# the real small bubbles' depths run 61–141 (quartiles 97 / 114 / 127, shallow ones a
# quarter of them), which the flowcam profile draws
DOME_DEPTH = {"fig5": (102.0, 45.0, 1.0, 10.0), "flowcam": (62.0, 80.0, 0.5, 8.0)}
# the share of small bubbles drawn with a wider dome (half-depth radius 12–17 px): 7 of the
# 45 real small bubbles (16%) measure 12–16 px, the flowcam profile's 15%, the first
# calibration's 2%
WIDE_DOME = {"fig5": 0.0, "flowcam": 0.16}


def _small(rng: np.random.Generator, k: int, background: np.ndarray, profile: str):
    # the dark dome sits off the crop's centre, mostly towards the shadow side
    shift, towards = rng.uniform(0.3, 2.3, k), rng.vonmises(SHADOW_DIRECTION, 1.5, k)
    cx, cy = (
        SIZE / 2 + shift * np.cos(towards) + rng.normal(0, 0.8, k),
        SIZE / 2 + shift * np.sin(towards) + rng.normal(0, 0.8, k),
    )
    aspect = rng.uniform(0.85, 1.0, k)
    r = radius(cx, cy, aspect, rng.uniform(0, np.pi, k))
    # one "contrast" per bubble (focus and size): a darker core comes with a brighter halo
    contrast = rng.random(k)
    half = 8.5 + 3.0 * (0.5 * contrast + 0.5 * rng.random(k))
    wide = np.zeros(k, bool)
    if WIDE_DOME[profile]:  # (no draw where there are none: the fig5 profile's bytes as before)
        wide = rng.random(k) < WIDE_DOME[profile]
        half = np.where(wide, rng.uniform(12.0, 17.0, k), half)
    noise = fractal_noise(rng, k, beta=2.5)
    outline = r * (1 + 0.06 * noise)  # a slightly irregular outline …
    dome = 1.0 / (1.0 + (outline / col(half)) ** col(rng.uniform(3.5, 6.0, k)))
    a, b, gamma, sd = DOME_DEPTH[profile]
    depth = a + b * contrast**gamma + rng.normal(0, sd, k)
    dev = -col(depth) * dome + 6 * noise * dome  # … and a mottled core
    halo = 30 + 14 * contrast + rng.normal(0, 4, k)
    halo_at = half * rng.uniform(1.85, 2.2, k)
    if wide.any():  # a wide dome's halo hugs it: the real ones' lies at 1.5–1.9× its half radius
        halo_at = np.where(wide, half * rng.uniform(1.5, 1.85, k), halo_at)
    dev += col(halo) * ring(r, halo_at, 3.0 + 0.8 * contrast)
    spot = rng.random(k) < 0.10
    dev += col(spot * rng.uniform(20, 60, k)) * np.exp(-((r / 2.0) ** 2))
    esd = np.clip(np.exp(np.log(15.0) + 0.8 * rng.standard_normal(k)), 2.0, 150.0)
    scale = SIZE / (2 * 2.2 * half)  # crop px per µm-equivalent of the particle
    return (
        col(background) + dev,
        esd,
        esd * scale,
        np.where(spot, "small_spot", "small").astype(object),
        aspect,
    )


def _large(rng: np.random.Generator, k: int, background: np.ndarray):
    view = rng.choice(np.array(LARGE_VIEWS, dtype=object), size=k, p=LARGE_VIEW_P)
    edge_view = view == "edge"
    # Edge views show a nearly straight outer edge (a big bubble); the crops that show the
    # window, or the window, the annulus and the outer edge together, come from bubbles of
    # a few crop widths, whose window is most of the bubble.
    R = np.where(edge_view, rng.uniform(80, 200, k), rng.uniform(60, 120, k))
    aspect = rng.uniform(0.8, 1.0, k)
    window_r = np.where(
        edge_view, rng.uniform(0.3, 0.65, k) * R, R - rng.uniform(20, 35, k)
    )  # annulus: 20–35 px of black
    # A bubble bigger than the crop is cut by the camera frame, whose edges are the crop's
    # axes: in the real edge views the body lies along an axis (±20°); the other views come
    # in any direction.
    axis_aligned = rng.integers(0, 4, k) * (np.pi / 2) + rng.normal(0, np.radians(20), k)
    angle = np.where(edge_view, axis_aligned, rng.uniform(0, 2 * np.pi, k))
    # distance from the crop centre to the bubble centre
    dist = np.select(
        [view == "window", view == "annulus"],
        [window_r + rng.uniform(-14, 6, k), (window_r + R) / 2 + rng.uniform(-5, 5, k)],
        R + rng.uniform(-16, 0, k),
    )
    cx, cy = SIZE / 2 - dist * np.cos(angle), SIZE / 2 - dist * np.sin(angle)
    tilt = rng.uniform(0, np.pi, k)
    r = radius(cx, cy, aspect, tilt)
    off = rng.uniform(0, 0.1, k) * R
    r_window = radius(cx + off * np.cos(angle), cy + off * np.sin(angle), aspect, tilt)
    level, rim, dark = rng.uniform(62, 82, k), rng.uniform(50, 75, k), rng.uniform(10, 16, k)
    rim_w = rng.uniform(2.5, 4.5, k)  # the rim lies just inside the window's edge
    # the outer edge: a soft rise out of the black (real: ≈ 10 px from 25 to 180), a narrow
    # bright fringe (peak 220–230 in the real tiles) just outside it, and the background
    # within a few pixels
    softness, fringe_peak, decay = (
        rng.uniform(1.2, 2.2, k),
        rng.uniform(235, 255, k),
        rng.uniform(2.5, 5.0, k),
    )
    fringe_w = rng.uniform(2.0, 4.0, k)
    inside_window = expit((col(window_r) - r_window) / 1.2)
    inside_bubble = expit((col(R) - r) / col(softness))
    body = (
        col(dark)
        + (col(level) - col(dark)) * inside_window
        + col(rim) * ring(r_window, window_r - rim_w, rim_w)
    )
    beyond_fringe = np.maximum(r - col(R + 2 * softness + fringe_w), 0)
    bg = col(background)
    fringe = bg + (col(fringe_peak) - bg) * np.exp(-beyond_fringe / col(decay))
    esd = rng.uniform(60, 250, k)
    return (
        body * inside_bubble + fringe * (1 - inside_bubble),
        esd,
        esd * SIZE / (2 * R),
        ("large_" + view.astype(str)).astype(object),
        aspect,
    )


def render_bubbles(
    rng: np.random.Generator,
    n: int,
    background: np.ndarray,
    pixel_um: float,
    profile: str = "flowcam",
):
    """Ideal intensity fields (N×64×64) and per-particle metadata of ``n`` air bubbles."""
    large = rng.random(n) < LARGE_SHARE
    fields = np.empty((n, SIZE, SIZE), np.float32)
    esd, side, aspect = np.empty(n), np.empty(n), np.empty(n)
    subtype = np.empty(n, object)
    small = functools.partial(_small, profile=profile)  # the only profile-dependent view
    for mask, render in ((~large, small), (large, _large)):
        idx = np.flatnonzero(mask)
        if len(idx):
            fields[idx], esd[idx], side_um, subtype[idx], aspect[idx] = render(
                rng, len(idx), background[idx]
            )
            side[idx] = side_um / pixel_um
    defocus = rng.uniform(0.1, 0.6, n)  # applied with the PSF
    return np.maximum(fields, 2.0), {
        "esd_um": esd,
        "native_side": side,
        "subtype": subtype,
        "aspect": aspect,
        "defocus_px": defocus,
        "framed": large,  # a large bubble's crop is its cut by the camera frame: no tile margin
    }
