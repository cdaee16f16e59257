"""The only augmentation the paper's data allows: the 8 symmetries of the square (90°
rotations + flips). No crops, colour jitter or blur: size and contrast are class cues."""

from __future__ import annotations

import torch


def dihedral(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random 90° rotation and horizontal flip per image of an N×C×H×W batch."""
    k = torch.randint(0, 4, (len(x),), generator=g)
    flip = torch.randint(0, 2, (len(x),), generator=g).bool()
    out = torch.empty_like(x)
    for rot in range(4):
        for fl in (False, True):
            sel = (k == rot) & (flip == fl)
            if sel.any():
                y = torch.rot90(x[sel], rot, dims=(2, 3))
                out[sel] = torch.flip(y, dims=(3,)) if fl else y
    return out
