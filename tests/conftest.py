"""Shared fixtures: tiny images and instrument exports built inside the tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def shared_fixtures() -> Path | None:
    """The project's real reference data (``../shared/fixtures`` beside the repository, or
    ``$SVPGEN_FIXTURES``); None when this checkout has none."""
    for candidate in (
        os.environ.get("SVPGEN_FIXTURES"),
        Path(__file__).resolve().parents[2] / "shared" / "fixtures",
    ):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    path = shared_fixtures()
    if path is None:
        pytest.skip("real reference data not found (../shared/fixtures or $SVPGEN_FIXTURES)")
    return path


def particle_image(
    rng: np.random.Generator, h: int = 40, w: int = 48, dark: int = 80
) -> np.ndarray:
    """A gray blob on a 175 background, uint8."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    img = 175 - dark * (r < min(h, w) / 4) + rng.normal(0, 2, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def class_tree(tmp_path: Path, rng) -> Path:
    """root/protein (3), root/SO (2), root/bubbles (2) PNGs."""
    root = tmp_path / "tree"
    for folder, n in (("protein", 3), ("SO", 2), ("bubbles", 2)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(particle_image(rng, 30 + 7 * i, 50)).save(root / folder / f"p{i}.png")
    return root


def write_lst(
    path: Path, fields: list[tuple[str, str]], rows: list[list], version: str = "017"
) -> None:
    lines = [version, f"num-fields|{len(fields)}"] + [f"{n}|{t}" for n, t in fields]
    lines += ["|".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


LST_FIELDS = [
    ("id", "int32"),
    ("image_x", "int32"),
    ("image_y", "int32"),
    ("image_w", "int32"),
    ("image_h", "int32"),
    ("cal_const", "double"),
    ("fringe_size", "double"),
    ("raw_feret_mean", "double"),
    ("esd_diameter", "double"),
    ("aspect_ratio", "double"),
    ("timestamp", "timestamp"),
    ("collage_file", "string"),
]


@pytest.fixture
def flowcam_export(tmp_path: Path, rng) -> tuple[Path, list[np.ndarray]]:
    """A FlowCam run: one collage TIFF with 3 crops on black, a _bin mask and a .lst."""
    import tifffile

    folder = tmp_path / "run1"
    folder.mkdir()
    collage = np.zeros((120, 200), np.uint8)
    boxes = [(2, 3, 50, 40), (60, 3, 70, 64), (2, 70, 30, 45)]
    crops = []
    for x, y, w, h in boxes:
        crop = particle_image(rng, h, w)
        collage[y : y + h, x : x + w] = crop
        crops.append(crop)
    tifffile.imwrite(folder / "run1_000001.tif", collage)
    tifffile.imwrite(folder / "run1_000001_bin.tif", (collage < 120).astype(np.uint8) * 255)
    rows = [
        [
            i + 1,
            x,
            y,
            w,
            h,
            0.55,
            1.0,
            20.0 + i,
            10.0 + i,
            0.9,
            "2015-01-30T21:40:43.475",
            "run1_000001.tif",
        ]
        for i, (x, y, w, h) in enumerate(boxes)
    ]
    write_lst(folder / "run1.lst", LST_FIELDS, rows)
    return folder, crops


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory) -> Path:
    """A small simulated store shared by the model tests (60 protein, 40 oil, 40 bubbles)."""
    from svpgen.data.store import ParticleStore, provenance_record
    from svpgen.simulate import SimConfig, simulate

    path = tmp_path_factory.mktemp("data") / "sim"
    sim = simulate(
        {"protein": 60, "silicone_oil": 40, "air_bubble": 40},
        seed=11,
        config=SimConfig(workers=1, label_noise=0.0, profile="fig5"),
    )
    ParticleStore.write(path, sim.particles, provenance_record("test fixture", seed=11))
    return path


@pytest.fixture(scope="session")
def smoke_classifier(sim_store, tmp_path_factory) -> Path:
    """A smoke-preset classifier, trained once per test session on ``sim_store`` through
    the CLI (2 epochs at lr 3e-3: ~90% accuracy on held-out simulated crops)."""
    from click.testing import CliRunner

    from svpgen.cli import main

    out = tmp_path_factory.mktemp("models") / "smoke_classifier"
    res = CliRunner().invoke(
        main,
        [
            "train-classifier",
            str(sim_store),
            str(out),
            "--preset",
            "smoke",
            "--lr",
            "0.003",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="session")
def smoke_generator(sim_store, smoke_classifier, tmp_path_factory) -> Path:
    """A smoke-preset silicone-oil diffusion model, trained once per test session (8 epochs),
    with FID/KID at epochs 4 and 8 in the session classifier's features."""
    from dataclasses import replace

    from svpgen.diffusion.config import DiffusionConfig
    from svpgen.diffusion.train import load_training_images, train_diffusion
    from svpgen.evaluate.audit import fid_hook
    from svpgen.evaluate.features import EncoderFeatures

    out = tmp_path_factory.mktemp("models") / "smoke_generator"
    cfg = replace(
        DiffusionConfig.from_preset("smoke"),
        epochs=8,
        fid_epochs=(4, 8),
        fid_samples=12,
        sampler_steps=3,
    )
    hook = fid_hook(
        load_training_images(sim_store, "silicone_oil", cfg.max_images, cfg.seed),
        EncoderFeatures(smoke_classifier, device="cpu"),
        cfg.fid_samples,
    )
    train_diffusion(
        sim_store, out, "silicone_oil", cfg, eval_hook=hook, progress=False, device="cpu"
    )
    return out
