"""The public Python interface (DESIGN.md): load trained models, sample, predict.

    from svpgen import Generator, Classifier
    g = Generator.load("runs/x/diffusion/silicone_oil")
    imgs = g.sample(256, sampler="dpmpp", steps=20, seed=0)   # uint8 (256, 64, 64)
    c = Classifier.load("runs/x/classifier/best")
    proba = c.predict_proba(imgs)                              # float (256, n_classes)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from svpgen.classify.predict import LoadedClassifier
from svpgen.config import DiffusionConfig


class Generator:
    """A trained per-class diffusion model (EMA weights)."""

    def __init__(self, model: torch.nn.Module, config: dict, path: Path | None = None):
        self.model, self.config, self.path = model, config, path
        self.label: str = config["label"]
        self.schedule = DiffusionConfig.from_dict(config["diffusion"]).schedule

    @classmethod
    def load(cls, path: str | Path) -> "Generator":
        from svpgen.diffusion.train import load_generator_model

        model, config = load_generator_model(path)
        return cls(model, config, Path(path))

    def sample(self, n: int, sampler: str = "dpmpp", steps: int | None = None, seed: int = 0, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
        """``n`` generated images, uint8 (n, 64, 64); deterministic per seed and batch size."""
        from svpgen.diffusion.sample import sample_images

        return sample_images(self.model, self.schedule, n, sampler, steps, seed, batch_size, device)[0]


class Classifier(LoadedClassifier):
    """A trained particle classifier: ``predict_proba(uint8 N×64×64)``, ``predict``, ``classes``."""

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Classifier":
        return cls(path, device)
