"""``svpgen train-classifier`` as a function: store(s) → train/tune split → training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from svpgen.classify.config import ClassifierConfig
from svpgen.classify.train import train_classifier
from svpgen.data.splits import check_disjoint, split_indices
from svpgen.data.store import Particles, ParticleStore
from svpgen.errors import SvpgenError


def labelled(store: ParticleStore, real_only: bool = False) -> Particles:
    """The store's labelled particles (optionally without generated ones)."""
    keep = (store.table["label"] != "unknown").to_numpy()
    if real_only:
        keep = keep & (store.table["source"] != "generated").to_numpy()
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        raise SvpgenError(f"{store.path}: no labelled particles to train on")
    return store.take(idx)


def split_train_tune(
    data: Particles, tune_fraction: float, seed: int
) -> tuple[Particles, Particles]:
    """A hash-disjoint, stratified (train, tune) split of labelled particles."""
    parts = split_indices(
        data.table, {"train": 1 - tune_fraction, "tune": tune_fraction}, seed=seed
    )
    train, tune = (
        Particles(data.images[parts[k]], data.table.iloc[parts[k]].reset_index(drop=True))
        for k in ("train", "tune")
    )
    return train, tune


def run_train_classifier(
    store_path: str | Path,
    out: str | Path,
    cfg: ClassifierConfig,
    *,
    tune_path: str | Path | None = None,
    tune_fraction: float = 0.15,
    resume: bool = False,
    device: str = "cpu",
    deploy_prior: dict[str, float] | None = None,
    minority: tuple[str, ...] | None = None,
    real_only: bool = False,
) -> str:
    """Train on a store (tuned on ``tune_path`` or a hash-disjoint share of it); return the summary text."""
    data = labelled(ParticleStore(store_path), real_only)
    if tune_path:
        train, tune = data, labelled(ParticleStore(tune_path))
    else:
        train, tune = split_train_tune(data, tune_fraction, cfg.seed)
    check_disjoint(train.table, tune.table, "training data", "tuning split")
    result = train_classifier(
        train,
        tune,
        out,
        cfg,
        resume=resume,
        device=device,
        deploy_prior=deploy_prior,
        minority=minority,
    )
    return (
        f"trained {cfg.arch} ({cfg.imbalance}) on {len(train)} images, tuned on {len(tune)}: "
        f"best epoch {result.best_epoch} of {result.epochs_run}, tuning macro AUPRC {result.best_score:.3f}, "
        f"{result.seconds / 60:.1f} min\nmodel: {Path(out)}/model.safetensors + config.json; history: {Path(out)}/history.csv"
    )
