"""Optional classes: glass lamellae (thin flakes, straight edges, very low contrast) and
fibres (long dark strands crossing the crop)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from svpgen.simulate.field import _XX, _YY, SIZE, blur, col


def render_glass(
    rng: np.random.Generator,
    n: int,
    background: np.ndarray,
    pixel_um: float,
    profile: str = "flowcam",
):
    """Ideal intensity fields and metadata of ``n`` glass lamellae."""
    d = rng.uniform(10, 100, n)
    aspect = rng.uniform(0.2, 0.7, n)
    angle = rng.uniform(0, np.pi, n)
    half_len = SIZE * rng.uniform(0.3, 0.45, n)
    # a rotated rectangle with one random straight cut: a flake with straight edges
    c, s = col(np.cos(angle)), col(np.sin(angle))
    u, v = (_XX - SIZE / 2) * c + (_YY - SIZE / 2) * s, -(_XX - SIZE / 2) * s + (_YY - SIZE / 2) * c
    cut = col(rng.uniform(-1, 1, n)) * u + col(rng.uniform(-1, 1, n)) * v < col(half_len * 0.6)
    mask = (np.abs(u) < col(half_len)) & (np.abs(v) < col(half_len * aspect)) & cut
    m = mask.astype(np.float32)
    edges = m - blur(m, np.full(n, 1.0))
    dev = (
        col(rng.uniform(10, 20, n)) * edges * col(np.where(rng.random(n) < 0.5, 1, -1))
        - col(rng.uniform(0, 4, n)) * m
    )
    side = d / pixel_um * SIZE / (2 * half_len)
    return (col(background) + dev).astype(np.float32), {
        "esd_um": d,
        "native_side": side,
        "subtype": np.full(n, "flake", object),
        "aspect": aspect,
    }


def render_fiber(
    rng: np.random.Generator,
    n: int,
    background: np.ndarray,
    pixel_um: float,
    profile: str = "flowcam",
):
    """Ideal intensity fields and metadata of ``n`` fibres."""
    width_um, length_um = rng.uniform(5, 20, n), rng.uniform(50, 500, n)
    side = np.minimum(length_um, 150) / pixel_um * rng.uniform(0.8, 1.2, n)
    width_px = width_um / pixel_um * SIZE / side
    angle = rng.uniform(0, np.pi, n)
    offset = rng.uniform(-8, 8, n)
    dist = np.abs(
        -(_XX - SIZE / 2) * col(np.sin(angle)) + (_YY - SIZE / 2) * col(np.cos(angle)) - col(offset)
    )
    core = expit((col(width_px / 2) - dist) / 0.8)
    dev = -col(rng.uniform(40, 80, n)) * core
    esd = np.sqrt(4 * width_um * length_um / np.pi)
    return (col(background) + dev).astype(np.float32), {
        "esd_um": esd,
        "native_side": side,
        "subtype": np.full(n, "fibre", object),
        "aspect": width_um / length_um,
    }
