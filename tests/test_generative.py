"""Generative quality: FID/KID/PR behave on controlled sets; memorization finds planted copies."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from svpgen.cli import main
from svpgen.evaluate import generative
from svpgen.evaluate.features import PixelFeatures


@pytest.fixture(scope="module")
def gauss():
    rng = np.random.default_rng(0)
    return rng.normal(size=(400, 16)), rng.normal(size=(400, 16))


def test_fid_self_zero_and_grows_with_noise(gauss):
    a, b = gauss
    assert generative.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    same, small, big = generative.fid(a, b), generative.fid(a, b + 0.5), generative.fid(a, b + 2.0)
    assert same < small < big
    assert big == pytest.approx(16 * 4.0, rel=0.25)  # mean shift 2 in 16 dims → ‖Δμ‖² = 64


def test_fid_kid_bootstrap_interval(gauss):
    a, b = gauss
    res = generative.fid_kid(a, b + 1.0, bootstrap=10)
    lo, hi = res["fid_ci95"]
    assert lo <= res["fid"] * 1.5 and hi >= res["fid"] * 0.5 and lo < hi
    assert res["kid"] > generative.kid(a, b)[0]
    assert res["n_real"] == 400 and res["n_generated"] == 400


def test_precision_recall_controlled():
    rng = np.random.default_rng(0)
    a, b = (
        rng.normal(size=(400, 4)),
        rng.normal(size=(400, 4)),
    )  # low dimension: the k-NN manifolds are tight
    same = generative.precision_recall(a, b)
    assert same["precision"] > 0.9 and same["recall"] > 0.9
    collapsed = generative.precision_recall(
        a, 0.1 * b
    )  # mode collapse: inside the manifold, poor coverage
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.2
    off = generative.precision_recall(a, b + 6.0)  # off the manifold entirely
    assert off["precision"] < 0.05


def test_memorization_flags_planted_copies(sim_store):
    from svpgen.data.store import ParticleStore

    store = ParticleStore(sim_store)
    train = np.asarray(store.select(label="protein").images[:40])
    fresh = np.asarray(store.select(label="protein").images[40:60])
    planted = train[[3, 7, 11]].copy()
    planted[:, 0, 0] ^= 1  # a copy with a one-level change is still a copy
    gen = np.concatenate([fresh, planted])
    memo = generative.memorization(gen, train)
    assert list(np.flatnonzero(memo["near_copy"])) == [20, 21, 22]
    assert list(memo["pixel_nearest"][20:]) == [3, 7, 11]
    keep = generative.filter_generated(gen, train, np.asarray(store.select(label="protein").images))
    assert not keep[20:].any() and keep[:20].mean() > 0.7


def test_morphology_comparison_detects_difference(sim_store):
    from svpgen.data.store import ParticleStore

    store = ParticleStore(sim_store)
    oil = np.asarray(store.select(label="silicone_oil").images)
    bub = np.asarray(store.select(label="air_bubble").images)
    same, _, _ = generative.morphology_comparison(oil[:20], oil[20:])
    diff, _, _ = generative.morphology_comparison(oil[:20], bub[:20])
    assert (
        diff.set_index("feature")["ks"]["mean_intensity"]
        > same.set_index("feature")["ks"]["mean_intensity"]
    )


def test_fid_training_hook_and_audit_cli(smoke_generator, smoke_classifier, sim_store, tmp_path):
    metrics = pd.read_csv(smoke_generator / "metrics.csv").set_index("epoch")
    assert (
        metrics.loc[[4, 8], "fid"].notna().all()
        and (metrics.loc[[4, 8], "fid"] > 0).all()
        and "kid" in metrics
    )
    assert metrics.loc[[1, 2, 3], "fid"].isna().all()
    assert (smoke_generator / "fid.png").exists()
    runner = CliRunner()
    args = ["--encoder", str(smoke_classifier), "--n", "12", "--steps", "3", "--bootstrap", "3"]
    res = runner.invoke(
        main,
        ["audit", str(smoke_generator), str(sim_store), "--out", str(tmp_path / "audit"), *args],
    )
    # the fixture store is also the training store: fewer than 10 held-out images remain
    assert res.exit_code == 2 and "held-out" in res.output
    from svpgen.data.store import ParticleStore, provenance_record
    from svpgen.simulate import SimConfig, simulate

    held = simulate(
        {"silicone_oil": 30}, seed=99, config=SimConfig(workers=1, label_noise=0, profile="fig5")
    ).particles
    ParticleStore.write(tmp_path / "held", held, provenance_record("held-out"))
    res = runner.invoke(
        main,
        [
            "audit",
            str(smoke_generator),
            str(tmp_path / "held"),
            "--out",
            str(tmp_path / "audit"),
            *args,
        ],
    )
    import traceback

    assert res.exit_code == 0, (
        "".join(traceback.format_exception(*res.exc_info)) if res.exc_info else res.output
    )
    for name in (
        "audit.json",
        "audit.md",
        "real_vs_generated.png",
        "closest_pairs.png",
        "morphology.png",
    ):
        assert (tmp_path / "audit" / name).exists(), name
    assert (
        "particle-encoder" in res.output
        and "pixels16" in res.output
        and "near-copies" in res.output
    )
    modes = json.loads((tmp_path / "audit" / "audit.json").read_text())["lenses"]["modes"]
    assert set(modes["precision_by_mode"]) == set(
        modes["modes"]
    )  # in the particle encoder's features
    assert "Precision by sub-type" in (tmp_path / "audit" / "audit.md").read_text()


def test_train_encoder_cli(sim_store, tmp_path):
    from svpgen import Classifier

    res = CliRunner().invoke(
        main,
        [
            "train-encoder",
            str(sim_store),
            str(tmp_path / "enc"),
            "--epochs",
            "1",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    enc = Classifier.from_pretrained(tmp_path / "enc", "cpu")
    assert enc.config.imbalance == "oversample" and enc.embed(
        np.zeros((2, 64, 64), np.uint8)
    ).shape == (2, 512)


def test_pixel_features_shape():
    imgs = np.zeros((5, 64, 64), np.uint8)
    assert PixelFeatures()(imgs).shape == (5, 256)


def test_two_sample_test_sees_uneven_backgrounds():
    """What tells the quick generators' images from real ones: backgrounds that are not
    flat. Smooth blotches of 4 gray levels (σ 4 px) are caught even though every pixel stays
    within a few levels of the real image; identical distributions are not."""
    from scipy import ndimage

    from svpgen.simulate import SimConfig, simulate
    from svpgen.stats import two_sample_auc

    images = simulate(
        {"air_bubble": 800}, seed=4, config=SimConfig(workers=1, label_noise=0, profile="fig5")
    ).particles.images
    a, b = images[:400], images[400:]
    blotches = ndimage.gaussian_filter(
        np.random.default_rng(0).normal(size=b.shape).astype(np.float32), (0, 4, 4)
    )
    blotchy = np.clip(np.rint(b + 4 * blotches / blotches.std()), 0, 255).astype(np.uint8)
    assert two_sample_auc(a, b, 0)["gbm"] < 0.62
    caught = two_sample_auc(a, blotchy, 0)
    assert caught["gbm"] > 0.8
    assert (
        two_sample_auc(a, blotchy, 0, n_jobs=2) == caught
    )  # the fits in two processes: the same numbers
