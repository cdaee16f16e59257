"""Is a generated particle good enough? FID/KID with bootstrap intervals, precision and
recall for generative models, a memorization audit, and the morphology comparison.

FID and KID are torchmetrics' implementations (float64) fed with features that our
extractors computed once (:class:`_Precomputed` passes them through), so bootstrap
resampling costs only the metric math. With ~100–1,000 images FID is biased and noisy:
compare two FIDs only at the same image counts and look at the intervals.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance


class _Precomputed(nn.Module):
    """Identity 'feature extractor': torchmetrics receives features we computed already."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fid(real: np.ndarray, gen: np.ndarray) -> float:
    """Fréchet distance between two feature sets (torchmetrics, float64)."""
    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]), reset_real_features=True)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(gen), real=False)
    return float(metric.compute())


def kid(real: np.ndarray, gen: np.ndarray, subsets: int = 50, seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance (mean, std over ``subsets`` random subsets) between two
    feature sets. The subsets are drawn from a private RNG: training's global RNG is untouched."""
    size = min(len(real), len(gen), 1000)
    metric = KernelInceptionDistance(
        feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size
    )
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(gen), real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws subsets from the global RNG
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def fid_kid(real: np.ndarray, gen: np.ndarray, bootstrap: int = 30, seed: int = 0) -> dict:
    """FID and KID with percentile bootstrap 95% intervals (resampling both sets)."""
    rng = np.random.default_rng(seed)
    point_fid = fid(real, gen)
    kid_mean, kid_std = kid(real, gen, seed=seed)
    boots = []
    for _ in range(bootstrap):
        r = real[rng.integers(0, len(real), len(real))]
        g = gen[rng.integers(0, len(gen), len(gen))]
        boots.append(fid(r, g))
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan)
    return {
        "fid": point_fid,
        "fid_ci95": [float(lo), float(hi)],
        "kid": kid_mean,
        "kid_std": kid_std,
        "n_real": int(len(real)),
        "n_generated": int(len(gen)),
        "bootstrap": bootstrap,
    }


def _kth_nn_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0


