"""Is the simulator realistic? A check against real particle images, kept with the simulator.

* **Classifier two-sample test**: real vs simulated crops, each described by 16×16
  average-pooled pixels plus the radial profile (mean gray at integer radii about the
  centre); logistic regression and gradient boosting, 5-fold cross-validated ROC AUC, on
  equal numbers of real and simulated images. AUC 0.5 = indistinguishable. Repeated over
  seeds (a fresh simulated draw and fold split each time): mean ± std.
* The same test with both sets randomly oriented (rotations by 90° and flips): the
  real tiles are a curated figure whose large bubbles are mostly cut on one side.
* **Radial profiles** (median and quartiles per radius) and **size distributions**
  (equivalent diameter of the central particle, and the share of crops whose particle
  is larger than the crop) compared real vs simulated.

The only real SvP images available offline are the 70 + 70 tiles of the paper's Fig. 5,
cut from a figure: they carry one extra 64 → ≈41 → 64 px bilinear resampling. Simulated
crops are compared after the same round trip (:func:`figure_round_trip`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from svpgen.stats import RADII, radial_profiles, two_sample_auc

FIGURE_SIDE = 41  # the tiles' size in the paper's figure (≈42.7 px, 1 px trimmed per edge)


def figure_round_trip(images: np.ndarray, side: int = FIGURE_SIDE) -> np.ndarray:
    """64 → ``side`` → 64 px, bilinear both ways (Pillow): what cutting tiles from the
    paper's figure did to the real images."""
    out = np.empty_like(images)
    size = images.shape[1]
    for i, img in enumerate(images):
        small = Image.fromarray(img).resize((side, side), Image.BILINEAR)
        out[i] = np.asarray(small.resize((size, size), Image.BILINEAR))
    return out


def particle_diameter(images: np.ndarray, threshold: float = 12.0) -> np.ndarray:
    """Diameter (px) of each crop's central particle from its radial profile: twice the
    outermost radius whose mean deviates from the crop's border level by more than
    ``threshold``; NaN where none does."""
    border = np.concatenate(
        [images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1
    )
    deviates = np.abs(radial_profiles(images) - np.median(border, axis=1)[:, None]) > threshold
    outer = RADII - 1 - np.argmax(deviates[:, ::-1], axis=1)
    return np.where(deviates.any(1), 2.0 * (outer + 1), np.nan)


@dataclass
class RealismResult:
    """Two-sample AUCs over seeds, and the profile and size comparisons."""

    label: str
    auc: dict[str, list[float]]  # classifier → one AUC per seed
    auc_any_orientation: dict[str, list[float]]  # the same with orientations randomised
    real_profile: np.ndarray  # 3×32: quartiles 25/50/75 per radius
    sim_profile: np.ndarray
    real_diameter: np.ndarray
    sim_diameter: np.ndarray

    def summary(self) -> dict:
        """Mean and std per classifier, the stronger one (the headline), and the medians."""
        out = {f"auc_{k}": float(np.mean(v)) for k, v in self.auc.items()}
        out |= {f"auc_{k}_std": float(np.std(v)) for k, v in self.auc.items()}
        out |= {
            f"auc_any_orientation_{k}": float(np.mean(v))
            for k, v in self.auc_any_orientation.items()
        }
        best = max(self.auc, key=lambda k: np.mean(self.auc[k]))
        out |= {
            "auc": out[f"auc_{best}"],
            "auc_std": out[f"auc_{best}_std"],
            "auc_classifier": best,
            "profile_max_abs_diff": float(np.abs(self.real_profile[1] - self.sim_profile[1]).max()),
            "real_median_diameter_px": float(np.nanmedian(self.real_diameter)),
            "sim_median_diameter_px": float(np.nanmedian(self.sim_diameter)),
        }
        return out


def simulated_crops(label: str, n: int, seed: int, profile: str = "fig5") -> np.ndarray:
    """``n`` simulated crops of one class (ground-truth labels, no label noise). The
    comparison with the paper's Fig. 5 tiles uses the fig5 profile: the tightly framed,
    curated part of the simulator (the flowcam profile draws its tight crops with the same
    renderers, on a wider range of backgrounds, and its small bubbles over the real tiles'
    wider range of depths)."""
    from svpgen.simulate.engine import SimConfig, simulate

    config = SimConfig(workers=1, label_noise=0.0, profile=profile)
    return simulate({label: n}, seed=seed, config=config).particles.images


def realism(
    label: str,
    real: np.ndarray,
    simulate_fn=None,
    seeds=range(5),
    n_sim: int | None = None,
    n_jobs: int | None = None,
) -> RealismResult:
    """Compare ``real`` tiles of one class with simulated ones: ``simulate_fn(n, seed)``
    (default: the simulator) returns uint8 crops; they get the figure round trip before
    any comparison. ``n_jobs``: processes for the two-sample tests' fits."""
    simulate_fn = simulate_fn or (lambda n, seed: simulated_crops(label, n, 1000 + seed))
    n_sim = n_sim or len(real)
    auc: dict[str, list[float]] = {}
    any_orientation: dict[str, list[float]] = {}
    sims = []
    for seed in seeds:
        sim = figure_round_trip(simulate_fn(n_sim, seed))
        sims.append(sim)
        for k, v in two_sample_auc(real, sim, seed, n_jobs=n_jobs).items():
            auc.setdefault(k, []).append(v)
        for k, v in two_sample_auc(real, sim, seed, orientation="random", n_jobs=n_jobs).items():
            any_orientation.setdefault(k, []).append(v)
    pooled = np.concatenate(sims)
    quart = lambda imgs: np.percentile(radial_profiles(imgs), [25, 50, 75], axis=0)  # noqa: E731
    return RealismResult(
        label,
        auc,
        any_orientation,
        quart(real),
        quart(pooled),
        particle_diameter(real),
        particle_diameter(pooled),
    )


def realism_figure(
    results: list[RealismResult], real: dict[str, np.ndarray], path, per_class: int = 20
):
    """Real vs simulated crops side by side (after the round trip) and the radial-profile
    bands (median and quartiles) per class, in one PNG."""
    from svpgen.plots import realism_panel

    sims = {r.label: figure_round_trip(simulated_crops(r.label, per_class, 7)) for r in results}
    return realism_panel(
        {
            r.label: (real[r.label][:per_class], sims[r.label], r.real_profile, r.sim_profile)
            for r in results
        },
        path,
    )
