"""Shared geometry for the batched renderers: pixel grids, elliptical radii, profiles.

All renderers draw an *ideal* intensity field on the 64×64 output grid (float32, gray
levels, background B included); geometry is in 64-px units, the units every calibration
number is given in. :mod:`svpgen.simulate.engine` then takes each field through the native
optics (PSF, native resolution, noise, quantisation) and the standard preprocessing.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

SIZE = 64
_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5


def radius(
    cx: np.ndarray,
    cy: np.ndarray,
    aspect: np.ndarray | float = 1.0,
    angle: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Area-preserving elliptical radius (N×64×64) around per-particle centres."""
    cx, cy = np.asarray(cx, np.float32)[:, None, None], np.asarray(cy, np.float32)[:, None, None]
    dx = _XX - cx
    dy = _YY - cy
    if np.all(np.asarray(aspect) == 1.0):
        dx *= dx
        dy *= dy
        dx += dy
        return np.sqrt(dx, out=dx)
    n = cx.shape[0]
    aspect = np.broadcast_to(np.asarray(aspect, np.float32), (n,))[:, None, None]
    angle = np.broadcast_to(np.asarray(angle, np.float32), (n,))[:, None, None]
    c, s = np.cos(angle), np.sin(angle)
    u = dx * c
    u += dy * s
    dy *= c
    dy -= dx * s  # v
    u *= u
    u *= aspect
    dy *= dy
    dy /= aspect
    u += dy
    return np.sqrt(u, out=u)


def gaussian_spot(cx: np.ndarray, cy: np.ndarray, width: np.ndarray) -> np.ndarray:
    """exp(−(r/width)²) around per-particle centres (N×64×64), as the outer product of two
    1-D Gaussians: 128 exponentials per particle instead of 4,096."""
    axis = _XX[0]
    cx, cy, width = (np.asarray(v, np.float32)[:, None] for v in (cx, cy, width))
    gx = np.exp(-(((axis - cx) / width) ** 2))
    gy = np.exp(-(((axis - cy) / width) ** 2))
    return gy[:, :, None] * gx[:, None, :]


def col(x) -> np.ndarray:
    """Per-particle values as an (N, 1, 1) float32 column for broadcasting (scalars pass)."""
    a = np.asarray(x, np.float32)
    return a if a.ndim == 0 else a[:, None, None]


def ring(r: np.ndarray, centre, width) -> np.ndarray:
    """Gaussian ring profile exp(-((r-centre)/width)²)."""
    return np.exp(-(((r - col(centre)) / col(width)) ** 2))


def blob(r: np.ndarray, half_radius) -> np.ndarray:
    """A flat-bottomed disc 1/(1+(r/h)^4): 1 at the centre, 1/2 at r = h."""
    return 1.0 / (1.0 + (r / col(half_radius)) ** 4)


