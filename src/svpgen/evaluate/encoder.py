"""The particle encoder: the feature space of FID/KID/precision/recall for particles.

Nothing can download Inception weights here, so the encoder is trained from the data: a
ResNet-18 classifier of every class on real images, balanced by oversampling; its
penultimate features (:meth:`Classifier.embed`) are the encoder's output.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from svpgen.classify.config import ClassifierConfig
from svpgen.classify.train import ClassifierResult, train_classifier
from svpgen.data.store import Particles


def encoder_config(epochs: int, seed: int = 0, preset: str = "quick") -> ClassifierConfig:
    """The particle-encoder recipe: the preset's ResNet-18, oversampled to balance classes,
    for exactly ``epochs`` epochs (no ``min_steps`` extension)."""
    return replace(
        ClassifierConfig.from_preset(preset),
        epochs=epochs,
        imbalance="oversample",
        seed=seed,
        min_steps=0,
    )


def train_particle_encoder(
    train: Particles,
    tune: Particles,
    out: str | Path,
    *,
    epochs: int = 5,
    seed: int = 0,
    preset: str = "quick",
    device: str = "cpu",
    resume: bool = False,
) -> ClassifierResult:
    """Train the particle encoder on real labelled ``train`` images (model selection on
    ``tune``)."""
    return train_classifier(
        train, tune, out, encoder_config(epochs, seed, preset), resume=resume, device=device
    )
