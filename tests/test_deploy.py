"""Results back into the lab's tools and inference that deploys: a VisualSpreadsheet
classification (.cla) written by ``svpgen classify`` and read back by ``svpgen import``;
the ONNX export against ``Classifier.predict_proba`` and run without torch; the fp32
inference paths agreeing with each other, and bf16 autocast close to them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from svpgen.classify.classifier import Classifier
from svpgen.classify.models import FP32_PATHS, fastest_fp32, inference_path, to_input
from svpgen.cli import main
from svpgen.data.importers import import_source
from svpgen.data.importers.flowcam import read_cla
from svpgen.data.store import ParticleStore


def _invoke(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


def test_cla_round_trips_through_visualspreadsheets_layout(smoke_classifier, tmp_path):
    run = tmp_path / "run"
    _invoke(
        "simulate",
        run,
        "--protein",
        40,
        "--silicone-oil",
        20,
        "--air-bubble",
        20,
        "--format",
        "flowcam",
        "--seed",
        3,
    )
    res = _invoke(
        "classify",
        smoke_classifier,
        run,
        "--out",
        tmp_path / "pred.csv",
        "--cla",
        run / "sim_run.cla",
    )
    assert "classification: " in res.output
    assert (run / "sim_run.cla").read_bytes().startswith(b"v3\r\n1\r\n")
    pred = pd.read_csv(tmp_path / "pred.csv")
    store, result = import_source(run, tmp_path / "back")
    back = store.table.set_index("particle_id")["label"]
    assert len(back) == len(pred) == 80 and not (result.report["status"] == "skipped").any()
    assert (back.loc[pred["particle_id"]].to_numpy() == pred["predicted"].to_numpy()).all()

    # below the confidence floor: VisualSpreadsheet's "unclassified" class, read back as unknown
    floor = float(np.quantile(pred["confidence"], 0.25))
    _invoke(
        "classify",
        smoke_classifier,
        run,
        "--out",
        tmp_path / "p2.csv",
        "--cla",
        run / "sim_run.cla",
        "--min-confidence",
        floor,
    )
    entries = pd.DataFrame(read_cla(run / "sim_run.cla"), columns=["scheme", "name", "id", "line"])
    low = set(pred["particle_id"][pred["confidence"] < floor].astype(str))
    assert set(entries["id"][entries["name"] == "unclassified"]) == low and low
    again = import_source(run, tmp_path / "again")[0].table.set_index("particle_id")["label"]
    assert (again.loc[[int(i) for i in low]] == "unknown").all()


def test_cla_needs_visualspreadsheet_particle_ids(smoke_classifier, sim_store, tmp_path):
    args = ["classify", str(smoke_classifier), str(sim_store), "--out", str(tmp_path / "p.csv")]
    res = CliRunner().invoke(main, [*args, "--cla", str(tmp_path / "x.cla")])
    assert (
        res.exit_code == 2
        and "--cla needs particles with VisualSpreadsheet particle ids" in res.output
    )
    assert not (tmp_path / "x.cla").exists()


def test_onnx_export_matches_the_classifier_and_runs_without_torch(
    smoke_classifier, sim_store, tmp_path
):
    from svpgen.classify.onnx import OnnxClassifier

    _invoke("export-onnx", smoke_classifier, tmp_path / "m.onnx")
    store = ParticleStore(sim_store)
    clf, onnx = (
        Classifier.from_pretrained(smoke_classifier, "cpu"),
        OnnxClassifier(tmp_path / "m.onnx"),
    )
    assert onnx.classes == clf.classes
    for n in (1, 7, len(store)):  # a dynamic batch
        np.testing.assert_allclose(
            onnx.predict_proba(store.images[:n]), clf.predict_proba(store.images[:n]), atol=1e-4
        )

    reference = tmp_path / "torch.csv"
    _invoke("classify", smoke_classifier, sim_store, "--out", reference)
    blocked = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "timm", "diffusers"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from svpgen.cli import main
        sys.argv = ["svpgen", *sys.argv[1:]]
        main()
        """
    )
    out = tmp_path / "onnx.csv"
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            blocked,
            "classify",
            "--onnx",
            str(tmp_path / "m.onnx"),
            str(sim_store),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    a, b = pd.read_csv(reference), pd.read_csv(out)
    assert (a["predicted"] == b["predicted"]).all()
    np.testing.assert_allclose(
        a.filter(like="p_").to_numpy(), b.filter(like="p_").to_numpy(), atol=1e-4
    )

    _invoke(
        "export-onnx", smoke_classifier, tmp_path / "m8.onnx", "--int8", "--calibration", sim_store
    )
    int8 = OnnxClassifier(tmp_path / "m8.onnx").predict_proba(store.images)
    assert (int8.argmax(1) == clf.predict_proba(store.images).argmax(1)).mean() > 0.9


def test_fp32_inference_paths_agree(smoke_classifier, sim_store):
    clf = Classifier.from_pretrained(smoke_classifier, "cpu")
    images = ParticleStore(sim_store).images[:64]
    x = to_input(torch.from_numpy(np.array(images)), clf.config).contiguous(
        memory_format=torch.channels_last
    )
    eager = clf._fp32_model()
    with torch.inference_mode():
        reference = eager(x)
        for name in FP32_PATHS:
            out = inference_path(eager, name, x)(x)
            torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-4)
    name, _, rates = fastest_fp32(eager, x)
    assert (
        name in FP32_PATHS and set(rates) <= set(FP32_PATHS) and rates[name] == max(rates.values())
    )
    clf.inference = "onednn-graph"
    np.testing.assert_allclose(
        clf.predict_proba(images),
        Classifier.from_pretrained(smoke_classifier, "cpu").predict_proba(images),
        atol=1e-5,
    )
    clf.inference = "nonsense"
    with pytest.raises(Exception, match="unknown inference path"):
        clf.predict_proba(images)


def test_bf16_inference_stays_close_to_fp32(smoke_classifier, sim_store, tmp_path):
    store = ParticleStore(sim_store)
    fp32 = Classifier.from_pretrained(smoke_classifier, "cpu").predict_proba(store.images)
    _invoke("classify", smoke_classifier, sim_store, "--out", tmp_path / "bf16.csv", "--bf16")
    bf16 = pd.read_csv(tmp_path / "bf16.csv")
    classes = Classifier.from_pretrained(smoke_classifier, "cpu").classes
    proba = bf16[[f"p_{c}" for c in classes]].to_numpy()
    # bf16 keeps 8 mantissa bits: probabilities move by about 1e-2, not more
    assert 0 < np.abs(proba - fp32).max() < 0.05
    assert (proba.argmax(1) == fp32.argmax(1)).mean() > 0.95
    res = CliRunner().invoke(
        main,
        ["classify", str(smoke_classifier), str(sim_store), "--out", "x.csv", "--bf16", "--int8"],
    )
    assert res.exit_code != 0 and "choose one precision" in res.output
