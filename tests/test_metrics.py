"""Metrics agree with scikit-learn and with the paper's definitions."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix, precision_score, recall_score

from svpgen.evaluate.metrics import classification_metrics, precision_at_recall, prevalence_weights

CLASSES = ["protein", "silicone_oil", "air_bubble"]


@pytest.fixture
def random_case():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3)) + 1.5 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, proba


def test_matches_sklearn(random_case):
    y, proba = random_case
    m = classification_metrics(y, proba, CLASSES)
    pred = proba.argmax(1)
    cm = confusion_matrix(y, pred)
    assert m["confusion_matrix"] == cm.tolist()
    # paper Eq. 2: column-normalised diagonal; Eq. 3: its mean
    eq2 = np.diag(cm) / cm.sum(0)
    np.testing.assert_allclose([m["per_class"][c]["precision"] for c in CLASSES], eq2)
    np.testing.assert_allclose(
        [m["per_class"][c]["precision"] for c in CLASSES], precision_score(y, pred, average=None)
    )
    np.testing.assert_allclose(
        [m["per_class"][c]["recall"] for c in CLASSES], np.diag(cm) / cm.sum(1)
    )
    np.testing.assert_allclose(
        [m["per_class"][c]["recall"] for c in CLASSES], recall_score(y, pred, average=None)
    )
    assert m["macro_precision"] == pytest.approx(eq2.mean())
    aps = [average_precision_score(y == i, proba[:, i]) for i in range(3)]
    np.testing.assert_allclose([m["per_class"][c]["auprc"] for c in CLASSES], aps)
    assert m["macro_auprc"] == pytest.approx(np.mean(aps))


def test_prevalence_weights_equal_replicated_data(random_case):
    """Weighting protein ×10 equals evaluating on a set with every protein repeated 10 times."""
    y, proba = random_case
    w = prevalence_weights(
        y,
        CLASSES,
        {
            "protein": 10 * (y == 0).sum(),
            "silicone_oil": (y == 1).sum(),
            "air_bubble": (y == 2).sum(),
        },
    )
    rep = np.where(y == 0, 10, 1)
    y_rep, p_rep = np.repeat(y, rep), np.repeat(proba, rep, axis=0)
    a = classification_metrics(y, proba, CLASSES, w)
    b = classification_metrics(y_rep, p_rep, CLASSES)
    for c in CLASSES:
        for k in ("precision", "recall", "auprc"):
            assert a["per_class"][c][k] == pytest.approx(b["per_class"][c][k], rel=1e-9)


def test_minority_precision_collapses_at_1000_to_1_while_recall_does_not(random_case):
    y, proba = random_case
    w = prevalence_weights(y, CLASSES, {"protein": 1000, "silicone_oil": 1, "air_bubble": 1})
    raw, weighted = (
        classification_metrics(y, proba, CLASSES),
        classification_metrics(y, proba, CLASSES, w),
    )
    assert weighted["per_class"]["silicone_oil"]["recall"] == pytest.approx(
        raw["per_class"]["silicone_oil"]["recall"]
    )
    assert (
        weighted["per_class"]["silicone_oil"]["precision"]
        < 0.1 * raw["per_class"]["silicone_oil"]["precision"]
    )


def test_precision_at_recall():
    y = np.array([1, 1, 0, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1])
    assert precision_at_recall(y, s, 0.6) == pytest.approx(1.0)
    assert precision_at_recall(y, s, 1.0) == pytest.approx(3 / 5)