def gaussian_matrices(sigmas: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Per-particle 1-D Gaussian blurs as (N, size, size) matrices: ``G @ f`` blurs along
    the first axis the way ``scipy.ndimage.gaussian_filter(mode="nearest", truncate=4)``
    does, with each particle's own sigma. As matrices, a stack of small fields is blurred by
    two batched matrix products instead of one filter call per sigma."""
    sigmas = np.asarray(sigmas, np.float64)
    radii = np.floor(4.0 * sigmas + 0.5)
    reach = int(
        max(size - 1, radii.max(initial=0))
    )  # every column offset a row can reach, and all taps
    offsets = np.arange(-reach, reach + 1)
    safe = np.maximum(sigmas, 1e-6)[:, None]
    kernel = np.exp(-0.5 * (offsets / safe) ** 2) * (np.abs(offsets) <= radii[:, None])
    kernel /= kernel.sum(axis=1, keepdims=True)
    rows = np.arange(size)
    # G[i, j] = kernel(j - i); np.take returns a C-ordered stack (kernel[:, index] would not)
    matrices = np.take(kernel.astype(np.float32), (rows[None, :] - rows[:, None]) + reach, axis=1)
    # "nearest": taps beyond an edge read the edge pixel, so their weight lands on it.
    below = np.cumsum(kernel, axis=1)  # weight of offsets ≤ o
    above = np.cumsum(kernel[:, ::-1], axis=1)[:, ::-1]  # weight of offsets ≥ o
    matrices[:, :, 0] = below[:, reach - rows]  # offsets ≤ -i
    matrices[:, :, -1] = above[:, reach + size - 1 - rows]  # offsets ≥ size-1-i
    return matrices


def blur(fields: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Gaussian blur each (square) field with its own sigma."""
    sigmas = np.asarray(sigmas)
    if len(sigmas) and np.all(sigmas == sigmas[0]):  # one matrix for the whole stack
        g = gaussian_matrices(sigmas[:1], fields.shape[-1])[0]
        return g @ (fields @ g.T)
    g = gaussian_matrices(sigmas, fields.shape[-1])
    return g @ fields @ np.swapaxes(g, 1, 2)


def white_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean, unit-variance float32 white noise from uniform draws (4× cheaper than
    Gaussian draws here). For fields that are filtered or blurred before anyone sees them
    (fractal noise, speckle under the PSF) only the spectrum and variance matter: the
    filtered result is Gaussian by the central limit theorem either way."""
    noise = rng.random(shape, dtype=np.float32)
    noise -= 0.5
    noise *= np.float32(np.sqrt(12.0))
    return noise


def fractal_noise(
    rng: np.random.Generator, n: int, beta: float = 2.5, size: int = SIZE
) -> np.ndarray:
    """Unit-variance 1/f^beta noise fields (N×size×size), made by filtering white noise in
    Fourier space (batched single-precision scipy.fft: ~2× numpy's float64 FFT)."""
    white = white_noise(rng, (n, size, size))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    gain = (f ** (-beta / 2)).astype(np.float32)
    gain[0, 0] = 0.0
    spectrum = scipy.fft.rfft2(white)
    spectrum *= gain
    noise = scipy.fft.irfft2(spectrum, s=(size, size), overwrite_x=True)
    # zero mean by construction (gain[0, 0] = 0), so the standard deviation is the RMS
    noise /= (np.sqrt(np.einsum("nij,nij->n", noise, noise) / (size * size)) + 1e-6)[:, None, None]
    return noise


ZOOM_STEPS = 200  # zoom factors are rounded to 1/200 (a matrix each, cached)


@functools.lru_cache(maxsize=256)
def _zoom_matrix(step: int) -> np.ndarray:
    f = step / ZOOM_STEPS
    edges = SIZE / 2 + (np.arange(SIZE + 1) - SIZE / 2) / f  # output pixel edges, in source px
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(SIZE)[None, :]
    weights = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    return (weights / (hi - lo)).astype(np.float32)  # beyond the source: zero


def zoom_matrices(factors: np.ndarray) -> np.ndarray:
    """Per-particle (N, 64, 64) matrices ``Z`` that shrink a deviation field about the crop
    centre by ``factor`` ≤ 1 (``Z @ d @ Zᵀ``): each output pixel is the area average of the
    source pixels it covers, zero beyond the source (exact area resampling: fine texture
    does not alias)."""
    steps = np.clip(np.rint(np.asarray(factors) * ZOOM_STEPS), 1, ZOOM_STEPS).astype(int)
    return (
        np.stack([_zoom_matrix(int(k)) for k in steps])
        if len(steps)
        else np.zeros((0, SIZE, SIZE), np.float32)
    )


def _edge_taper() -> np.ndarray:
    """1 within 24 px of the crop's centre, falling smoothly to 0 at 32 px: a deviation field
    that reaches the crop's edge is cut softly and round when it shrinks into a tile — a
    square cut (the crop's own edges) drew a faint box around wide halos and troughs."""
    r = np.hypot(_XX - SIZE / 2, _YY - SIZE / 2)
    t = np.clip((SIZE / 2 - r) / 8.0, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


EDGE_TAPER = _edge_taper()
