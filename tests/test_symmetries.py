"""Which symmetries of the square a class keeps: the test that decides the quick preset's
augmentation, on simulated and real images, and how training uses its answer."""

import numpy as np
import pytest
import torch

from svpgen.data.augment import (
    SYMMETRIES,
    SYMMETRY_NAMES,
    apply_symmetry,
    dihedral,
    invariant_symmetries,
    random_symmetry,
    subgroups,
)
from svpgen.diffusion.config import DiffusionConfig, LatentConfig, ScheduleConfig
from svpgen.diffusion.latent import LatentDenoiser
from svpgen.errors import SvpgenError

MIRROR = ((0, False), (0, True))  # identity, left-right mirror


def test_the_ten_subgroups_are_closed():
    groups = subgroups()
    assert [len(g) for g in groups] == [8, 4, 4, 4, 2, 2, 2, 2, 2, 1]
    probe = torch.arange(16.0).reshape(4, 4)
    for group in groups:
        actions = [apply_symmetry(probe, e) for e in group]
        for a in group:
            for b in actions:
                assert any(torch.equal(apply_symmetry(b, a), c) for c in actions)


def test_random_symmetry_draws_from_its_group():
    x = torch.randn(64, 1, 8, 8)
    # all eight: the same draws as the paper's dihedral augmentation (old runs reproduce)
    torch.testing.assert_close(
        random_symmetry(x, SYMMETRIES, torch.Generator().manual_seed(1)),
        dihedral(x, torch.Generator().manual_seed(1)),
    )
    out = random_symmetry(x, MIRROR, torch.Generator().manual_seed(1))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()
    assert torch.equal(random_symmetry(x, ((0, False),), torch.Generator()), x)


def test_simulated_bubbles_reject_the_rotations_and_droplets_keep_all_eight():
    """Oblique light puts the small bubbles' dark dome below the crop's centre, 20° off the
    vertical (von Mises spread): every rotation moves it, and the test sees that — the two
    reflections nearest its direction (left-right mirror, anti-transpose) it keeps or
    rejects by the draw; droplets have no preferred direction."""
    from svpgen.simulate.realism import simulated_crops

    group, p = invariant_symmetries(simulated_crops("air_bubble", 400, 1))
    assert len(group) <= 2, p
    assert max(p[k] for k in ("rot90", "rot180", "rot270", "transpose", "mirror-ud")) < 0.001, p
    group, p = invariant_symmetries(simulated_crops("silicone_oil", 400, 1))
    assert set(group) == set(SYMMETRIES), p


def test_real_tiles_bubbles_reject_the_rotations_droplets_do_not(real_fixtures):
    """The paper's real Fig. 5 tiles (70 per class): the bubbles reject every rotation, the
    droplets nothing — and the paper's generated bubbles, from a model trained without
    regard to it, have lost the bubbles' asymmetry."""
    tiles = np.load(real_fixtures / "paper_fig5" / "tiles.npz")
    group, p = invariant_symmetries(tiles["real_air_bubble"])
    assert len(group) <= 2 and all(p[name] < 0.01 for name in ("rot90", "rot180", "rot270")), p
    group, p = invariant_symmetries(tiles["real_silicone_oil"])
    assert set(group) == set(SYMMETRIES), p
    group, p = invariant_symmetries(tiles["generated_air_bubble"])
    assert set(group) == set(SYMMETRIES), p


def test_too_few_images_reject_nothing():
    rng = np.random.default_rng(0)
    images = np.full((5, 64, 64), 170.0)
    images[:, 40:50, 28:36] -= 80  # five images, every one dark below the centre
    images += rng.normal(0, 2, images.shape)
    group, p = invariant_symmetries(images)
    assert (
        set(group) == set(SYMMETRIES) and min(p.values()) >= 0.05
    )  # 5 images: 32 sign patterns, ≥ 2 as extreme
    group, _ = invariant_symmetries(np.repeat(images, 20, 0) + rng.normal(0, 2, (100, 64, 64)))
    assert group != SYMMETRIES and len(group) <= 2  # a hundred of them do


def test_latent_fit_sees_only_the_kept_views():
    g = torch.Generator().manual_seed(0)
    images = 0.1 * torch.randn(40, 1, 64, 64, generator=g)
    images[:, :, 40:50, 28:36] -= 0.6  # a dark patch below the centre, in every image
    cfg = LatentConfig(components=8, width=16, depth=1)
    schedule = ScheduleConfig(objective="edm")
    kept = LatentDenoiser(cfg, schedule)
    kept.fit(images, ((0, False),))
    torch.testing.assert_close(kept.mean, images[:, 0].mean(0).flatten())
    symmetric = LatentDenoiser(cfg, schedule)
    symmetric.fit(images)
    mean = symmetric.mean.reshape(64, 64)
    torch.testing.assert_close(mean, torch.rot90(mean, 1), atol=1e-6, rtol=0)


def test_symmetries_setting_is_checked():
    assert DiffusionConfig().symmetries == "dihedral"  # the paper's augmentation stays the default
    with pytest.raises(SvpgenError, match="unknown symmetries"):
        DiffusionConfig(symmetries="rotations")
    assert set(SYMMETRY_NAMES) == set(SYMMETRIES)
