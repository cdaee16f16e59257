"""Batched inference: the loaded Classifier, store streaming, and ``svpgen classify``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from svpgen.checkpoint import load_weights, read_config
from svpgen.classify.models import build_classifier, fold_batchnorm, quantize_int8, to_input
from svpgen.classify.train import predict_logits
from svpgen.config import ClassifierConfig
from svpgen.errors import SvpgenError

# instrument size columns carried into predictions when present
SIZE_COLUMNS = ("esd_um", "pixel_um", "native_h", "native_w", "esd_diameter", "abd_diameter", "ecd", "area", "edge_particle")


class LoadedClassifier:
    """A trained classifier: ``predict_proba(uint8 N×64×64) → float N×C`` (rows sum to 1)."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        self.path = Path(path)
        self.config = read_config(self.path)
        if self.config.get("kind") != "svpgen-classifier":
            raise SvpgenError(f"{path}: not a classifier model (kind={self.config.get('kind')!r})")
        self.classes: list[str] = list(self.config["classes"])
        cfg = ClassifierConfig.from_dict(self.config["classifier"])
        model = build_classifier(cfg.arch, len(self.classes), cfg.stem)
        model.load_state_dict(load_weights(self.path / "model.safetensors"))
        # inference only: BatchNorm folded into the convolutions (+2–5% img/s here)
        self.model = fold_batchnorm(model).to(device, memory_format=torch.channels_last).eval()
        self.device = device
        deploy = self.config.get("deploy_prior")
        self.logit_offset = None if deploy is None else np.log(np.asarray(deploy)) - np.log(np.asarray(self.config["train_prior"]))

    def quantize(self, calibration_images: np.ndarray, n: int = 512) -> "LoadedClassifier":
        """Switch to int8 inference, calibrated on up to ``n`` evenly spaced images (no labels)."""
        images = _check(calibration_images)
        idx = np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int)
        x = to_input(torch.from_numpy(np.array(images[idx])))
        self.model = quantize_int8(self.model, x)
        return self

    def predict_logits(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        logits = predict_logits(self.model, _check(images), batch_size, self.device)
        return logits if self.logit_offset is None else logits + self.logit_offset

    def predict_proba(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.predict_logits(images, batch_size)).double(), 1).numpy()

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.predict_proba(images, batch_size).argmax(1)]


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (64, 64):
        raise SvpgenError(f"classifier input must be uint8 N×64×64 (got {images.dtype} {images.shape}); use svpgen import first")
    return images


def predictions_table(clf: LoadedClassifier, images: np.ndarray, table: pd.DataFrame, batch_size: int = 512, progress: bool = False) -> pd.DataFrame:
    """id, origin, predicted, confidence, p_<class>…, and the size columns present."""
    from tqdm import tqdm

    proba = np.empty((len(images), len(clf.classes)))
    bar = tqdm(total=len(images), unit="img", desc="classify", disable=not progress)
    chunk = batch_size * 16
    for start in range(0, len(images), chunk):
        proba[start : start + chunk] = clf.predict_proba(np.asarray(images[start : start + chunk]), batch_size)
        bar.update(min(chunk, len(images) - start))
    bar.close()
    out = pd.DataFrame({"id": table["id"].to_numpy(), "origin": table["origin"].to_numpy()})
    out["predicted"] = np.asarray(clf.classes, dtype=object)[proba.argmax(1)]
    out["confidence"] = proba.max(1)
    for i, c in enumerate(clf.classes):
        out[f"p_{c}"] = proba[:, i]
    for col in SIZE_COLUMNS:
        if col in table.columns:
            out[col] = table[col].to_numpy()
    if "label" in table.columns and (table["label"] != "unknown").any():
        out["label"] = table["label"].to_numpy()
    return out


def load_input(path: str | Path):
    """(images, table, source kind) from a store, a folder tree or an instrument export."""
    from svpgen.data.store import ParticleStore, is_store

    path = Path(path)
    if is_store(path):
        store = ParticleStore(path)
        return store.images, store.table, "store"
    from svpgen.data.importers import read_source

    result = read_source(path)
    if len(result.particles) == 0:
        raise SvpgenError(f"{path}: no usable particles to classify")
    return result.particles.images, result.particles.table, result.format
