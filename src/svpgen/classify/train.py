"""``svpgen train-classifier``: a timm ResNet on Real-n / Mixed-n data (paper Sec. 2.5).

Model selection and early stopping use a separate tuning split — never the evaluation
set. Imbalance strategies: ``none`` (the paper), ``weighted`` (inverse-frequency
cross-entropy weights), ``oversample`` (``WeightedRandomSampler``), ``logit-adjust``
(train as ``none``; at prediction add log(deployment prior) − log(training prior) to the
logits, Menon et al. 2021). Each epoch's data order and augmentations come from a
generator seeded by (seed, epoch), so ``--resume`` continues exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score
from torch.utils.data import WeightedRandomSampler
from tqdm import tqdm

from svpgen.classify.classifier import Classifier
from svpgen.classify.config import ClassifierConfig
from svpgen.classify.models import batched_outputs, build_classifier, to_input
from svpgen.data.augment import dihedral
from svpgen.data.classes import default_minority, ordered_classes, paper_prevalence
from svpgen.data.store import Particles
from svpgen.errors import SvpgenError
from svpgen.training import autocast, check_finite, epoch_generator, resume_state, save_checkpoint

HISTORY_FILE = "history.csv"


@dataclass
class ClassifierResult:
    """What a training run did: the best epoch and its tuning score, epochs run, time."""

    out: Path
    best_epoch: int
    best_score: float
    epochs_run: int
    seconds: float


def class_order(labels) -> list[str]:
    """The classes present in ``labels``: canonical ones first, then a lab's own names."""
    return ordered_classes(labels)


def encode(labels, classes: list[str]) -> np.ndarray:
    """Class names → integer indices into ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise SvpgenError(f"labels {unknown} are not among the model's classes {classes}")
    return np.array([index[x] for x in labels], dtype=np.int64)


def normalise_prior(
    prior: dict[str, float] | None, classes: list[str], minority: tuple[str, ...] = ()
) -> np.ndarray:
    """Deployment class prior in ``classes`` order. Default (``prior`` None): the paper's
    1000:1 between each majority class and each ``minority`` class."""
    if prior is None:
        p = np.array(list(paper_prevalence(classes, minority).values()), dtype=np.float64)
    else:
        missing = [c for c in classes if c not in prior]
        if missing:
            raise SvpgenError(f"deployment prior lacks class(es) {missing}")
        p = np.array([prior[c] for c in classes], dtype=np.float64)
    return p / p.sum()


def macro_auprc(y: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """One-vs-rest average precision, averaged over classes present in ``y``."""
    onehot = np.eye(n_classes, dtype=int)[y]  # label_binarize gives one column for two classes
    present = onehot.sum(0) > 0
    return float(average_precision_score(onehot[:, present], proba[:, present], average="macro"))


@dataclass
class _Run:
    """The mutable state of one training run."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best_score: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0


def _build(cfg: ClassifierConfig, n_classes: int, device: str, state: dict | None) -> _Run:
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.arch, n_classes, cfg.stem, cfg.pretrained, cfg.in_chans).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    run = _Run(model, opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay))
    if state is not None:
        model.load_state_dict(state["model"])
        run.opt.load_state_dict(state["optimizer"])
        run.history, run.start_epoch = list(state["history"]), int(state["epoch"])
        run.best_score, run.best_epoch, run.bad_epochs = (
            float(state["best_score"]),
            int(state["best_epoch"]),
            int(state["bad_epochs"]),
        )
    return run


def _epoch_order(n: int, g: torch.Generator, sample_weight: torch.Tensor | None) -> torch.Tensor:
    if sample_weight is None:
        return torch.randperm(n, generator=g)
    return torch.tensor(
        list(WeightedRandomSampler(sample_weight, n, replacement=True, generator=g))
    )


def _train_epoch(
    run: _Run,
    images: torch.Tensor,
    y: np.ndarray,
    cfg: ClassifierConfig,
    epoch: int,
    device: str,
    class_weight: torch.Tensor | None,
    sample_weight: torch.Tensor | None,
    out: Path,
    bar: tqdm,
) -> float:
    """One pass over the training images; returns the mean training loss."""
    g = epoch_generator(cfg.seed, epoch)
    order = _epoch_order(len(images), g, sample_weight)
    run.model.train()
    losses = []
    for b in range(0, len(images), cfg.batch_size):
        idx = order[b : b + cfg.batch_size]
        x = to_input(dihedral(images[idx].unsqueeze(1), g).squeeze(1), cfg).to(
            device, memory_format=torch.channels_last
        )
        target = torch.from_numpy(y[idx.numpy()]).to(device)
        with autocast(device):
            loss = F.cross_entropy(
                run.model(x),
                target,
                weight=None if class_weight is None else class_weight.to(device),
            )
        check_finite(
            float(loss.detach()), epoch, b // cfg.batch_size + 1, out, run.best_epoch or None
        )
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.3f}")
    return float(np.mean(losses))


