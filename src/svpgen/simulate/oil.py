"""Silicone oil droplets (n ≈ 1.40 in water, ≈ 1.333): a weak lens, mostly a phase object.

Calibrated against the 70 real droplets of the paper's Fig. 5 (the realism check of
:mod:`svpgen.simulate.realism`; numbers in the README). In a 64×64 crop a droplet's
radius R is 19–24 px (dark-centre droplets 16–21), and the focus sets the look:

* bright centre (50%): a bright core (σ 0.30–0.50 R, often saturating, irregular and
  off-centre) in a broad, shallow dark trough at 0.65–0.90 R that is darker on one side;
  half of them with a faint bright halo outside;
* dark centre (30%): a gray centre, a deep dark ring at 0.45–0.65 R and a bright halo
  just outside the droplet (1.0–1.1 R);
* faint (10%): defocused, a large low-contrast disc;
* other (10%): touching doublets, or droplets smeared by motion or a coat.

The ``flowcam`` profile adds the looks of a real FlowCam run's tiles (see ``MODE_P``): dark
discs in a bright halo (the run's larger droplets), concentric defocus rings, small bright
spots, and ghosts — the Fig. 5 faint droplets' light core in a broad, shallow dark ring.

Fields are deviations from the background B, before the instrument's PSF and sampling.
"""

from __future__ import annotations

import numpy as np

from svpgen.simulate.field import _XX, _YY, SIZE, col, fractal_noise, radius, ring

MODES = ("bright", "dark", "faint", "other", "halo", "rings", "spot", "ghost")
# the looks' shares per calibration profile: the paper's Fig. 5 tiles (bright 50 / dark 30 /
# faint 10 / other 10), and with a real FlowCam run's droplets as well — of its 32 droplets
# clear or probable by eye, 13 bright centres (most of them small spots in a shallow ring),
# 6 dark discs in a bright halo, 5 rings, 8 large soft dark discs (faint); the Fig. 5 faint
# droplets are ghosts (a faint light core in a broad shallow dark ring), drawn apart; dark
# centres at 14%, not the run's 8%: with 8% the Fig. 5 droplets fell to 0.84 recall
# (docs/experiments.md)
MODE_P = {
    "fig5": (0.50, 0.30, 0.10, 0.10, 0.0, 0.0, 0.0, 0.0),
    "flowcam": (0.20, 0.14, 0.10, 0.08, 0.20, 0.12, 0.10, 0.06),
}
DROPLET_SIZE = {"fig5": (4.0, 0.6), "flowcam": (5.5, 0.7)}  # ESD median µm, σ_ln
# the dark discs in a bright halo are the larger droplets of a run: the FlowCam run's ones
# measure 8–26 native px across as segmented (4–14 µm; a half-depth radius of 4–8 px in the
# 64-px tile, where the drawn sizes of all droplets gave 3–7)
HALO_SIZE = (10.0, 0.5)
OTHER_KINDS = ("doublet", "smeared")
OTHER_P = (0.4, 0.6)


def _uniform(rng, lo, hi, k):
    return rng.uniform(lo, hi, k).astype(np.float32)


def _one_sided(rng, k, cx, cy, strength: float) -> np.ndarray:
    """1 + s·cos(θ − θ₀): the ring is darker on one side (tilted illumination).
    cos(θ − θ₀) = (dx·cos θ₀ + dy·sin θ₀) / r, without an arctan per pixel."""
    dx, dy = _XX - col(cx), _YY - col(cy)
    theta0 = rng.uniform(0, 2 * np.pi, k)
    cos_diff = (dx * col(np.cos(theta0)) + dy * col(np.sin(theta0))) / (
        np.sqrt(dx * dx + dy * dy) + 1e-6
    )
    return 1.0 + col(rng.uniform(0, strength, k)) * cos_diff


def _bright(rng, r, rs, R, cx, cy):
    k = len(R)
    sigma = col(R * _uniform(rng, 0.30, 0.50, k))
    core = col(_uniform(rng, 110, 180, k)) * np.exp(
        -((rs / sigma) ** col(_uniform(rng, 1.6, 2.6, k)))
    )
    core *= 1 + 0.45 * fractal_noise(
        rng, k, beta=3.0
    )  # an irregular bright region, not a clean Gaussian
    trough = -col(_uniform(rng, 15, 110, k)) * ring(
        r, R * _uniform(rng, 0.65, 0.90, k), R * _uniform(rng, 0.30, 0.48, k)
    )
    halo = col(_uniform(rng, 5, 35, k) * (rng.random(k) < 0.5)) * ring(
        r, R * _uniform(rng, 1.1, 1.3, k), R * 0.12
    )
    return core + trough * _one_sided(rng, k, cx, cy, 0.6) + halo


