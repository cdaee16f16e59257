"""Classification metrics for the imbalanced evaluation (paper Sec. 2.5, Eq. 2–3), via
scikit-learn.

The paper's per-class precision (Eq. 2) is the column-normalised confusion matrix: of the
particles *predicted* as class c, the fraction that truly are c. With 500,000 protein
images against 500 of each minority class, even a 0.1% protein false-positive rate puts
500 proteins into each minority column, so minority precision is dominated by protein
false positives. Recall (row-normalised) does not depend on prevalence. The values the
paper reports as "precision" behave like per-class recall; both are reported here.

``sample_weight`` reweights an evaluation set to a deployment prevalence (e.g. the paper's
1000:1:1) when the set itself was drawn at another ratio: every metric is then the
expectation at that prevalence (importance weighting, per true class).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
)
from sklearn.preprocessing import label_binarize


def prevalence_weights(
    y: np.ndarray, classes: list[str], prevalence: dict[str, float]
) -> np.ndarray:
    """Per-sample weights that make class c carry ``prevalence[c]`` of the total weight."""
    counts = np.bincount(y, minlength=len(classes)).astype(np.float64)
    target = np.array([prevalence.get(c, 0.0) for c in classes], dtype=np.float64)
    target = target / target.sum()
    per_class = np.divide(
        target * counts.sum(), counts, out=np.zeros_like(counts), where=counts > 0
    )
    return per_class[y]


def precision_at_recall(
    y_bin: np.ndarray, score: np.ndarray, recall: float, sample_weight=None
) -> float:
    """Highest precision reachable at recall ≥ ``recall`` (one-vs-rest)."""
    if y_bin.sum() == 0:
        return float("nan")
    p, r, _ = precision_recall_curve(y_bin, score, sample_weight=sample_weight)
    ok = r >= recall
    return float(p[ok].max()) if ok.any() else 0.0


def classification_metrics(
    y: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    sample_weight: np.ndarray | None = None,
    recall_levels=(0.5, 0.9),
) -> dict:
    """Every metric of the report for integer labels ``y`` and probabilities ``proba``."""
    k = len(classes)
    labels = list(range(k))
    pred = proba.argmax(1)
    sw = sample_weight
    cm = confusion_matrix(y, pred, labels=labels, sample_weight=sw)
    precision = precision_score(
        y, pred, labels=labels, average=None, zero_division=0, sample_weight=sw
    )
    recall = recall_score(y, pred, labels=labels, average=None, zero_division=0, sample_weight=sw)
    f1 = f1_score(y, pred, labels=labels, average=None, zero_division=0, sample_weight=sw)
    onehot = label_binarize(y, classes=labels) if k > 2 else np.eye(k, dtype=int)[y]
    auprc = np.array(
        [
            average_precision_score(onehot[:, c], proba[:, c], sample_weight=sw)
            if onehot[:, c].any()
            else np.nan
            for c in labels
        ]
    )
    per_class = {
        c: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "auprc": float(auprc[i]),
            "support": int((y == i).sum()),
            **{
                f"precision_at_recall_{r:g}": precision_at_recall(onehot[:, i], proba[:, i], r, sw)
                for r in recall_levels
            },
        }
        for i, c in enumerate(classes)
    }
    return {
        "classes": classes,
        "n": int(len(y)),
        "per_class": per_class,
        "macro_precision": float(np.mean(precision)),  # paper Eq. 3
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
        "macro_auprc": float(np.nanmean(auprc)),
        # mean recall over the classes present (sklearn's balanced_accuracy_score, without its
        # warning when a prediction names a class the evaluation set lacks)
        "balanced_accuracy": float(recall[np.isin(labels, y)].mean()),
        "confusion_matrix": cm.tolist(),
    }
