"""The smoke study end to end, killed mid-grid and resumed; the HTML report in Chromium."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from svpgen.study.config import PRESETS as STUDY_PRESETS
from svpgen.study.config import load_study_config
from svpgen.study.datasets import resolve_classes, table1_counts
from svpgen.study.grid import study_trials


def test_table1_scaling():
    cfg = resolve_classes(STUDY_PRESETS["paper"])
    assert table1_counts("Real-4", cfg) == {
        "protein": (20000, 0),
        "silicone_oil": (1000, 0),
        "air_bubble": (1000, 0),
    }
    assert table1_counts("Mixed-2", cfg) == {
        "protein": (5000, 0),
        "silicone_oil": (1000, 4000),
        "air_bubble": (1000, 4000),
    }
    assert len(study_trials(cfg)) == 2 * (9 + 3) * 126  # 126 grid points per model per dataset


def test_config_file_overrides(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"datasets": ["Real-1"], "scale": 0.02}))
    cfg = load_study_config("smoke", tmp_path / "c.json")
    assert cfg.datasets == ("Real-1",) and cfg.scale == 0.02 and cfg.diffusion_preset == "smoke"
    (tmp_path / "bad.json").write_text(json.dumps({"sclae": 1}))
    with pytest.raises(Exception, match="unknown study setting"):
        load_study_config("smoke", tmp_path / "bad.json")


def _study_cmd(out: Path, config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "svpgen.cli",
        "study",
        "--preset",
        "smoke",
        "--config",
        str(config),
        "--out",
        str(out),
        "--device",
        "cpu",
    ]


@pytest.mark.slow
def test_smoke_study_killed_mid_grid_resumes(tmp_path):
    config = tmp_path / "study.json"
    config.write_text(
        json.dumps(
            {
                "grid": {
                    "optimizer": ["adam"],
                    "lr": [1e-3, 1e-4],
                    "weight_decay": [1e-4],
                    "batch_size": [16, 32],
                }
            }
        )
    )
    out = tmp_path / "study"
    proc = subprocess.Popen(
        _study_cmd(out, config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "runs").glob("*/*/*/done.json")):
        time.sleep(0.05)
        assert proc.poll() is None, "study ended before the grid could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*/*/done.json")}
    total = len(study_trials(load_study_config("smoke", config)))
    assert 1 <= len(finished) < total
    assert not (out / "stages" / "grid.json").exists()

    res = subprocess.run(_study_cmd(out, config), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "[data] already done" in res.stdout and "[diffusion] already done" in res.stdout
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    grid = json.loads((out / "grid_results.json").read_text())
    assert len(grid["trials"]) == total
    # each trained cell was evaluated in the grid's pool as its trials finished, with the
    # trial the grid then picked as the cell's best
    from svpgen.study.grid import Trial

    for group, recs in grid["best"].items():
        if "derived_from" not in recs[0]:
            name = Trial(**{k: recs[0][k] for k in Trial.__dataclass_fields__}).name
            assert f"evaluate {group} ({name}) while the grid runs" in res.stdout
    # finished trials keep model + history, not their resumable training state
    assert not list((out / "runs").glob("*/*/*/training_state.pt"))
    assert len(list((out / "runs").glob("*/*/*/model.safetensors"))) == total
    table = pd.read_csv(out / "report" / "table2.csv")
    cnn = table[table["model"] == "resnet18"]
    assert set(cnn["dataset"]) == {"Real-0", "Mixed-2"} and len(cnn) == 3
    assert table["macro AUPRC"].between(0, 1).all()
    # the morphology baselines, fitted on each Real-n, on the same evaluation set
    baselines = set(zip(table["model"], table["dataset"])) - set(zip(cnn["model"], cnn["dataset"]))
    assert baselines == {(k, d) for k in ("rules", "forest") for d in ("Real-0", "Real-2")}
    pairs = pd.read_csv(out / "report" / "comparisons.csv")
    assert {"rules/Real-2", "forest/Real-2"} <= set(
        pairs[pairs["candidate"] == "resnet18/Mixed-2"]["reference"]
    )
    report = (out / "report" / "report.md").read_text()
    assert "CNN cells against the instrument's morphology parameters" in report
    assert "rules on Real-2: rules: " in report and "otherwise protein" in report
    html = (out / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html and "Table 2" in html
    # disjoint pools, checked again from the outside
    from svpgen.data.splits import check_disjoint
    from svpgen.data.store import ParticleStore

    pools = {
        p.name: ParticleStore(p).table
        for p in (out / "data").iterdir()
        if (p / "store.json").exists()
    }
    names = sorted(pools)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            check_disjoint(pools[a], pools[b], a, b)

    # the report in a real headless browser
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    shot = tmp_path / "report.png"
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chrome'}",
            "--dump-dom",
            (out / "report" / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-1000:]
    assert 'id="table2-prevalence"' in dom.stdout and dom.stdout.count("<img") >= 4
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chrome2'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            (out / "report" / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 20_000


def test_study_refuses_changed_settings(tmp_path):
    from svpgen.errors import SvpgenError
    from svpgen.study.runner import run_study

    out = tmp_path / "s"
    out.mkdir()
    (out / "study.json").write_text(
        json.dumps({"config": {"preset": "other"}, "data": "simulated"})
    )
    with pytest.raises(SvpgenError, match="different settings"):
        run_study(STUDY_PRESETS["smoke"], out, echo=lambda s: None)


@pytest.mark.slow
def test_grid_on_ray_local_cluster_matches_local_runner(tmp_path):
    """The same smoke trials on a 2-worker local Ray cluster; the local runner then finds
    them done (shared run folders + done markers)."""
    pytest.importorskip("ray.tune")
    from svpgen.study.grid import run_local, run_ray

    cfg = resolve_classes(STUDY_PRESETS["smoke"])
    out = tmp_path / "s"
    from dataclasses import replace

    cfg = replace(
        cfg,
        grid={
            "optimizer": ("adam",),
            "lr": (1e-3, 1e-4),
            "weight_decay": (1e-4,),
            "batch_size": (32,),
        },
        baselines=("logit-adjust",),
    )
    # data, encoder, diffusion and generation stages first (local), then the grid on Ray
    import svpgen.study.runner as runner

    log = runner.StudyLog(out, echo=lambda s: None)
    out.mkdir()
    runner._stage(out, "data", log, lambda: runner._stage_data(cfg, out, None))
    runner._stage(out, "encoder", log, lambda: runner._stage_encoder(cfg, out, "cpu"))
    runner._stage(out, "diffusion", log, lambda: runner._stage_diffusion(cfg, out, "cpu", log, 1))
    runner._stage(out, "generate", log, lambda: runner._stage_generate(cfg, out, "cpu", log))
    trials = study_trials(cfg)
    records = run_ray(trials, cfg, out, workers=2)
    assert len(records) == len(trials) == 6
    assert all(0 <= r["score"] <= 1 for r in records)
    # the logit-adjusted trials are not trained again: their twin's weights plus the
    # deployment prior
    adjusted = [t for t in trials if t.imbalance == "logit-adjust"]
    assert (
        len(adjusted) == 2
        and not (adjusted[0].run_dir(out / "runs") / "training_state.pt").exists()
    )
    shutil.rmtree(adjusted[1].run_dir(out / "runs"))
    again = run_local(
        trials, cfg, out
    )  # nothing left to train: read back from done markers, one re-derived
    assert [r["score"] for r in again] == [r["score"] for r in records]
    from svpgen.classify.classifier import Classifier
    from svpgen.data.store import ParticleStore
    from svpgen.study.grid import twin

    images = ParticleStore(out / "data" / "tune").images[:16]
    for t in adjusted:
        rec = next(r for r in again if r["group"] == t.group and r["lr"] == t.lr)
        plain_rec = next(r for r in again if r["group"] == twin(t).group and r["lr"] == t.lr)
        assert rec["derived_from"] and rec["score"] == plain_rec["score"] and rec["seconds"] == 0
        adj, plain = (
            Classifier.from_pretrained(t.run_dir(out / "runs"), "cpu"),
            Classifier.from_pretrained(twin(t).run_dir(out / "runs"), "cpu"),
        )
        assert (
            adj.config.imbalance == "logit-adjust"
            and plain.logit_offset is None
            and adj.logit_offset[0] > 0
        )  # protein favoured at 1000:1
        np.testing.assert_allclose(
            adj.predict_logits(images),
            plain.predict_logits(images) + adj.logit_offset,
            rtol=1e-6,
            atol=1e-6,
        )
    # its evaluation from the twin's predictions equals running the network again
    from svpgen.errors import SvpgenError
    from svpgen.evaluate.evaluation import evaluate_model

    t, tune = adjusted[0], out / "data" / "tune"
    evaluate_model(
        twin(t).run_dir(out / "runs"), tune, tmp_path / "plain", figures=False, progress=False
    )
    twin_csv = tmp_path / "plain" / "predictions.csv"
    full = evaluate_model(
        t.run_dir(out / "runs"), tune, tmp_path / "full", figures=False, progress=False
    )
    reused = evaluate_model(
        t.run_dir(out / "runs"),
        tune,
        tmp_path / "reused",
        figures=False,
        progress=False,
        twin_predictions=twin_csv,
    )
    p_cols = [c for c in pd.read_csv(twin_csv).columns if c.startswith("p_")]
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "reused" / "predictions.csv")[p_cols],
        pd.read_csv(tmp_path / "full" / "predictions.csv")[p_cols],
        rtol=1e-6,
        atol=1e-9,
    )
    assert reused["as_sampled"]["macro_auprc"] == pytest.approx(
        full["as_sampled"]["macro_auprc"], abs=1e-9
    )
    with pytest.raises(SvpgenError, match="not a logit-adjusted model"):
        evaluate_model(
            twin(t).run_dir(out / "runs"),
            tune,
            tmp_path / "wrong",
            figures=False,
            progress=False,
            twin_predictions=twin_csv,
        )