def _dark(rng, r, rs, R, cx, cy):
    k = len(R)
    centre = -col(_uniform(rng, 20, 90, k)) * np.exp(-((rs / col(R * 0.4)) ** 2))
    dark_ring = -col(_uniform(rng, 80, 170, k)) * ring(
        r, R * _uniform(rng, 0.45, 0.65, k), R * _uniform(rng, 0.17, 0.25, k)
    )
    halo = col(_uniform(rng, 30, 80, k)) * ring(
        r, R * _uniform(rng, 1.0, 1.1, k), R * _uniform(rng, 0.12, 0.18, k)
    )
    texture = 8 * fractal_noise(rng, k, beta=2.0) * np.exp(-((r / col(0.7 * R)) ** 2))
    return centre + dark_ring * _one_sided(rng, k, cx, cy, 0.35) + halo + texture


def _faint(rng, r, rs, R, cx, cy):
    k = len(R)
    sign = col(np.where(rng.random(k) < 0.6, -1.0, 1.0))
    return sign * col(_uniform(rng, 25, 45, k)) * np.exp(-((r / col(R * 0.8)) ** 2))


def _ghost(rng, r, rs, R, cx, cy):
    """A large droplet well out of focus, as the paper's faint Fig. 5 droplets: an
    off-centre core (−15 to +10) in a broad, shallow, mottled dark ring (−12 to −28 at
    0.6–0.85 R), filling most of the crop. The core is lighter than the ring by 14 levels
    in the median tile (the five real ones: 0–29, median 10), some cores as dark as it."""
    k = len(R)
    core = col(_uniform(rng, -15, 10, k)) * np.exp(
        -((rs / col(R * _uniform(rng, 0.3, 0.45, k))) ** 2)
    )
    trough = -col(_uniform(rng, 12, 28, k)) * ring(
        r, R * _uniform(rng, 0.6, 0.85, k), R * _uniform(rng, 0.3, 0.45, k)
    )
    mottle = 4 * fractal_noise(rng, k, beta=2.5) * np.exp(-((r / col(R)) ** 2))
    return core + trough * _one_sided(rng, k, cx, cy, 0.4) + mottle


def _halo(rng, r, rs, R, cx, cy):
    """Focused the other way: a dark disc, darkest at its centre, in a bright halo (the
    FlowCam run's ones: 34–82 levels below the background, the halo 13–33 above it; the
    faint ones small)."""
    k = len(R)
    disc = -col(_uniform(rng, 30, 110, k)) * np.exp(
        -((r / col(R * _uniform(rng, 0.55, 0.8, k))) ** col(_uniform(rng, 2.0, 3.0, k)))
    )
    halo = col(_uniform(rng, 5, 40, k)) * ring(
        r, R * _uniform(rng, 1.05, 1.4, k), R * _uniform(rng, 0.3, 0.55, k)
    )  # broad: the FlowCam run's halos fade over about the disc's radius
    return disc * _one_sided(rng, k, cx, cy, 0.25) + halo


def _rings(rng, r, rs, R, cx, cy):
    """Far from focus: concentric defocus fringes — a bright ring about a slightly dark
    centre, a dark ring outside it, fading outwards."""
    k = len(R)
    period = col(R * _uniform(rng, 0.7, 0.9, k))
    fade = np.exp(-((r / col(R * _uniform(rng, 1.1, 1.4, k))) ** 2))
    centre = np.exp(-((r / col(R * 0.15)) ** 2))
    return col(_uniform(rng, 15, 40, k)) * (np.sin(np.pi * r / period) - 0.4 * centre) * fade


def _spot(rng, r, rs, R, cx, cy):
    """A small droplet near focus in a run's tile: a bright centre in a shallow dark ring.
    Drawn so that the final tiles match the FlowCam run's ten small bright-centre droplets
    (their peak 47–106 levels above the background, median 75; the ring 15–30 below; ESD
    10–17 px): the PSF and the tile's upscaling spread a small core, so it is drawn
    brighter and broader than it ends up."""
    k = len(R)
    core = col(_uniform(rng, 80, 200, k)) * np.exp(
        -((rs / col(R * _uniform(rng, 0.4, 0.6, k))) ** 2)
    )
    trough = -col(_uniform(rng, 20, 50, k)) * ring(r, R * _uniform(rng, 0.7, 0.9, k), R * 0.3)
    return core + trough


LOOKS = {
    "bright": _bright,
    "dark": _dark,
    "faint": _faint,
    "halo": _halo,
    "rings": _rings,
    "spot": _spot,
    "ghost": _ghost,
}


