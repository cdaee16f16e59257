"""The field's baselines: morphology features of drawn shapes, rule filters on a
constructed case, the forest's save/load round trip through the CLI, and the export's own
parameter columns (rows without images included)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from svpgen.classify.baselines import MorphologyModel, fit_rules
from svpgen.cli import main
from svpgen.data.morphology import computed_features, feature_sources, morphology_table
from svpgen.data.store import Particles, ParticleStore, provenance_record


def _shape(
    radius_y: float, radius_x: float, inside: float, centre: float | None = None
) -> np.ndarray:
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot((yy - 31.5) / radius_y, (xx - 31.5) / radius_x)
    img = np.full((64, 64), 176.0)
    img[r <= 1] = inside
    if centre is not None:
        img[r <= 0.3] = centre
    return img.astype(np.uint8)


def test_features_of_drawn_shapes():
    disc = _shape(10, 10, 60)
    ellipse = _shape(6, 18, 60)
    droplet = _shape(12, 12, 90, centre=240)
    images = np.stack([disc, ellipse, droplet, np.full((64, 64), 176, np.uint8)])
    table = pd.DataFrame(
        {"native_h": [128, 128, 32, 64], "native_w": [128, 256, 32, 64], "pixel_um": [0.5] * 4}
    )
    f = computed_features(images, table)
    # a disc 21 px across (radius 10) in a crop scaled ×2 from the native 128 px, at 0.5 µm/px:
    # ≈ 23 px measured (the 3×3 smoothing widens a sharp edge by a pixel) → 23 µm
    assert f.loc[0, "esd_um"] == pytest.approx(23.0, rel=0.04)
    assert f.loc[0, "ecd_um"] == pytest.approx(f.loc[0, "esd_um"], rel=0.05)
    assert f.loc[0, "aspect_ratio"] == pytest.approx(1.0, abs=0.03)
    assert f.loc[0, "circularity"] > 0.9 and f.loc[1, "circularity"] < f.loc[0, "circularity"]
    assert f.loc[1, "aspect_ratio"] == pytest.approx(7 / 19, abs=0.02)  # semi-axes 6, 18 + 1
    assert f.loc[0, "intensity_min"] == 60 and f.loc[2, "intensity_max"] == 240
    assert f.loc[2, "transparency"] > f.loc[0, "transparency"]  # the bright centre is not dark
    assert f.loc[3].isna().all()  # no particle in an empty crop
    crop = morphology_table(images)
    assert crop.loc[0, "area_px"] == pytest.approx(np.pi * 11.5**2, rel=0.05)


def test_rules_on_a_constructed_case():
    rng = np.random.default_rng(0)

    def cls(n, aspect, bright, dark):
        return pd.DataFrame(
            {
                "aspect_ratio": rng.normal(aspect, 0.03, n),
                "intensity_max": rng.normal(bright, 5, n),
                "intensity_min": rng.normal(dark, 5, n),
            }
        )

    features = pd.concat(
        [cls(400, 0.6, 180, 120), cls(100, 0.95, 230, 110), cls(100, 0.9, 175, 20)],
        ignore_index=True,
    )
    labels = np.array(["protein"] * 400 + ["silicone_oil"] * 100 + ["air_bubble"] * 100)
    prior = {"protein": 1000.0, "silicone_oil": 1.0, "air_bubble": 1.0}
    rules, default = fit_rules(features, labels, ["protein", "silicone_oil", "air_bubble"], prior)
    assert default == "protein"
    text = {r.label: r.text() for r in rules}
    assert "intensity_min ≤" in text["air_bubble"]
    assert ("intensity_max ≥" in text["silicone_oil"]) or ("aspect_ratio ≥" in text["silicone_oil"])
    model = MorphologyModel(
        "rules", ["protein", "silicone_oil", "air_bubble"], {}, rules=rules, default=default
    )
    predicted = np.array(model.classes)[model.predict_proba_features(features).argmax(1)]
    assert (predicted == labels).mean() > 0.97
    assert "otherwise protein" in model.describe()


def test_forest_and_rules_round_trip_through_the_cli(sim_store, tmp_path):
    runner = CliRunner()
    for kind in ("forest", "rules"):
        res = runner.invoke(
            main, ["train-baseline", str(sim_store), str(tmp_path / kind), "--kind", kind]
        )
        assert res.exit_code == 0, res.output
        assert (tmp_path / kind / "model.skops").exists() == (kind == "forest")
        config = json.loads((tmp_path / kind / "config.json").read_text())
        assert config["kind"] == f"svpgen-{kind}" and set(config["sources"].values()) == {
            "computed"
        }
    store = ParticleStore(sim_store)
    forest = MorphologyModel.from_pretrained(tmp_path / "forest")
    proba = forest.predict_proba_table(store.images, store.table)
    assert proba.shape == (len(store), 3) and np.allclose(proba.sum(1), 1)
    forest.save_pretrained(tmp_path / "again")
    again = MorphologyModel.from_pretrained(tmp_path / "again")
    assert np.array_equal(again.predict_proba_table(store.images, store.table), proba)
    assert (np.array(forest.classes)[proba.argmax(1)] == store.table["label"]).mean() > 0.8
    res = runner.invoke(
        main,
        [
            "evaluate",
            str(tmp_path / "forest"),
            str(sim_store),
            "--out",
            str(tmp_path / "ev"),
            "--prevalence",
            "1000:1:1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "at_prevalence" in json.loads((tmp_path / "ev" / "metrics.json").read_text())
    res = runner.invoke(
        main,
        ["classify", str(tmp_path / "rules"), str(sim_store), "--out", str(tmp_path / "p.csv")],
    )
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(store)


def test_the_exports_own_columns_and_rows_without_images(tmp_path):
    rng = np.random.default_rng(1)
    n = 120
    label = np.where(np.arange(n) < 80, "notoil", "badoil")
    rows = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "label": label,
            "source": "real",
            "aspect_ratio": np.where(
                label == "badoil", rng.normal(0.93, 0.02, n), rng.normal(0.6, 0.1, n)
            ),
            "intensity_mean": rng.normal(150, 10, n),
            "ecd": rng.uniform(3, 30, n),
        }
    )
    assert feature_sources(rows, "auto", has_images=False) == {
        "ecd_um": "ecd",
        "aspect_ratio": "aspect_ratio",
        "intensity_mean": "intensity_mean",
    }
    no_images = Particles.from_arrays(
        np.zeros((0, 64, 64), np.uint8), labels=[], source="real", ids=[]
    )
    empty = ParticleStore.write(
        tmp_path / "store", no_images, provenance_record("test"), measurements=rows
    )
    assert len(empty) == 0 and len(empty.measurements) == n
    runner = CliRunner()
    res = runner.invoke(
        main,
        ["train-baseline", str(tmp_path / "store"), str(tmp_path / "rules"), "--kind", "rules"],
    )
    assert res.exit_code == 0, res.output
    assert "badoil if aspect_ratio ≥" in res.output and "otherwise notoil" in res.output
    res = runner.invoke(
        main,
        [
            "evaluate",
            str(tmp_path / "rules"),
            str(tmp_path / "store"),
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert (
        metrics["as_sampled"]["n"] == n
        and metrics["as_sampled"]["per_class"]["badoil"]["recall"] > 0.9
    )
    res = runner.invoke(
        main,
        ["train-classifier", str(tmp_path / "store"), str(tmp_path / "cnn"), "--preset", "smoke"],
    )
    assert res.exit_code == 2 and "no labelled particles" in res.output


def test_baseline_sentence_names_each_verdict_and_keeps_tiny_margins_readable():
    from svpgen.study.compare import baseline_sentence, signed_interval

    rows = pd.DataFrame(
        [
            ("resnet18/Mixed-2", "rules/Real-2", 0.029, 0.019, 0.036, "better"),
            ("resnet18/Real-2", "rules/Real-2", 0.0, -0.0001, 0.0001, "no detectable difference"),
            ("resnet18/Real-4", "rules/Real-4", -0.0002, -0.0003, -0.0001, "negligible difference"),
            ("resnet18/Mixed-4", "rules/Real-4", -0.02, -0.03, -0.01, "worse"),
            ("resnet18/Mixed-2", "forest/Real-2", 0.05, 0.04, 0.06, "better"),
        ],
        columns=["candidate", "reference", "difference", "lo", "hi", "verdict"],
    )
    text = baseline_sentence(rows)
    assert (
        "1 of 4 beat the rule filters (Mixed-2; negligible difference: Real-4; no detectable "
        "difference: Real-2; worse: Mixed-4)" in text
    )
    assert "the smallest margin -0.020 [-0.030, -0.010]" in text
    assert "it beats the random forest, the smallest margin +0.050 [+0.040, +0.060]" in text
    assert signed_interval(0.0123, -0.004, 0.027) == "+0.012 [-0.004, +0.027]"
    assert signed_interval(0.0, 0.0, 0.0) == "+0.000 [+0.000, +0.000]"
