"""Per-particle morphology features of the kind FIM instruments report, from a thresholded
mask (scikit-image): area-equivalent diameter, ESD (mean Feret), aspect ratio,
circularity, mean / min / std intensity, edge gradient, transparency.

The background level of each crop is the median of its border pixels; the particle is
the connected component (of pixels deviating from it by more than ``threshold`` levels)
closest to the crop centre. Lengths are in crop pixels: multiply by µm per pixel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage import measure

FEATURES = (
    "area_px",
    "abd_px",
    "esd_px",
    "aspect_ratio",
    "circularity",
    "mean_intensity",
    "min_intensity",
    "std_intensity",
    "edge_gradient",
    "transparency",
)


def border_level(images: np.ndarray) -> np.ndarray:
    """Median of each crop's border pixels: its background estimate."""
    border = np.concatenate(
        [images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1
    )
    return np.median(border, axis=1)


def particle_masks(images: np.ndarray, threshold: float = 12.0) -> np.ndarray:
    """Boolean N×H×W masks of the central particle in each crop."""
    imgs = images.astype(np.float32)
    bg = border_level(images)[:, None, None]
    smooth = ndimage.uniform_filter(imgs, size=(1, 3, 3))
    raw = np.abs(smooth - bg) > threshold
    masks = np.zeros_like(raw)
    h, w = images.shape[1:]
    yy, xx = np.mgrid[:h, :w]
    centre_dist = np.hypot(yy - h / 2, xx - w / 2)
    for i in range(len(images)):
        lab, n = ndimage.label(raw[i])
        if n == 0:
            continue
        if n == 1:
            masks[i] = lab == 1
            continue
        dists = ndimage.minimum(centre_dist, lab, index=np.arange(1, n + 1))
        masks[i] = ndimage.binary_fill_holes(lab == (1 + int(np.argmin(dists))))
    return masks


def morphology_table(images: np.ndarray, threshold: float = 12.0) -> pd.DataFrame:
    """One row of :data:`FEATURES` per crop (NaN where no particle was found)."""
    images = np.asarray(images)
    masks = particle_masks(images, threshold)
    bg = border_level(images)
    grad = np.hypot(
        ndimage.sobel(images.astype(np.float32), axis=1),
        ndimage.sobel(images.astype(np.float32), axis=2),
    )
    rows = []
    for i in range(len(images)):
        m = masks[i]
        if not m.any():
            rows.append({k: np.nan for k in FEATURES})
            continue
        props = measure.regionprops(m.astype(np.uint8))[0]
        vals = images[i][m].astype(np.float64)
        dark_area = float(np.sum(vals < bg[i] - 2 * threshold))
        major = props.axis_major_length
        esd = (
            float(props.feret_diameter_max + 2 * np.sqrt(props.area / np.pi)) / 2
        )  # mean-Feret proxy
        boundary = m & ~ndimage.binary_erosion(m)
        rows.append(
            {
                "area_px": float(props.area),
                "abd_px": 2 * np.sqrt(dark_area / np.pi),
                "esd_px": esd,
                "aspect_ratio": float(props.axis_minor_length / major) if major > 0 else 1.0,
                "circularity": float(min(1.0, 4 * np.pi * props.area / props.perimeter**2))
                if props.perimeter > 0
                else 1.0,
                "mean_intensity": vals.mean(),
                "min_intensity": vals.min(),
                "std_intensity": vals.std(),
                "edge_gradient": float(grad[i][boundary].mean()),
                "transparency": 1.0 - (2 * np.sqrt(dark_area / np.pi)) / esd if esd > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=list(FEATURES))


def aspect_ratios(images: np.ndarray, threshold: float = 12.0) -> np.ndarray:
    """Minor/major axis ratio of the central particle (1.0 where none is found): the same
    ratio as :func:`morphology_table`'s, from the masks' second moments, vectorised."""
    masks = particle_masks(np.asarray(images), threshold).astype(np.float64)
    h, w = masks.shape[1:]
    yy, xx = np.mgrid[:h, :w]
    area = masks.sum((1, 2))
    safe = np.maximum(area, 1.0)
    cy, cx = (masks * yy).sum((1, 2)) / safe, (masks * xx).sum((1, 2)) / safe
    dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
    syy, sxx, sxy = (
        (masks * dy * dy).sum((1, 2)),
        (masks * dx * dx).sum((1, 2)),
        (masks * dx * dy).sum((1, 2)),
    )
    half_trace, root = (syy + sxx) / 2, np.sqrt(((syy - sxx) / 2) ** 2 + sxy**2)
    major, minor = half_trace + root, np.maximum(half_trace - root, 0.0)
    ratio = np.sqrt(np.divide(minor, major, out=np.ones_like(major), where=major > 0))
    return np.where(area > 0, ratio, 1.0)
