"""How sure is a Table 2 number? Stratified bootstrap intervals and paired differences.

The evaluation set is resampled *within each true class* (so every replicate keeps the
class counts the set was drawn with) and every replicate is reweighted to the deployment
prevalence exactly like the point estimate (importance weights per true class). The 95%
interval is the basic bootstrap interval from the 2.5 / 97.5 percentiles of the replicates
(the bias-correcting mirror of the percentile interval, which is an option; see
:func:`_interval`). Because every model of a study is evaluated on the same images, two
models are compared on the *same* replicates: the paired difference's interval is much
narrower than the two intervals suggest, and a model compared with itself gets exactly
[0, 0].

With several training seeds per cell, each replicate also resamples the seeds (a
hierarchical bootstrap), so the interval includes the between-seed spread.

The metrics are those of :func:`svpgen.evaluate.metrics.classification_metrics`, computed
for many weightings at once: a replicate is a row of sample weights (multinomial counts ×
prevalence weight), and average precision is evaluated from one sort per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 100  # bootstrap replicates evaluated together (memory: CHUNK × n floats)


def metric_names(classes: list[str]) -> list[str]:
    """Table 2's metrics: per-class precision, recall and average precision (AUPRC), the
    macro values, balanced accuracy."""
    return (
        [f"precision_{c}" for c in classes]
        + [f"recall_{c}" for c in classes]
        + [f"auprc_{c}" for c in classes]
        + ["macro_precision", "macro_recall", "macro_auprc", "balanced_accuracy"]
    )


def _average_precision(score: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted average precision (scikit-learn's definition: Σ ΔR·P over the distinct
    thresholds) of one score for every row of ``weights`` (R × n)."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # the last index of each tie group
    w = weights[:, order]
    tp = np.cumsum(w * positive[order], axis=1)[:, ends]
    total = np.cumsum(w, axis=1)[:, ends]
    all_pos = tp[:, -1:]
    precision = np.divide(tp, total, out=np.zeros_like(tp), where=total > 0)
    recall = np.divide(tp, all_pos, out=np.zeros_like(tp), where=all_pos > 0)
    delta = np.diff(np.concatenate([np.zeros((len(w), 1)), recall], axis=1), axis=1)
    return (delta * precision).sum(1)


def weighted_metrics(
    y: np.ndarray, proba: np.ndarray, classes: list[str], weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Every Table 2 metric for each row of ``weights`` (R × n sample weights)."""
    k = len(classes)
    pred = proba.argmax(1)
    cm = np.stack(
        [
            np.stack([weights[:, (y == t) & (pred == p)].sum(1) for p in range(k)], 1)
            for t in range(k)
        ],
        1,
    )  # R × k × k
    diag = np.diagonal(cm, axis1=1, axis2=2)
    col, row = cm.sum(1), cm.sum(2)
    precision = np.divide(diag, col, out=np.zeros_like(diag), where=col > 0)
    recall = np.divide(diag, row, out=np.zeros_like(diag), where=row > 0)
    present = [c for c in range(k) if (y == c).any()]
    auprc = np.stack(
        [_average_precision(proba[:, c], (y == c).astype(np.float64), weights) for c in present], 1
    )
    per_class_ap = np.full((len(weights), k), np.nan)  # NaN for a class the set lacks
    per_class_ap[:, present] = auprc
    out = {f"precision_{c}": precision[:, i] for i, c in enumerate(classes)}
    out |= {f"recall_{c}": recall[:, i] for i, c in enumerate(classes)}
    out |= {f"auprc_{c}": per_class_ap[:, i] for i, c in enumerate(classes)}
    out |= {
        "macro_precision": precision.mean(1),
        "macro_recall": recall.mean(1),
        "macro_auprc": auprc.mean(1),
        "balanced_accuracy": recall[:, present].mean(1),
    }
    return out


def class_weights(y: np.ndarray, n_classes: int, prevalence: np.ndarray | None) -> np.ndarray:
    """Per-sample importance weight making class c carry prevalence[c] of the total (1 when
    None)."""
    if prevalence is None:
        return np.ones(len(y))
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    target = np.asarray(prevalence, dtype=np.float64) / np.sum(prevalence)
    per_class = np.divide(
        target * counts.sum(), counts, out=np.zeros_like(counts), where=counts > 0
    )
    return per_class[y]


