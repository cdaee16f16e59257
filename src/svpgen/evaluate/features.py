"""Feature extractors for generative-quality metrics. Nothing is downloaded:

* ``EncoderFeatures`` — the *particle encoder*: penultimate layer of an svpgen ResNet
  classifier trained on real images of every class (``svpgen train-encoder``).
* ``TimmFeatures`` — any timm backbone with a local weights file, e.g. an ImageNet SwAV
  ResNet-50 (the features the paper's ref. [37] recommends) or DINOv2 ViT-S/14.
* ``InceptionFeatures`` — the classic FID Inception-v3 (torchmetrics / torch-fidelity)
  from a local weights file.
* ``PixelFeatures`` — 16×16 average-pooled raw pixels: a sanity baseline.

Every extractor maps uint8 N×64×64 images to float64 N×d features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from svpgen.errors import SvpgenError


class PixelFeatures:
    """16×16 average-pooled raw pixels: the sanity baseline."""

    name = "pixels16"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.array(images)).float().unsqueeze(1) / 255.0
        return F.avg_pool2d(x, 4).flatten(1).double().numpy()


class EncoderFeatures:
    """The particle encoder's penultimate features (:meth:`Classifier.embed`)."""

    name = "particle-encoder"

    def __init__(self, model_dir: str | Path, batch_size: int = 256, device: str = "auto"):
        from svpgen.classify.classifier import Classifier

        self.clf = Classifier.from_pretrained(model_dir, device)
        self.batch_size = batch_size

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.clf.embed(images, self.batch_size)


class TimmFeatures:
    """A timm backbone's pooled features from a local weights file (gray repeated to RGB,
    resized to the backbone's input size, its own normalisation)."""

    def __init__(self, arch: str, weights: str | Path, batch_size: int = 64):
        import timm

        if not Path(weights).is_file():
            raise SvpgenError(f"{weights}: no such weights file")
        self.model = timm.create_model(
            arch, pretrained=True, pretrained_cfg_overlay={"file": str(weights)}, num_classes=0
        ).eval()
        cfg = self.model.pretrained_cfg
        self.size = cfg.get("input_size", (3, 224, 224))[-1]
        self.mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1)
        self.batch_size, self.name = batch_size, f"timm:{arch}"

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        feats = []
        for s in range(0, len(images), self.batch_size):
            x = (
                torch.from_numpy(np.array(images[s : s + self.batch_size]))
                .float()
                .div(255)
                .unsqueeze(1)
                .repeat(1, 3, 1, 1)
            )
            x = F.interpolate(x, size=self.size, mode="bilinear", antialias=True)
            feats.append(self.model((x - self.mean) / self.std).double())
        return torch.cat(feats).numpy()


class InceptionFeatures:
    """The FID Inception-v3 (torchmetrics / torch-fidelity) from a local weights file."""

    name = "inception-v3"

    def __init__(self, weights: str | Path, batch_size: int = 64):
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError:  # pragma: no cover - depends on the optional torch-fidelity
            raise SvpgenError(
                "Inception features need torch-fidelity: pip install torch-fidelity"
            ) from None
        if not Path(weights).is_file():
            raise SvpgenError(f"{weights}: no such weights file")
        self.model = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=str(weights),
        )
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        feats = []
        for s in range(0, len(images), self.batch_size):
            x = (
                torch.from_numpy(np.array(images[s : s + self.batch_size]))
                .unsqueeze(1)
                .repeat(1, 3, 1, 1)
            )
            feats.append(self.model(x).double())
        return torch.cat(feats).numpy()


def make_extractor(
    kind: str,
    encoder: str | Path | None = None,
    weights: str | Path | None = None,
    arch: str | None = None,
):
    """The feature extractor the audit asked for: encoder, pixels, timm or inception."""
    if kind == "pixels":
        return PixelFeatures()
    if kind == "encoder":
        if encoder is None:
            raise SvpgenError(
                "the particle-encoder features need --encoder (make one with svpgen train-encoder)"
            )
        return EncoderFeatures(encoder)
    if kind == "timm":
        if not (arch and weights):
            raise SvpgenError(
                "timm features need --feature-arch and --feature-weights (a local file)"
            )
        return TimmFeatures(arch, weights)
    if kind == "inception":
        if not weights:
            raise SvpgenError(
                "Inception features need --feature-weights (a local pt_inception weights file)"
            )
        return InceptionFeatures(weights)
    raise SvpgenError(f"unknown feature extractor {kind!r} (encoder, pixels, timm, inception)")
