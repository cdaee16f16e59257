"""Table 2's uncertainty: bootstrap intervals that cover, paired differences, reweighting
by hand."""

import numpy as np
import pytest

from svpgen.evaluate.intervals import bootstrap, class_weights, verdict, weighted_metrics
from svpgen.evaluate.metrics import classification_metrics

CLASSES = ["protein", "silicone_oil", "air_bubble"]


def synthetic(rng, n_per_class, separation=1.5):
    """Three classes with Gaussian scores: class c's own column is shifted up."""
    y = np.repeat(np.arange(3), n_per_class)
    logits = rng.normal(size=(len(y), 3))
    logits[np.arange(len(y)), y] += separation
    e = np.exp(logits - logits.max(1, keepdims=True))
    return y, e / e.sum(1, keepdims=True)


def test_vectorised_metrics_equal_scikit_learn():
    rng = np.random.default_rng(0)
    y, proba = synthetic(rng, (300, 40, 30))
    w = rng.uniform(0.2, 3.0, len(y))
    ours = weighted_metrics(y, proba, CLASSES, w[None, :])
    ref = classification_metrics(y, proba, CLASSES, w)
    for c in CLASSES:
        assert ours[f"precision_{c}"][0] == pytest.approx(
            ref["per_class"][c]["precision"], abs=1e-9
        )
        assert ours[f"recall_{c}"][0] == pytest.approx(ref["per_class"][c]["recall"], abs=1e-9)
        assert ours[f"auprc_{c}"][0] == pytest.approx(ref["per_class"][c]["auprc"], abs=1e-9)
    for m in ("macro_precision", "macro_recall", "macro_auprc", "balanced_accuracy"):
        assert ours[m][0] == pytest.approx(ref[m], abs=1e-9), m


def test_reweighted_precision_by_hand():
    # 4 proteins (one predicted as oil) and 2 oil droplets (both found), reweighted to 1000:1
    y = np.array([0, 0, 0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8], [0.1, 0.9]])
    w = class_weights(y, 2, np.array([1000.0, 1.0]))
    m = weighted_metrics(y, proba, ["protein", "silicone_oil"], w[None, :])
    # each protein weighs 1000/1001·6/4, each droplet 1/1001·6/2: oil precision = 2·w_oil
    # / (2·w_oil + 1·w_protein)
    w_protein, w_oil = 1000 / 1001 * 6 / 4, 1 / 1001 * 6 / 2
    assert m["precision_silicone_oil"][0] == pytest.approx(2 * w_oil / (2 * w_oil + w_protein))
    assert m["precision_silicone_oil"][0] == pytest.approx(
        6 / 1506
    )  # = 2·3 / (2·3 + 1500), the 1001s cancel
    assert m["recall_silicone_oil"][0] == pytest.approx(1.0) and m["recall_protein"][
        0
    ] == pytest.approx(0.75)


def test_a_model_against_itself_differs_by_exactly_zero():
    rng = np.random.default_rng(1)
    y, proba = synthetic(rng, (500, 50, 50))
    b = bootstrap(
        y,
        {"A": [proba], "A again": [proba.copy()]},
        CLASSES,
        np.array([1000.0, 1.0, 1.0]),
        n_boot=200,
    )
    for metric in ("macro_auprc", "macro_recall", "precision_silicone_oil"):
        assert b.difference("A", "A again", metric) == (0.0, 0.0, 0.0)
        assert verdict(*b.difference("A", "A again", metric)[1:]) == "no detectable difference"


def test_a_detected_but_tiny_difference_is_negligible_not_better_or_worse():
    assert verdict(0.001, 0.004) == "negligible difference"  # detected, under half a point
    assert verdict(-0.0003, -0.0001) == "negligible difference"
    assert verdict(0.001, 0.006) == "better"  # may be as large as 0.006: not negligible
    assert verdict(-0.03, -0.01) == "worse"
    assert verdict(-0.002, 0.003) == "no detectable difference"  # includes 0
    assert verdict(0.001, 0.004, negligible=0.0) == "better"


def _coverage(
    prevalence: float,
    sizes: tuple[int, int, int],
    reps: int,
    n_boot: int,
    seed: int,
    method: str = "basic",
) -> int:
    """In how many of ``reps`` evaluation sets the 95% interval of macro AUPRC covers the
    population value (measured on 500,000 samples)."""
    rng = np.random.default_rng(seed)
    prev = np.array([prevalence, 1.0, 1.0])
    truth_y, truth_p = synthetic(rng, (300_000, 100_000, 100_000), separation=1.0)
    true_auprc = weighted_metrics(
        truth_y, truth_p, CLASSES, class_weights(truth_y, 3, prev)[None, :]
    )["macro_auprc"][0]
    covered = 0
    for rep in range(reps):
        y, proba = synthetic(rng, sizes, separation=1.0)
        _, lo, hi = bootstrap(y, {"m": [proba]}, CLASSES, prev, n_boot=n_boot, seed=rep).interval(
            "m", "macro_auprc", method=method
        )
        covered += lo <= true_auprc <= hi
    return covered


def test_bootstrap_intervals_cover_the_true_auprc():
    """95% nominal: the interval covers the population's macro AUPRC in ≥ 90 of 100 sets."""
    assert _coverage(100.0, (3000, 300, 300), reps=100, n_boot=100, seed=2024) >= 90


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_true_auprc_at_1000_to_1():
    """The same at the paper's 1000:1 with 10,000 protein per evaluation set: average precision
    is biased upward there, which the basic interval corrects (percentile: ~50% coverage)."""
    basic = _coverage(1000.0, (10_000, 600, 600), reps=100, n_boot=200, seed=7)
    percentile = _coverage(
        1000.0, (10_000, 600, 600), reps=100, n_boot=200, seed=7, method="percentile"
    )
    assert basic >= 90 and percentile < basic


def test_seeds_widen_the_interval_and_average_the_estimate():
    rng = np.random.default_rng(3)
    y, p1 = synthetic(rng, (800, 80, 80), separation=2.0)
    _, p2 = synthetic(np.random.default_rng(4), (800, 80, 80), separation=0.5)
    one = bootstrap(y, {"m": [p1]}, CLASSES, n_boot=300)
    two = bootstrap(y, {"m": [p1, p2]}, CLASSES, n_boot=300)
    single_p2 = bootstrap(y, {"m": [p2]}, CLASSES, n_boot=10).points["m"]["macro_auprc"]
    assert two.points["m"]["macro_auprc"] == pytest.approx(
        (one.points["m"]["macro_auprc"] + single_p2) / 2
    )
    w1 = np.subtract(*one.interval("m", "macro_auprc")[2:0:-1])
    w2 = np.subtract(*two.interval("m", "macro_auprc")[2:0:-1])
    assert w2 > w1
