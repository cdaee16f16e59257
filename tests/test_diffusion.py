"""Phase 1: training, resume, NaN guard, DDP, sampling, generation."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from svpgen import Generator
from svpgen.cli import main
from svpgen.data.augment import dihedral
from svpgen.data.store import ParticleStore
from svpgen.diffusion import train as train_mod
from svpgen.diffusion.config import PRESETS as DIFFUSION_PRESETS
from svpgen.diffusion.train import TrainingDiverged, train_diffusion
from svpgen.diffusion.unet import UNet
from svpgen.errors import SvpgenError

SMOKE = DIFFUSION_PRESETS["smoke"]


def test_loss_falls_and_artefacts(smoke_generator):
    metrics = pd.read_csv(smoke_generator / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(1, 9))
    assert metrics["loss"].iloc[-2:].mean() < 0.8 * metrics["loss"].iloc[0]
    for name in ("model.safetensors", "config.json", "training_state.pt", "loss.png"):
        assert (smoke_generator / name).exists(), name
    config = json.loads((smoke_generator / "config.json").read_text())
    assert config["label"] == "silicone_oil" and config["trained_epochs"] == 8
    state = torch.load(smoke_generator / "training_state.pt", weights_only=True)
    assert state["epoch"] == 8


def test_resume_reaches_same_weights(sim_store, tmp_path):
    cfg = replace(SMOKE, epochs=2, checkpoint_every=1, max_images=16)
    train_diffusion(sim_store, tmp_path / "full", "air_bubble", cfg, progress=False)
    train_diffusion(
        sim_store, tmp_path / "part", "air_bubble", replace(cfg, epochs=1), progress=False
    )
    with pytest.raises(SvpgenError, match="already holds a training run"):
        train_diffusion(sim_store, tmp_path / "part", "air_bubble", cfg, progress=False)
    train_diffusion(sim_store, tmp_path / "part", "air_bubble", cfg, resume=True, progress=False)
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "part" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert len(pd.read_csv(tmp_path / "part" / "metrics.csv")) == 2


def test_nan_loss_stops_with_checkpoint_kept(sim_store, tmp_path, monkeypatch):
    real = train_mod.diffusion_loss
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        loss = real(*args)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(train_mod, "diffusion_loss", poisoned)
    cfg = replace(SMOKE, epochs=3, checkpoint_every=1)  # 4 batches per epoch
    with pytest.raises(
        TrainingDiverged, match="non-finite loss .* epoch 2, batch 2.*last good checkpoint: epoch 1"
    ):
        train_diffusion(sim_store, tmp_path / "m", "silicone_oil", cfg, progress=False)
    state = torch.load(tmp_path / "m" / "training_state.pt", weights_only=True)
    assert state["epoch"] == 1
    weights = load_file(tmp_path / "m" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_refuses_generated_only_class(tmp_path):
    from svpgen.data.store import Particles, provenance_record

    imgs = np.zeros((4, 64, 64), np.uint8)
    ParticleStore.write(
        tmp_path / "g",
        Particles.from_arrays(imgs, "silicone_oil", "generated", [f"g{i}" for i in range(4)]),
        provenance_record("t"),
    )
    with pytest.raises(SvpgenError, match="4 generated images refused"):
        train_diffusion(tmp_path / "g", tmp_path / "m", "silicone_oil", SMOKE, progress=False)


def test_dihedral_is_a_symmetry():
    x = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4).repeat(8, 1, 1, 1)
    y = dihedral(x, torch.Generator().manual_seed(0))
    assert torch.equal(torch.sort(y.flatten(1)).values, torch.sort(x.flatten(1)).values)
    assert not torch.equal(x, y)


def test_save_and_reload_give_identical_outputs(smoke_generator, tmp_path):
    g = Generator.from_pretrained(smoke_generator, "cpu")
    g.save_pretrained(tmp_path / "copy")
    again = Generator.from_pretrained(tmp_path / "copy", "cpu")
    assert again.label == g.label and again.config == g.config and again.metadata == g.metadata
    for k, v in g.unet.state_dict().items():
        assert torch.equal(v, again.unet.state_dict()[k]), k
    assert np.array_equal(g.sample(2, "ddim", 3, seed=5), again.sample(2, "ddim", 3, seed=5))
    x, t = torch.randn(2, 1, 64, 64), torch.tensor([10, 500])
    with torch.no_grad():
        assert torch.equal(g.unet(x, t), again.unet(x, t))
    assert (
        g.config.sampler == "dpmpp" and len(g.scheduler.timesteps) == g.config.sampler_steps
    )  # the recommended sampler


def test_sampling_deterministic_and_generate_cli(smoke_generator, tmp_path):
    g = Generator.load(smoke_generator)
    a = g.sample(3, sampler="ddim", steps=4, seed=1)
    b = g.sample(3, sampler="ddim", steps=4, seed=1)
    c = g.sample(3, sampler="ddim", steps=4, seed=2)
    assert a.dtype == np.uint8 and a.shape == (3, 64, 64)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    d = g.sample(2, sampler="dpmpp", steps=3, seed=0)
    assert d.shape == (2, 64, 64)
    res = CliRunner().invoke(
        main,
        [
            "generate",
            str(smoke_generator),
            str(tmp_path / "gen"),
            "--n",
            "5",
            "--sampler",
            "ddim",
            "--steps",
            "3",
            "--seed",
            "4",
            "--trajectory",
            str(tmp_path / "strip.png"),
            "--grid",
            str(tmp_path / "grid.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    store = ParticleStore(tmp_path / "gen")
    assert (
        len(store) == 5
        and set(store.table["source"]) == {"generated"}
        and set(store.table["label"]) == {"silicone_oil"}
    )
    assert store.provenance[0]["sampler"] == "ddim" and store.provenance[0]["seed"] == 4
    assert (tmp_path / "strip.png").exists() and (tmp_path / "grid.png").exists()


def test_unet_paper_size_parameter_count():
    n = sum(p.numel() for p in UNet().parameters())
    assert 35e6 < n < 36.5e6  # the paper's dim 64, mults (1, 2, 4, 8) U-Net


@pytest.mark.slow
def test_torchrun_ddp_two_cpu_processes(sim_store, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "svpgen.cli",
        "train-diffusion",
        str(sim_store),
        str(tmp_path / "ddp"),
        "--label",
        "air_bubble",
        "--preset",
        "smoke",
        "--device",
        "cpu",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = pd.read_csv(tmp_path / "ddp" / "metrics.csv")
    assert len(metrics) == 2 and np.isfinite(metrics["loss"]).all()
    assert Generator.load(tmp_path / "ddp").sample(1, "ddim", 2).shape == (1, 64, 64)


def test_cosine_learning_rate_warms_up_then_decays_to_zero():
    from dataclasses import replace

    from svpgen.diffusion.config import PRESETS, DiffusionConfig
    from svpgen.diffusion.train import learning_rate
    from svpgen.errors import SvpgenError

    cfg = replace(PRESETS["smoke"], lr=1e-3, lr_schedule="cosine")
    lrs = [learning_rate(cfg, s, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(2e-4) and lrs[4] == pytest.approx(1e-3)  # 5 warm-up steps
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] == pytest.approx(
        0.0, abs=1e-12
    )
    assert learning_rate(replace(cfg, lr_schedule="constant"), 50, 100) == 1e-3
    with pytest.raises(SvpgenError, match="lr_schedule"):
        DiffusionConfig(lr_schedule="step")
