"""The only augmentation the paper's data allows: the 8 symmetries of the square (90°
rotations + flips). No crops, colour jitter or blur: size and contrast are class cues.

A class need not have all eight: oblique illumination puts a small bubble's dark dome a
little below the crop's centre (the real Fig. 5 tiles' bubbles reject every rotation), so
a generator trained on all eight views draws domes in every direction and a two-sample
test sees it. :func:`invariant_symmetries` keeps the symmetries a class's images do not
reject."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch

# an element is (r, flip): the left-right mirror when flip, then r quarter turns counter-clockwise
Symmetry = tuple[int, bool]
SYMMETRIES: tuple[Symmetry, ...] = tuple((r, f) for f in (False, True) for r in range(4))
SYMMETRY_NAMES = {
    (0, False): "identity",
    (1, False): "rot90",
    (2, False): "rot180",
    (3, False): "rot270",
    (0, True): "mirror-lr",
    (1, True): "transpose",
    (2, True): "mirror-ud",
    (3, True): "anti-transpose",
}
SYMMETRY_ALPHA = 0.01  # a symmetry is dropped when the images reject it at this level


def apply_symmetry(x: torch.Tensor, element: Symmetry) -> torch.Tensor:
    """``element`` applied to the last two (image) dimensions of ``x``."""
    r, flip = element
    return torch.rot90(x.flip(-1) if flip else x, r, dims=(-2, -1))


def dihedral(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random 90° rotation and horizontal flip per image of an N×C×H×W batch."""
    k = torch.randint(0, 4, (len(x),), generator=g)
    flip = torch.randint(0, 2, (len(x),), generator=g).bool()
    out = torch.empty_like(x)
    for rot in range(4):
        for fl in (False, True):
            sel = (k == rot) & (flip == fl)
            if sel.any():  # rotate, then flip = flip, then rotate the other way
                out[sel] = apply_symmetry(x[sel], ((-rot) % 4 if fl else rot, fl))
    return out


def random_symmetry(
    x: torch.Tensor, group: tuple[Symmetry, ...], g: torch.Generator
) -> torch.Tensor:
    """Each image of an N×C×H×W batch under a random element of ``group`` (all eight:
    exactly :func:`dihedral`, the same draws)."""
    if set(group) == set(SYMMETRIES):
        return dihedral(x, g)
    pick = torch.randint(0, len(group), (len(x),), generator=g)
    out = x.clone()
    for i, element in enumerate(group):
        sel = pick == i
        if sel.any() and element != (0, False):
            out[sel] = apply_symmetry(x[sel], element)
    return out


def _compose(a: Symmetry, b: Symmetry) -> Symmetry:
    """The element doing b, then a (found by its action on an asymmetric 3×3 array)."""
    probe = torch.arange(9).reshape(3, 3)
    target = apply_symmetry(apply_symmetry(probe, b), a)
    return next(e for e in SYMMETRIES if torch.equal(apply_symmetry(probe, e), target))


@functools.cache
def subgroups() -> tuple[tuple[Symmetry, ...], ...]:
    """The 10 subgroups of the square's symmetry group, largest first."""
    others = SYMMETRIES[1:]
    found = []
    for size in range(len(others), -1, -1):
        for subset in itertools.combinations(others, size):
            group = ((0, False), *subset)
            if all(_compose(a, b) in group for a in group for b in group):
                found.append(group)
    return tuple(found)


def _orientation_features(images: np.ndarray) -> np.ndarray:
    """Per image, the directions (unit vectors) of its brightness dipole and quadrupole
    inside the central disk (radius 24 px): how it is oriented, not how strongly — large
    particles' big moments would otherwise drown everything else."""
    x = images.astype(np.float64)
    side = x.shape[-1]
    c = np.arange(side) - (side - 1) / 2
    v, u = np.meshgrid(c, c, indexing="ij")  # v: down the rows, u: along them
    r = np.maximum(np.hypot(u, v), 1.0)
    disk = np.hypot(u, v) <= 24 * side / 64
    basis = np.stack([u / r, v / r, (u**2 - v**2) / r**2, 2 * u * v / r**2]) * disk
    x = x - x[:, disk].mean(1)[:, None, None]
    f = np.einsum("nij,kij->nk", x, basis)
    for part in (slice(0, 2), slice(2, 4)):
        f[:, part] /= np.linalg.norm(f[:, part], axis=1, keepdims=True) + 1e-12
    return f


def invariant_symmetries(
    images: np.ndarray, alpha: float = SYMMETRY_ALPHA, draws: int = 9999, seed: int = 0
) -> tuple[tuple[Symmetry, ...], dict[str, float]]:
    """The largest subgroup of the square's symmetries that ``images`` (N×H×W) do not
    reject, and each element's p-value. Test of an element T: if the images' distribution
    is invariant under T, the orientation features of x and of T·x have the same mean;
    Hotelling's statistic of their differences against its sign-flip null (``draws``
    random sign vectors). Elements with p < ``alpha`` are rejected; among the subgroups
    without a rejected element the largest wins, ties to the one whose smallest p-value is
    largest. With few images nothing is rejected: all eight."""
    x = np.asarray(images, dtype=np.float64)
    f = _orientation_features(x)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], (draws, len(x)))
    p = {(0, False): 1.0}
    for element in SYMMETRIES[1:]:
        d = f - _orientation_features(apply_symmetry(torch.from_numpy(x), element).numpy())
        d = d[
            :, (d**2).sum(0) > 1e-12 * max(1.0, float((d**2).sum()))
        ]  # components T leaves unchanged carry nothing
        if d.shape[1] == 0:
            p[element] = 1.0
            continue
        w = np.linalg.pinv(d.T @ d)
        total, null = d.sum(0), signs @ d
        observed = total @ w @ total
        # ties (the observed signs among the draws) must count: compare with a rounding margin
        p[element] = float(
            (1 + np.count_nonzero(np.einsum("bi,ij,bj->b", null, w, null) >= observed * (1 - 1e-9)))
            / (draws + 1)
        )
    kept = [group for group in subgroups() if all(p[e] >= alpha for e in group)]
    best = max(kept, key=lambda group: (len(group), min(p[e] for e in group)))
    return best, {SYMMETRY_NAMES[e]: p[e] for e in SYMMETRIES[1:]}