def droplet_deviation(
    rng,
    look: np.ndarray,
    r: np.ndarray,
    rs: np.ndarray,
    R: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
) -> np.ndarray:
    """Deviation from background (N×64×64) of droplets with the given looks; ``r`` is the
    radius map about each droplet's centre, ``rs`` about its (offset) bright spot."""
    dev = np.zeros(r.shape, np.float32)
    for name, fn in LOOKS.items():
        idx = np.flatnonzero(look == name)
        if len(idx):
            dev[idx] = fn(rng, r[idx], rs[idx], R[idx], cx[idx], cy[idx])
    return dev


def render_oil(
    rng: np.random.Generator,
    n: int,
    background: np.ndarray,
    pixel_um: float,
    profile: str = "flowcam",
):
    """Ideal intensity fields (N×64×64) and per-particle metadata of ``n`` oil droplets."""
    mode = rng.choice(np.array(MODES, dtype=object), size=n, p=MODE_P[profile])
    # ESD lognormal: median 4 µm, σ_ln 0.6 (the spec); a real FlowCam run's droplets are larger
    median, spread = DROPLET_SIZE[profile]
    d = np.clip(np.exp(np.log(median) + spread * rng.standard_normal(n)), 1.5, 40.0)
    out_of_focus = np.isin(mode, ("faint", "ghost"))  # large, low-contrast, blurred further
    R = np.select(
        [out_of_focus, mode == "dark"],
        [_uniform(rng, 22, 30, n), _uniform(rng, 16, 21, n)],
        _uniform(rng, 19, 24, n),
    )
    rings = np.flatnonzero(mode == "rings")
    if len(rings):  # (drawn only when there are any: the fig5 profile draws as before)
        R[rings] = _uniform(rng, 20, 26, len(rings))
    halo = np.flatnonzero(mode == "halo")
    if len(halo):  # drawn small, so that the halo fits in the field (the tile sets the size)
        R[halo] = _uniform(rng, 13, 17, len(halo))
        d[halo] = np.exp(np.log(HALO_SIZE[0]) + HALO_SIZE[1] * rng.standard_normal(len(halo)))
    cx, cy = SIZE / 2 + rng.normal(0, 1.2, (2, n))
    aspect = rng.uniform(0.88, 1.0, n)
    r = radius(cx, cy, aspect, rng.uniform(0, np.pi, n))
    offset, offset_angle = rng.uniform(0, 0.3, n) * R, rng.uniform(0, 2 * np.pi, n)
    rs = radius(
        cx + offset * np.cos(offset_angle),
        cy + offset * np.sin(offset_angle),
        rng.uniform(0.4, 1.0, n),
        rng.uniform(0, np.pi, n),
    )
    other = mode == "other"
    kind = np.where(other, rng.choice(np.array(OTHER_KINDS, dtype=object), size=n, p=OTHER_P), "")
    look = np.where(
        other, rng.choice(np.array(["bright", "dark"], dtype=object), size=n, p=(0.6, 0.4)), mode
    )
    single = kind != "doublet"
    dev = np.zeros((n, SIZE, SIZE), np.float32)
    dev[single] = droplet_deviation(
        rng, look[single], r[single], rs[single], R[single], cx[single], cy[single]
    )
    doublet = np.flatnonzero(~single)
    if len(doublet):  # two touching droplets, the stronger field wins where they overlap
        small_r = _uniform(rng, 11, 15, len(doublet))
        a = rng.uniform(0, np.pi, len(doublet))
        for sign in (-1, 1):
            px, py = (
                cx[doublet] + sign * small_r * np.cos(a),
                cy[doublet] + sign * small_r * np.sin(a),
            )
            rr = radius(px, py)
            part = droplet_deviation(rng, look[doublet], rr, rr, small_r, px, py)
            dev[doublet] = np.where(np.abs(part) > np.abs(dev[doublet]), part, dev[doublet])
    smeared = np.flatnonzero(kind == "smeared")
    if len(smeared):
        dev[smeared] += (
            col(_uniform(rng, 15, 40, len(smeared)))
            * fractal_noise(rng, len(smeared), beta=2.5)
            * np.exp(-((r[smeared] / col(R[smeared])) ** 2))
        )
    defocus = rng.uniform(0.1, 0.8, n) * np.where(out_of_focus, 3.0, 1.0)  # applied with the PSF
    fields = np.maximum(col(background) + dev, 2.0)  # intensity stays physical
    native_side = d / pixel_um * SIZE / (2 * R)
    subtype = np.where(other, "other_" + kind.astype(str), mode.astype(str)).astype(object)
    return fields.astype(np.float32), {
        "esd_um": d,
        "native_side": native_side,
        "subtype": subtype,
        "aspect": aspect,
        "defocus_px": defocus,
        # far-from-focus looks exist only in a run's tiles, not in a curated tight crop
        "tile_only": np.isin(mode, ("halo", "rings", "spot")),
    }
