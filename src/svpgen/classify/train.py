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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score
from sklearn.preprocessing import label_binarize
from torch.utils.data import WeightedRandomSampler
from tqdm import tqdm

from svpgen import __version__
from svpgen.atomic import write_csv
from svpgen.checkpoint import load_state, save_artefact, save_state
from svpgen.classify.models import build_classifier, to_input
from svpgen.config import ClassifierConfig
from svpgen.data.augment import dihedral
from svpgen.data.classes import CANONICAL_CLASSES
from svpgen.data.store import Particles
from svpgen.errors import SvpgenError

IMBALANCE = ("none", "weighted", "oversample", "logit-adjust")
PAPER_PREVALENCE = {"protein": 1000.0, "silicone_oil": 1.0, "air_bubble": 1.0}


@dataclass
class ClassifierResult:
    out: Path
    best_epoch: int
    best_score: float
    epochs_run: int
    seconds: float


def class_order(labels) -> list[str]:
    present = set(labels)
    return [c for c in CANONICAL_CLASSES if c in present]


def encode(labels, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise SvpgenError(f"labels {unknown} are not among the model's classes {classes}")
    return np.array([index[x] for x in labels], dtype=np.int64)


def normalise_prior(prior: dict[str, float] | None, classes: list[str]) -> np.ndarray:
    """Deployment class prior in ``classes`` order. Default: the paper's 1000:1:1, with
    any further class weighted like a minority class."""
    if prior is None:
        p = np.array([PAPER_PREVALENCE.get(c, 1.0) for c in classes], dtype=np.float64)
    else:
        missing = [c for c in classes if c not in prior]
        if missing:
            raise SvpgenError(f"deployment prior lacks class(es) {missing}")
        p = np.array([prior[c] for c in classes], dtype=np.float64)
    return p / p.sum()


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, images: np.ndarray, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """Raw logits for uint8 N×64×64 images, batched, channels_last."""
    model.eval()
    outs = []
    for start in range(0, len(images), batch_size):
        x = to_input(torch.from_numpy(np.array(images[start : start + batch_size])))  # a writable copy of the batch
        outs.append(model(x.to(device, memory_format=torch.channels_last)).float().cpu())
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), np.float32)


