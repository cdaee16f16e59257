"""Phase 2: classifier training, resume, imbalance strategies, inference, evaluate CLI."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from svpgen import Classifier
from svpgen.classify.config import PRESETS as CLASSIFIER_PRESETS
from svpgen.classify.models import build_classifier
from svpgen.classify.train import train_classifier
from svpgen.cli import main
from svpgen.data.store import ParticleStore
from svpgen.simulate import SimConfig, simulate

SMOKE = CLASSIFIER_PRESETS["smoke"]


@pytest.fixture(scope="module")
def splits():
    """Small train / tune / test parts of a fresh simulation (not the session store)."""
    sim = simulate(
        {"protein": 40, "silicone_oil": 40, "air_bubble": 40},
        seed=21,
        config=SimConfig(workers=1, label_noise=0.0, profile="fig5"),  # as the session store
    ).particles
    rng = np.random.default_rng(0)
    order = rng.permutation(len(sim))
    take = lambda idx: type(sim)(sim.images[idx], sim.table.iloc[idx].reset_index(drop=True))  # noqa: E731
    return take(order[:48]), take(order[48:72]), take(order[72:])


def test_beats_chance_on_held_out(smoke_classifier, splits):
    _, _, test = splits
    clf = Classifier.load(smoke_classifier)
    assert json.loads((smoke_classifier / "config.json").read_text())["best_epoch"] >= 1
    proba = clf.predict_proba(test.images)
    assert proba.shape == (len(test), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    acc = (clf.predict(test.images) == test.table["label"].to_numpy()).mean()
    assert acc > 0.5  # chance is 1/3
    hist = pd.read_csv(smoke_classifier / "history.csv")
    assert {"train_loss", "tune_macro_auprc"} <= set(hist.columns)


def test_save_and_reload_give_identical_outputs(smoke_classifier, splits, tmp_path):
    _, _, test = splits
    clf = Classifier.from_pretrained(smoke_classifier, "cpu")
    clf.save_pretrained(tmp_path / "copy")
    again = Classifier.from_pretrained(tmp_path / "copy", "cpu")
    assert (
        again.classes == clf.classes
        and again.config == clf.config
        and again.metadata == clf.metadata
    )
    for k, v in clf.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k
    assert np.array_equal(clf.predict_proba(test.images), again.predict_proba(test.images))
    assert np.array_equal(clf.embed(test.images), again.embed(test.images))
    assert clf.embed(test.images).shape == (len(test), 512)


def test_resume_continues_exactly(splits, tmp_path):
    train, tune, _ = splits
    train = type(train)(train.images[:24], train.table.iloc[:24].reset_index(drop=True))
    cfg = replace(SMOKE, epochs=2, patience=10)
    train_classifier(train, tune, tmp_path / "full", cfg, progress=False)
    train_classifier(train, tune, tmp_path / "part", replace(cfg, epochs=1), progress=False)
    train_classifier(train, tune, tmp_path / "part", cfg, resume=True, progress=False)
    a = torch.load(tmp_path / "full" / "training_state.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "part" / "training_state.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.parametrize("strategy", ["weighted", "oversample", "logit-adjust"])
def test_imbalance_strategies_run(splits, tmp_path, strategy):
    train, tune, test = splits
    keep = np.flatnonzero(
        (train.table["label"] == "protein").to_numpy() | (np.arange(len(train)) % 4 == 0)
    )
    skewed = type(train)(train.images[keep], train.table.iloc[keep].reset_index(drop=True))
    train_classifier(
        skewed,
        tune,
        tmp_path / strategy,
        replace(SMOKE, epochs=1, imbalance=strategy),
        progress=False,
    )
    clf = Classifier.load(tmp_path / strategy)
    proba = clf.predict_proba(test.images[:10])
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    if strategy == "logit-adjust":
        # the deployment prior (1000:1:1) must shift probability mass to protein
        assert clf.metadata["deploy_prior"][0] > 0.99
        raw = torch.softmax(
            torch.from_numpy(clf.predict_logits(test.images[:10]) - clf.logit_offset), 1
        ).numpy()
        assert (proba[:, 0] >= raw[:, 0] - 1e-9).all()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_fold_batchnorm_keeps_outputs(arch):
    import copy

    from svpgen.classify.models import fold_batchnorm

    torch.manual_seed(0)
    model = build_classifier(arch, 3).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(4, 1, 64, 64)
    with torch.inference_mode():
        ref = model(x)
        folded = fold_batchnorm(copy.deepcopy(model))
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        torch.testing.assert_close(folded(x), ref, rtol=1e-3, atol=1e-3)


def test_int8_inference_agrees_with_fp32(smoke_classifier, sim_store, splits):
    _, _, test = splits
    fp32 = Classifier.load(smoke_classifier)
    ref = fp32.predict_proba(test.images)
    q = Classifier.load(smoke_classifier).quantize(ParticleStore(sim_store).images)
    proba = q.predict_proba(test.images)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    assert (proba.argmax(1) == ref.argmax(1)).mean() > 0.9
    assert np.abs(proba - ref).mean() < 0.05


def test_small_stem_and_resnet50_build():
    x = torch.zeros(2, 1, 64, 64)
    assert build_classifier("resnet18", 3, stem="small")(x).shape == (2, 3)
    assert build_classifier("resnet50", 4)(x).shape == (2, 4)


def test_cli_classify_evaluate(smoke_classifier, sim_store, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main, ["classify", str(smoke_classifier), str(sim_store), "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == len(ParticleStore(sim_store))
    assert {
        "id",
        "origin",
        "predicted",
        "p_protein",
        "p_silicone_oil",
        "p_air_bubble",
        "esd_um",
    } <= set(pred.columns)
    res = runner.invoke(
        main,
        [
            "evaluate",
            str(smoke_classifier),
            str(sim_store),
            "--out",
            str(tmp_path / "ev"),
            "--prevalence",
            "1000:1:1",
            "--truth-column",
            "true_label",
        ],
    )
    assert res.exit_code == 0, res.output
    for name in (
        "metrics.json",
        "metrics.md",
        "confusion_counts.png",
        "confusion_precision.png",
        "pr_curves.png",
        "misclassified.png",
    ):
        assert (tmp_path / "ev" / name).exists(), name
    res = runner.invoke(
        main,
        [
            "evaluate",
            str(smoke_classifier),
            str(sim_store),
            "--out",
            str(tmp_path / "ev2"),
            "--prevalence",
            "1:2",
        ],
    )
    assert res.exit_code == 2 and "has 2 values for 3 classes" in res.output


def test_classify_folder_and_flowcam_export(smoke_classifier, tmp_path):
    from svpgen.simulate.writers import write_flowcam, write_folder

    runner = CliRunner()
    sim = simulate(
        {"protein": 12, "silicone_oil": 5, "air_bubble": 5},
        seed=9,
        config=SimConfig(workers=1),
        keep_native=True,
    )
    write_flowcam(sim, tmp_path / "fc")
    write_folder(sim, tmp_path / "folder")
    for src in ("fc", "folder"):
        res = runner.invoke(
            main,
            [
                "classify",
                str(smoke_classifier),
                str(tmp_path / src),
                "--out",
                str(tmp_path / f"{src}.csv"),
            ],
        )
        assert res.exit_code == 0, res.output
        pred = pd.read_csv(tmp_path / f"{src}.csv")
        assert len(pred) == 22
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert "esd_diameter" in fc.columns and fc["esd_um"].notna().all()


def test_min_steps_extends_small_datasets_and_delays_early_stopping(splits, tmp_path):
    from svpgen.classify.config import ClassifierConfig
    from svpgen.errors import SvpgenError

    cfg = ClassifierConfig(epochs=5, min_steps=100)
    assert cfg.epochs_for(6) == 17 and cfg.epochs_for(47) == 5
    assert cfg.evaluate_every(6) == 4 and cfg.evaluate_every(47) == 1  # ~5 evaluations either way
    assert ClassifierConfig(epochs=5).epochs_for(1) == 5
    with pytest.raises(SvpgenError, match="min_steps"):
        ClassifierConfig(min_steps=-1)
    train, tune, _ = splits
    train = type(train)(
        train.images[:32], train.table.iloc[:32].reset_index(drop=True)
    )  # 2 steps per epoch
    result = train_classifier(
        train,
        tune,
        tmp_path / "m",
        replace(SMOKE, epochs=2, patience=1, min_steps=8),
        progress=False,
    )
    assert result.epochs_run == 4  # 4 epochs of 2 steps, scored after epochs 2 and 4
    history = pd.read_csv(tmp_path / "m" / "history.csv")
    assert history["epoch"].tolist()[-1] == 4 and len(history) <= 2
