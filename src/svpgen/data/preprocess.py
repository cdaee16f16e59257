"""The paper's preprocessing: shorter edge → 64 px keeping the aspect ratio, then a
centre crop to 64×64 (option: fit the longer edge and pad with the median border value).

Absolute gray levels are kept: no per-image standardisation, since contrast is a class
cue. Resampling is Pillow's antialiased bilinear filter (what torchvision's ``Resize``
applies to PIL images), on the 8-bit image.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

IMAGE_SIZE = 64
FitMode = Literal["crop", "pad"]


def preprocess(gray8: np.ndarray, size: int = IMAGE_SIZE, fit: FitMode = "crop") -> np.ndarray:
    """Resize and crop (or pad) a uint8 gray image to ``size``×``size`` uint8."""
    if gray8.dtype != np.uint8 or gray8.ndim != 2:
        raise ValueError(f"preprocess expects a 2-D uint8 array, got {gray8.dtype} {gray8.shape}")
    h, w = gray8.shape
    if fit == "crop":
        scale = size / min(h, w)
        new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    elif fit == "pad":
        scale = size / max(h, w)
        new_h, new_w = max(1, min(size, round(h * scale))), max(1, min(size, round(w * scale)))
    else:
        raise ValueError(f"unknown fit mode {fit!r} (use 'crop' or 'pad')")
    if (new_h, new_w) == (h, w):
        resized = gray8
    else:
        resized = np.asarray(Image.fromarray(gray8).resize((new_w, new_h), Image.BILINEAR))
    if fit == "crop":
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return np.ascontiguousarray(resized[top : top + size, left : left + size])
    border = np.concatenate([gray8[0], gray8[-1], gray8[:, 0], gray8[:, -1]])
    out = np.full((size, size), np.uint8(np.median(border)), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out
