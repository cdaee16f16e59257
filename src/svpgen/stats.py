"""Image-set statistics shared by the simulator's realism check and the generative audit:
radial profiles and the classifier two-sample test.

The two-sample test asks how well a classifier tells one set of 64×64 crops from another:
each crop is described by 16×16 average-pooled pixels and its radial profile; logistic
regression and gradient boosting; 5-fold cross-validated ROC AUC on equal numbers of each.
AUC 0.5 = indistinguishable, 1.0 = trivially told apart.
"""

from __future__ import annotations

import numpy as np

RADII = 32


def radial_profiles(images: np.ndarray) -> np.ndarray:
    """Mean gray level at integer radii 0 … 31 about the crop centre (N×32)."""
    size = images.shape[1]
    yy, xx = np.mgrid[:size, :size] + 0.5
    r = np.minimum(np.hypot(yy - size / 2, xx - size / 2).astype(int), RADII - 1).ravel()
    flat = images.reshape(len(images), -1).astype(np.float64)
    sums = np.stack([np.bincount(r, weights=row, minlength=RADII) for row in flat])
    return sums / np.bincount(r, minlength=RADII)


def pooled_pixels(images: np.ndarray) -> np.ndarray:
    """16×16 average-pooled gray levels (N×16×16, float64)."""
    n, size = len(images), images.shape[1]
    return images.reshape(n, 16, size // 16, 16, size // 16).mean((2, 4))


def features(images: np.ndarray) -> np.ndarray:
    """What the two-sample test sees: 16×16 average-pooled pixels and the radial profile."""
    return (
        np.hstack([pooled_pixels(images).reshape(len(images), -1), radial_profiles(images)]) / 255.0
    )


def random_orientation(images: np.ndarray, seed: int) -> np.ndarray:
    """Each image under a random symmetry of the square (rotation by k·90°, optional flip)."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    for i, img in enumerate(images):
        img = np.rot90(img, rng.integers(4))
        out[i] = img[:, ::-1] if rng.integers(2) else img
    return out


def _fit_and_score(
    model,
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray | None,
    scoring: str | None,
):
    from sklearn.base import clone
    from sklearn.metrics import check_scoring

    fitted = clone(model).fit(x[train], y[train])
    return fitted if test is None else check_scoring(fitted, scoring)(fitted, x[test], y[test])


def fit_folds(
    jobs: list[tuple],
    x: np.ndarray,
    y: np.ndarray,
    scoring: str | None = None,
    n_jobs: int | None = None,
) -> list:
    """For each ``(model, train rows, test rows)``: a clone of the model fitted on the train
    rows, scored on the test rows (``scoring`` as in scikit-learn; test rows None: the fitted
    clone itself). ``n_jobs`` processes at a time (joblib; None: one after another, here),
    with the same numbers either way. Unlike ``cross_val_score(n_jobs=)``, every fold of
    every model (and a final fit on all rows) goes to one pool: 10 fits keep 2 cores busy
    for 5 rounds, where two 5-fold calls would take 6."""
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(
        delayed(_fit_and_score)(model, x, y, train, test, scoring) for model, train, test in jobs
    )


def two_sample_auc(
    real: np.ndarray,
    other: np.ndarray,
    seed: int = 0,
    folds: int = 5,
    orientation: str = "as_is",
    n_jobs: int | None = None,
) -> dict[str, float]:
    """Cross-validated ROC AUC of telling ``other`` from ``real`` (equal numbers drawn),
    per classifier: logistic regression and gradient boosting. ``orientation="random"``
    first gives both sets random orientations, so a curated set's orientation habits
    (e.g. which side large bubbles are cut at) do not count as a difference. ``n_jobs``:
    the fits' processes (:func:`fit_folds`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(real), len(other))
    a, b = (
        real[rng.choice(len(real), n, replace=False)],
        other[rng.choice(len(other), n, replace=False)],
    )
    if orientation == "random":
        a, b = random_orientation(a, seed), random_orientation(b, seed + 1)
    x = np.vstack([features(a), features(b)])
    y = np.r_[np.zeros(n), np.ones(n)]
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    models = {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)),
        "gbm": HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, max_depth=3, random_state=seed
        ),
    }
    scores = fit_folds(
        [(model, train, test) for model in models.values() for train, test in splits],
        x,
        y,
        "roc_auc",
        n_jobs,
    )
    return {
        name: float(np.mean(scores[i * folds : (i + 1) * folds])) for i, name in enumerate(models)
    }