def _replicate_weights(
    y: np.ndarray, n_classes: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` stratified bootstrap replicates as multinomial counts (n × len(y))."""
    counts = np.zeros((n, len(y)))
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        if len(idx):
            counts[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=n)
    return counts


@dataclass
class Bootstrap:
    """Replicate metrics of one or more models on the same bootstrap samples.

    ``replicates[model][metric]`` is an array over replicates; ``points[model][metric]`` the
    estimate on the full set. A model given as several seeds' probabilities reports their
    mean, and its replicates resample the seeds too.
    """

    points: dict[str, dict[str, float]]
    replicates: dict[str, dict[str, np.ndarray]]

    def interval(
        self, model: str, metric: str, level: float = 0.95, method: str = "basic"
    ) -> tuple[float, float, float]:
        """(estimate, lower, upper) of ``metric`` for ``model`` (``method``: see :func:`_interval`),
        clipped to the metric's range [0, 1] (a basic interval can reach past it)."""
        estimate, lo, hi = _interval(
            self.points[model][metric], self.replicates[model][metric], level, method
        )
        return estimate, max(lo, 0.0), min(hi, 1.0)

    def difference(
        self, a: str, b: str, metric: str, level: float = 0.95, method: str = "basic"
    ) -> tuple[float, float, float]:
        """(a − b, lower, upper): the paired difference of ``metric`` on the same replicates."""
        d = self.replicates[a][metric] - self.replicates[b][metric]
        estimate, lo, hi = _interval(
            self.points[a][metric] - self.points[b][metric], d, level, method
        )
        return estimate, max(lo, -1.0), min(hi, 1.0)


def _interval(
    estimate: float, replicates: np.ndarray, level: float, method: str
) -> tuple[float, float, float]:
    """``basic`` (default): the reverse-percentile interval [2θ̂ − q_hi, 2θ̂ − q_lo];
    ``percentile``: [q_lo, q_hi]. The basic interval corrects the estimator's bias, which
    matters here: at 1000:1 average precision is biased upward by about one standard error
    (its precision at the top ranks rests on few, heavily weighted negatives), and percentile
    intervals then cover the true AUPRC in only ~50% of evaluation sets (measured;
    tests/test_intervals.py). Where the replicates are symmetric the two agree."""
    q_lo, q_hi = np.percentile(replicates, [50 * (1 - level), 50 * (1 + level)])
    if method == "percentile":
        return estimate, float(q_lo), float(q_hi)
    if method != "basic":
        raise ValueError(f"unknown interval method {method!r} (basic or percentile)")
    return estimate, float(2 * estimate - q_hi), float(2 * estimate - q_lo)


def bootstrap(
    y: np.ndarray,
    models: dict[str, list[np.ndarray]],
    classes: list[str],
    prevalence=None,
    n_boot: int = 400,
    seed: int = 0,
) -> Bootstrap:
    """Stratified (hierarchical over seeds) bootstrap of Table 2's metrics for ``models``
    (name → one probability matrix per training seed), all on the same replicates."""
    k = len(classes)
    base = class_weights(y, k, prevalence)
    rng = np.random.default_rng(seed)
    points = {}
    for name, probas in models.items():
        per_seed = [weighted_metrics(y, p, classes, base[None, :]) for p in probas]
        points[name] = {m: float(np.mean([s[m][0] for s in per_seed])) for m in per_seed[0]}
    reps: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in models}
    for start in range(0, n_boot, CHUNK):
        n = min(CHUNK, n_boot - start)
        weights = _replicate_weights(y, k, n, rng) * base[None, :]
        seed_picks = {
            name: rng.integers(0, len(p), (n, len(p))) for name, p in models.items()
        }  # seeds resampled per replicate
        for name, probas in models.items():
            per_seed = [weighted_metrics(y, p, classes, weights) for p in probas]
            for m in per_seed[0]:
                values = np.stack([s[m] for s in per_seed], 1)  # n × seeds
                reps[name].setdefault(m, []).append(
                    np.take_along_axis(values, seed_picks[name], 1).mean(1)
                )
    return Bootstrap(
        points, {name: {m: np.concatenate(v) for m, v in ms.items()} for name, ms in reps.items()}
    )


# A paired difference smaller than this is too small to matter, even where the bootstrap
# detects it: half a point of AUPRC, recall or precision (the 0–1 metrics compared) — the
# budget int8 inference is held to. 30,000 evaluation images detect differences of 0.0002.
NEGLIGIBLE = 0.005


def verdict(lo: float, hi: float, negligible: float = NEGLIGIBLE) -> str:
    """From a paired difference's 95% interval: 'better' when the whole interval is above 0,
    'worse' when below — unless it lies within ±``negligible`` ('negligible difference':
    detected, but too small to matter) — else 'no detectable difference'."""
    if (lo > 0 or hi < 0) and -negligible < lo and hi < negligible:
        return "negligible difference"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no detectable difference"