def _inside(d: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Per query row of the query × reference distances ``d``: within some reference point's
    radius."""
    return (d <= radius[None, :]).any(dim=1)


def inside_manifold(reference: np.ndarray, query: np.ndarray, k: int = 3) -> np.ndarray:
    """Whether each query row lies inside the reference rows' k-NN manifold (within some
    reference point's distance to its k-th nearest reference neighbour)."""
    ref, q = torch.from_numpy(reference).double(), torch.from_numpy(query).double()
    return _inside(torch.cdist(q, ref), _kth_nn_radius(ref, k)).numpy()


def precision_recall(real: np.ndarray, gen: np.ndarray, k: int = 3) -> dict:
    """Kynkäänniemi et al. 2019: precision = share of generated samples inside the real
    k-NN manifold; recall = share of real samples inside the generated manifold.
    (Hand-written: torchmetrics has no generative precision/recall.)"""
    r, g = torch.from_numpy(real).double(), torch.from_numpy(gen).double()
    d = torch.cdist(g, r)  # generated × real, for both directions
    precision = _inside(d, _kth_nn_radius(r, k)).double().mean()
    recall = _inside(d.T, _kth_nn_radius(g, k)).double().mean()
    return {
        "precision": float(precision),
        "recall": float(recall),
        "k": k,
        "n_real": len(real),
        "n_generated": len(gen),
    }


def nearest(
    query: np.ndarray, reference: np.ndarray, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Index of and Euclidean distance to each query's nearest reference row."""
    q, ref = torch.from_numpy(query).double(), torch.from_numpy(reference).double()
    d = torch.cdist(q, ref)
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    dist, idx = d.min(dim=1)
    return idx.numpy(), dist.numpy()


def memorization(
    gen_images: np.ndarray,
    train_images: np.ndarray,
    gen_feats: np.ndarray | None = None,
    train_feats: np.ndarray | None = None,
    copy_ratio: float = 1 / 3,
) -> dict:
    """For each generated image, its nearest training image (pixels, and features when
    given) and the ratio of that distance to the typical train-to-train nearest distance.
    A ratio below ``copy_ratio`` flags a near-copy."""
    gp = gen_images.reshape(len(gen_images), -1).astype(np.float64)
    tp = train_images.reshape(len(train_images), -1).astype(np.float64)
    idx, dist = nearest(gp, tp)
    _, train_nn = nearest(tp, tp, exclude_self=True)
    typical = float(np.median(train_nn))
    ratio = dist / typical
    out = {
        "pixel_nearest": idx,
        "pixel_distance": dist,
        "pixel_ratio": ratio,
        "typical_train_nn": typical,
        "near_copy": ratio < copy_ratio,
        "near_copy_fraction": float(np.mean(ratio < copy_ratio)),
        "copy_ratio": copy_ratio,
    }
    if gen_feats is not None and train_feats is not None:
        fidx, fdist = nearest(gen_feats, train_feats)
        _, ftrain = nearest(train_feats, train_feats, exclude_self=True)
        fratio = fdist / float(np.median(ftrain))
        out.update(
            feature_nearest=fidx,
            feature_ratio=fratio,
            feature_near_copy_fraction=float(np.mean(fratio < copy_ratio)),
        )
    return out


def morphology_comparison(real_images: np.ndarray, gen_images: np.ndarray):
    """Per-feature KS statistic between real and generated morphology distributions."""
    import pandas as pd
    from scipy.stats import ks_2samp

    from svpgen.data.morphology import FEATURES, morphology_table

    real, gen = morphology_table(real_images), morphology_table(gen_images)
    rows = []
    for f in FEATURES:
        a, b = real[f].dropna().to_numpy(), gen[f].dropna().to_numpy()
        if len(a) < 2 or len(b) < 2:
            continue
        ks = ks_2samp(a, b)
        rows.append(
            {
                "feature": f,
                "ks": float(ks.statistic),
                "p_value": float(ks.pvalue),
                "real_median": float(np.median(a)),
                "generated_median": float(np.median(b)),
            }
        )
    return pd.DataFrame(rows), real, gen


def filter_generated(
    gen_images: np.ndarray,
    train_images: np.ndarray | None,
    reference_images: np.ndarray,
    copy_ratio: float = 1 / 3,
    quantiles: tuple[float, float] = (0.005, 0.995),
) -> np.ndarray:
    """Keep mask for generated images: drop near-copies of training images (when they are
    known) and images whose morphology (area, aspect ratio, mean/min intensity) falls
    outside the reference images' [0.5%, 99.5%] range."""
    from svpgen.data.morphology import morphology_table

    keep = np.ones(len(gen_images), dtype=bool)
    if train_images is not None:
        keep &= ~memorization(gen_images, train_images, copy_ratio=copy_ratio)["near_copy"]
    ref, gen = morphology_table(reference_images), morphology_table(gen_images)
    for f in ("area_px", "aspect_ratio", "mean_intensity", "min_intensity"):
        lo, hi = np.nanquantile(ref[f], quantiles)
        values = gen[f].to_numpy()
        keep &= ~((values < lo) | (values > hi))
    if ref["area_px"].isna().mean() < 0.01:  # "no particle found" is itself out of distribution
        keep &= gen["area_px"].notna().to_numpy()
    return keep


def subtype_groups(subtypes: np.ndarray) -> np.ndarray:
    """Sub-type names folded into the modes the audit compares: the simulator's ``other_*``
    droplets into ``other``, small bubbles with a centre spot into ``small``."""
    s = np.asarray(subtypes, dtype=object).astype(str)
    s = np.where(np.char.startswith(s, "other_"), "other", s)
    return np.where(s == "small_spot", "small", s)


def _share_gap_floor(
    assigned: np.ndarray, names: list, size: int, seed: int, splits: int = 20
) -> float:
    """The largest sub-type share gap between two disjoint sets of ``size`` real images (as
    the classifier assigns them), averaged over random splits: what sampling alone gives a
    gap at this size, as the real-vs-real floor does for FID."""
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(splits):
        perm = rng.permutation(len(assigned))
        a, b = assigned[perm[:size]], assigned[perm[size : 2 * size]]
        gaps.append(max(abs(float(np.mean(a == n)) - float(np.mean(b == n))) for n in names))
    return float(np.mean(gaps))


def mode_coverage(
    real_images: np.ndarray,
    real_subtypes: np.ndarray,
    gen_images: np.ndarray,
    seed: int = 0,
    embedded: tuple[np.ndarray, np.ndarray] | None = None,
    k: int = 3,
    n_jobs: int | None = None,
) -> dict:
    """Share of each sub-type among real and generated images, the generated ones assigned
    by a classifier trained on the real images (logistic regression on pooled pixels + radial
    profile). The gap (``max_abs_diff``) compares like with like: the generated shares with
    the real images' shares *as the same classifier assigns them* (its out-of-fold
    predictions, ``real_classified``), not with their labels (``real``) — a sub-type the
    classifier recalls badly (the simulator's "other" droplets: ≈ 20%) would otherwise look
    missing from any generator, a perfect one included (classify-and-count bias). The gap
    against the labels stays as ``max_abs_diff_vs_labels``; ``classifier_recall`` says how
    far each sub-type's share can be trusted; ``max_abs_diff_floor`` is the gap two disjoint
    sets of real images of the generated set's size show (sampling noise alone).

    A share says nothing about whether the images given a sub-type look like it (a dark blotch
    may be assigned "large bubble"). With ``embedded`` (feature rows of the real and the
    generated images, e.g. the particle encoder's), ``precision_by_mode`` adds, per
    sub-type, the share of the generated images assigned to it that lie inside the k-NN
    manifold of the real images *of that sub-type* (None where fewer than k + 1 real or no
    generated images have it). ``n_jobs``: the classifier fits' processes (the cross-validation
    folds and the final fit run side by side)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from svpgen.stats import features, fit_folds

    groups = subtype_groups(real_subtypes)
    names = sorted(set(groups))
    x = features(real_images)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))
    folds = int(min(5, np.bincount(np.unique(groups, return_inverse=True)[1]).min()))
    splits = list(StratifiedKFold(folds).split(x, groups)) if folds >= 2 else []
    *fold_models, fitted = fit_folds(
        [*((model, train, None) for train, _ in splits), (model, np.arange(len(x)), None)],
        x,
        groups,
        n_jobs=n_jobs,
    )
    out_of_fold = groups.copy()  # no folds (a sub-type with one image): the labels stand in
    for (_, test), fold_model in zip(splits, fold_models):
        out_of_fold[test] = fold_model.predict(x[test])
    predicted = fitted.predict(features(gen_images))
    real_share = {n: float(np.mean(groups == n)) for n in names}
    classified_share = {n: float(np.mean(out_of_fold == n)) for n in names}
    gen_share = {n: float(np.mean(predicted == n)) for n in names}
    out = {
        "modes": names,
        "real": real_share,
        "real_classified": classified_share,
        "generated": gen_share,
        "classifier_cv_accuracy": float(np.mean(out_of_fold == groups)) if splits else float("nan"),
        "classifier_recall": {n: float(np.mean(out_of_fold[groups == n] == n)) for n in names},
        "max_abs_diff": max(abs(classified_share[n] - gen_share[n]) for n in names),
        "max_abs_diff_vs_labels": max(abs(real_share[n] - gen_share[n]) for n in names),
        "max_abs_diff_floor": _share_gap_floor(
            out_of_fold, names, min(len(gen_images), len(x) // 2), seed
        ),
    }
    if embedded is not None:
        real_f, gen_f = embedded
        out["precision_by_mode"] = {
            n: float(inside_manifold(real_f[groups == n], gen_f[predicted == n], k).mean())
            if (groups == n).sum() > k and (predicted == n).any()
            else None
            for n in names
        }
    return out
