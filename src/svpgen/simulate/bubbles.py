"""Air bubbles: index 1.0 in water → total internal reflection, a black annulus.

35% large (larger than the crop, partial view of window + annulus or annulus + fringe);
65% small and complete (dark core with its minimum at the centre, bright halo ring).
All ranges are the spec's [F] numbers in 64-px units.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from svpgen.simulate.field import SIZE, blob, col, radius, ring


def _lognormal_clipped(rng, n, median, sigma_ln, lo, hi):
    return np.clip(np.exp(np.log(median) + sigma_ln * rng.standard_normal(n)), lo, hi)


def render_bubbles(rng: np.random.Generator, n: int, background: np.ndarray, pixel_um: float):
    """Ideal intensity fields (N×64×64) and per-particle metadata of ``n`` air bubbles."""
    large = rng.random(n) < 0.35
    fields = np.empty((n, SIZE, SIZE), np.float32)
    esd = np.empty(n)
    side = np.empty(n)
    subtype = np.where(large, "large", "small").astype(object)
    aspect = np.empty(n)

    s = np.flatnonzero(~large)
    if len(s):
        k = len(s)
        d = _lognormal_clipped(rng, k, 15.0, 0.8, 2.0, 150.0)
        ar = rng.uniform(0.92, 1.0, k)
        cx, cy = SIZE / 2 + rng.uniform(-1.5, 1.5, (2, k))
        r = radius(cx, cy, ar, rng.uniform(0, np.pi, k))
        depth, half = rng.uniform(75, 140, k), rng.uniform(9, 12, k)
        halo_r, halo_amp = rng.uniform(17, 21, k), rng.uniform(10, 35, k)
        f = col(background[s]) - col(depth) * blob(r, half) + col(halo_amp) * 1.6 * ring(r, halo_r, 3.0)
        spot = rng.random(k) < 0.10
        f += col(spot * rng.uniform(20, 60, k)) * np.exp(-((r / 1.6) ** 2))
        fields[s] = f
        esd[s], aspect[s] = d, ar
        side[s] = d / pixel_um * SIZE / (2 * (halo_r + 3))  # crop ↔ particle scale
        subtype[s[spot]] = "small_spot"

    g = np.flatnonzero(large)
    if len(g):
        k = len(g)
        R = rng.uniform(35, 150, k)
        ar = rng.uniform(0.8, 1.0, k)
        angle = rng.uniform(0, 2 * np.pi, k)
        rw = rng.uniform(0.2, 0.6, k) * R
        window_view = rng.random(k) < 0.5
        # distance from crop centre to bubble centre: look at the window edge or the outer edge
        dist = np.where(window_view, rw + rng.uniform(-12, 12, k), R + rng.uniform(-18, 12, k))
        cx = SIZE / 2 - dist * np.cos(angle)
        cy = SIZE / 2 - dist * np.sin(angle)
        r = radius(cx, cy, ar, rng.uniform(0, np.pi, k))
        off = rng.uniform(0, 0.15, k) * R
        rwin = radius(cx + off * np.cos(angle), cy + off * np.sin(angle), ar, 0.0)
        level, rim = rng.uniform(60, 130, k), rng.uniform(15, 30, k)
        dark = rng.uniform(8, 20, k)
        fringe_w, fringe_peak, decay = rng.uniform(2, 6, k), rng.uniform(220, 245, k), rng.uniform(5, 10, k)
        inside_window = expit((col(rw) - rwin) / 1.2)
        inside_bubble = expit(col(R) - r)
        body = col(dark) + (col(level) - col(dark)) * inside_window + col(rim) * ring(rwin, rw, 2.0)
        outside = r - col(R)
        fringe = np.where(
            outside < col(fringe_w),
            col(fringe_peak),
            col(background[g]) + (col(fringe_peak) - col(background[g])) * np.exp(-np.maximum(outside - col(fringe_w), 0) / col(decay)),
        )
        fields[g] = body * inside_bubble + fringe * (1 - inside_bubble)
        esd[g] = rng.uniform(60, 250, k)
        aspect[g] = ar
        side[g] = esd[g] / pixel_um * SIZE / (2 * R)
        subtype[g] = np.where(window_view, "large_window", "large_edge")
    return fields, {"esd_um": esd, "native_side": side, "subtype": subtype, "aspect": aspect}