def macro_auprc(y: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """One-vs-rest average precision, averaged over classes present in ``y``."""
    onehot = label_binarize(y, classes=list(range(n_classes)))
    present = onehot.sum(0) > 0
    return float(average_precision_score(onehot[:, present], proba[:, present], average="macro"))


def train_classifier(
    train: Particles,
    tune: Particles,
    out: str | Path,
    cfg: ClassifierConfig,
    resume: bool = False,
    progress: bool = True,
    device: str = "cpu",
    deploy_prior: dict[str, float] | None = None,
) -> ClassifierResult:
    """Train, select the best epoch by tuning macro AUPRC, write the artefact to ``out``."""
    out = Path(out)
    if cfg.imbalance not in IMBALANCE:
        raise SvpgenError(f"unknown imbalance strategy {cfg.imbalance!r}; choose from {', '.join(IMBALANCE)}")
    if cfg.optimizer not in ("adam", "adamw"):
        raise SvpgenError(f"unknown optimizer {cfg.optimizer!r} (adam or adamw)")
    state_path = out / "training_state.pt"
    if not resume and state_path.exists():
        raise SvpgenError(f"{out} already holds a training run; pass --resume to continue it or choose a new OUT")
    classes = class_order(train.table["label"])
    if len(classes) < 2:
        raise SvpgenError(f"training data has {len(classes)} class(es) {classes}; need at least 2")
    y_train = encode(train.table["label"], classes)
    y_tune = encode(tune.table["label"], classes)
    counts = np.bincount(y_train, minlength=len(classes)).astype(np.float64)
    train_prior = counts / counts.sum()
    images = torch.from_numpy(np.ascontiguousarray(train.images))

    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.arch, len(classes), cfg.stem, cfg.pretrained).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    class_weight = torch.tensor(counts.sum() / (len(classes) * counts), dtype=torch.float32) if cfg.imbalance == "weighted" else None
    sample_weight = torch.tensor(1.0 / counts[y_train], dtype=torch.double) if cfg.imbalance == "oversample" else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else torch.autocast("cpu", enabled=False)

    history: list[dict] = []
    start_epoch, best_score, best_epoch, bad_epochs = 0, -1.0, 0, 0
    if resume:
        state = load_state(state_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, start_epoch = list(state["history"]), int(state["epoch"])
        best_score, best_epoch, bad_epochs = float(state["best_score"]), int(state["best_epoch"]), int(state["bad_epochs"])
    artefact = {
        "kind": "svpgen-classifier",
        "classes": classes,
        "classifier": cfg.to_dict(),
        "train_counts": dict(zip(classes, counts.astype(int).tolist())),
        "train_prior": train_prior.tolist(),
        "deploy_prior": normalise_prior(deploy_prior, classes).tolist() if cfg.imbalance == "logit-adjust" else None,
        "package_version": __version__,
    }
    n = len(images)
    steps = (n + cfg.batch_size - 1) // cfg.batch_size
    bar = tqdm(total=(cfg.epochs - start_epoch) * steps, unit="step", desc=f"{cfg.arch} {cfg.imbalance}", disable=not progress)
    t0 = time.perf_counter()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        if bad_epochs >= cfg.patience:  # early stopping (also when resuming a stopped run)
            break
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        if sample_weight is not None:
            order = torch.tensor(list(WeightedRandomSampler(sample_weight, n, replacement=True, generator=g)))
        else:
            order = torch.randperm(n, generator=g)
        model.train()
        losses, ep_start = [], time.perf_counter()
        for b in range(0, n, cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            x = to_input(dihedral(images[idx].unsqueeze(1), g).squeeze(1)).to(device, memory_format=torch.channels_last)
            target = torch.from_numpy(y_train[idx.numpy()]).to(device)
            with autocast:
                loss = F.cross_entropy(model(x), target, weight=None if class_weight is None else class_weight.to(device))
            if not torch.isfinite(loss):
                raise SvpgenError(f"non-finite classifier loss at epoch {epoch}; best model so far kept in {out}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.3f}")
        logits = predict_logits(model, tune.images, device=device)
        proba = torch.softmax(torch.from_numpy(logits), 1).numpy()
        score = macro_auprc(y_tune, proba, len(classes))
        tune_loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y_tune)))
        history.append({
            "epoch": epoch, "train_loss": float(np.mean(losses)), "tune_loss": tune_loss, "tune_macro_auprc": score,
            "images_per_s": n / (time.perf_counter() - ep_start), "seconds": time.perf_counter() - t0,
        })
        out.mkdir(parents=True, exist_ok=True)
        if score > best_score:
            best_score, best_epoch, bad_epochs = score, epoch, 0
            save_artefact(out, model.state_dict(), {**artefact, "best_epoch": epoch, "tune_macro_auprc": score})
        else:
            bad_epochs += 1
        save_state({
            "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "history": history,
            "best_score": best_score, "best_epoch": best_epoch, "bad_epochs": bad_epochs, "config": cfg.to_dict(),
        }, state_path)
        write_csv(out / "history.csv", history)
    bar.close()
    if history:
        from svpgen.plots import line_curves

        ep = [h["epoch"] for h in history]
        line_curves({"train": (ep, [h["train_loss"] for h in history]), "tune": (ep, [h["tune_loss"] for h in history])},
                    out / "loss.png", "epoch", "cross-entropy", f"{cfg.arch} ({cfg.imbalance})")
    return ClassifierResult(out, best_epoch, best_score, history[-1]["epoch"] if history else 0, time.perf_counter() - t0)
