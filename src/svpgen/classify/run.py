"""``svpgen train-classifier`` as a function: store(s) → train/tune split → training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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
    """Train on a store (tuned on ``tune_path`` or a hash-disjoint share of it); return the summary
    text."""
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
        f"best epoch {result.best_epoch} of {result.epochs_run}, tuning macro AUPRC "
        f"{result.best_score:.3f}, "
        f"{result.seconds / 60:.1f} min\nmodel: {Path(out)}/model.safetensors + config.json; "
        f"history: {Path(out)}/history.csv"
    )


def run_train_baseline(
    store_path: str | Path,
    out: str | Path,
    kind: str,
    *,
    features: str = "auto",
    deploy_prior: dict[str, float] | None = None,
    minority: tuple[str, ...] | None = None,
    seed: int = 0,
) -> str:
    """Fit a morphology baseline (rules, forest or boosting) on a store's labelled particles
    (and its measurements without images, when the features are export columns); return
    the summary text with the fitted rules."""
    from svpgen.classify.baselines import MorphologyModel
    from svpgen.data.classes import default_minority, paper_prevalence

    store = ParticleStore(store_path)
    particles = store.table["label"] != "unknown"
    measured = store.measurements
    if len(measured):
        measured = measured[measured["label"] != "unknown"]
    if particles.any() and not (features == "instrument" and len(measured)):
        data = store.take(np.flatnonzero(particles.to_numpy()))
        images, table = data.images, data.table
    elif len(measured):  # export columns only: the rows without images count too
        rows = [store.table[particles], measured]
        images, table, features = None, pd.concat(rows, ignore_index=True), "instrument"
    else:
        raise SvpgenError(f"{store_path}: no labelled particles to fit on")
    counts = table["label"].value_counts().to_dict()
    minority = minority if minority is not None else default_minority(counts)
    prior = deploy_prior or paper_prevalence(counts, minority)
    model = MorphologyModel.fit(kind, images, table, prior=prior, features=features, seed=seed)
    model.save_pretrained(out)
    return (
        f"fitted {kind} on {len(table)} particles "
        f"({', '.join(f'{c} {n}' for c, n in counts.items())})"
        f"\n{model.describe()}\nmodel: {Path(out)}/config.json"
        + (" + model.skops" if kind != "rules" else "")
    )