def _tune_scores(
    model: torch.nn.Module,
    tune: Particles,
    y_tune: np.ndarray,
    n_classes: int,
    device: str,
    cfg: ClassifierConfig,
) -> tuple[float, float]:
    """(macro AUPRC, cross-entropy) on the tuning split."""
    logits = batched_outputs(model, tune.images, device=device, spec=cfg)
    proba = torch.softmax(torch.from_numpy(logits), 1).numpy()
    return macro_auprc(y_tune, proba, n_classes), float(
        F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y_tune))
    )


def train_classifier(
    train: Particles,
    tune: Particles,
    out: str | Path,
    cfg: ClassifierConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    device: str = "cpu",
    deploy_prior: dict[str, float] | None = None,
    minority: tuple[str, ...] | None = None,
) -> ClassifierResult:
    """Train, select the best epoch by tuning macro AUPRC, write the artefact to ``out``.
    ``deploy_prior`` (logit adjustment's target prevalence) defaults to the paper's 1000:1
    between the majority classes and ``minority`` (default: the paper's minority classes
    present, else every class but the most frequent)."""
    out = Path(out)
    state = resume_state(out, resume)
    classes = class_order(train.table["label"])
    if len(classes) < 2:
        raise SvpgenError(f"training data has {len(classes)} class(es) {classes}; need at least 2")
    y_train, y_tune = encode(train.table["label"], classes), encode(tune.table["label"], classes)
    counts = np.bincount(y_train, minlength=len(classes)).astype(np.float64)
    images = torch.from_numpy(np.ascontiguousarray(train.images))
    run = _build(cfg, len(classes), device, state)
    class_weight = (
        torch.tensor(counts.sum() / (len(classes) * counts), dtype=torch.float32)
        if cfg.imbalance == "weighted"
        else None
    )
    sample_weight = (
        torch.tensor(1.0 / counts[y_train], dtype=torch.double)
        if cfg.imbalance == "oversample"
        else None
    )
    metadata = {
        "train_counts": dict(zip(classes, counts.astype(int).tolist())),
        "train_prior": (counts / counts.sum()).tolist(),
        "deploy_prior": normalise_prior(
            deploy_prior,
            classes,
            default_minority(dict(zip(classes, counts))) if minority is None else minority,
        ).tolist()
        if cfg.imbalance == "logit-adjust"
        else None,
    }
    steps = (len(images) + cfg.batch_size - 1) // cfg.batch_size
    epochs, every = cfg.epochs_for(steps), cfg.evaluate_every(steps)
    bar = tqdm(
        total=(epochs - run.start_epoch) * steps,
        unit="step",
        desc=f"{cfg.arch} {cfg.imbalance}",
        disable=not progress,
    )
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    for epoch in range(run.start_epoch + 1, epochs + 1):
        # early stopping (also when resuming a stopped run), once min_steps are done
        if run.bad_epochs >= cfg.patience and (epoch - 1) * steps >= cfg.min_steps:
            break
        ep_start = time.perf_counter()
        train_loss = _train_epoch(
            run, images, y_train, cfg, epoch, device, class_weight, sample_weight, out, bar
        )
        if epoch % every and epoch != epochs:
            continue  # evaluated (and checkpointed) every ``every`` epochs and after the last
        score, tune_loss = _tune_scores(run.model, tune, y_tune, len(classes), device, cfg)
        run.history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "tune_loss": tune_loss,
                "tune_macro_auprc": score,
                "images_per_s": len(images) / (time.perf_counter() - ep_start),
                "seconds": time.perf_counter() - t0,
            }
        )
        if score > run.best_score:
            run.best_score, run.best_epoch, run.bad_epochs = score, epoch, 0
            best = {**metadata, "best_epoch": epoch, "tune_macro_auprc": score}
            Classifier(run.model, classes, cfg, best, device).save_pretrained(out)
        else:
            run.bad_epochs += 1
        save_checkpoint(
            out,
            {
                "model": run.model.state_dict(),
                "optimizer": run.opt.state_dict(),
                "epoch": epoch,
                "history": run.history,
                "best_score": run.best_score,
                "best_epoch": run.best_epoch,
                "bad_epochs": run.bad_epochs,
                "config": cfg.to_dict(),
            },
            run.history,
            HISTORY_FILE,
        )
    bar.close()
    _plot_history(run.history, out, cfg)
    last = run.history[-1]["epoch"] if run.history else 0
    return ClassifierResult(out, run.best_epoch, run.best_score, last, time.perf_counter() - t0)


def _plot_history(history: list[dict], out: Path, cfg: ClassifierConfig) -> None:
    if not history:
        return
    from svpgen.plots import line_curves

    ep = [h["epoch"] for h in history]
    line_curves(
        {
            "train": (ep, [h["train_loss"] for h in history]),
            "tune": (ep, [h["tune_loss"] for h in history]),
        },
        out / "loss.png",
        "epoch",
        "cross-entropy",
        f"{cfg.arch} ({cfg.imbalance})",
    )
