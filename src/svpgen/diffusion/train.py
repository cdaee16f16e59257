"""``svpgen train-diffusion``: train one class's DDPM (paper Sec. 2.4, 3.1).

Per epoch the data order, augmentations, timesteps and noise come from a generator
seeded by (seed, epoch), so resuming from an epoch checkpoint continues exactly as an
uninterrupted run would. A non-finite loss stops training; the last good checkpoint stays.
Under ``torchrun`` each process trains on its share of every epoch (DistributedDataParallel).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from svpgen.data.augment import (
    SYMMETRIES,
    SYMMETRY_NAMES,
    Symmetry,
    invariant_symmetries,
    random_symmetry,
)
from svpgen.data.store import ParticleStore
from svpgen.diffusion.config import DiffusionConfig
from svpgen.diffusion.generator import Generator, build_network
from svpgen.diffusion.latent import latent_training_batch
from svpgen.diffusion.schedule import training_batch, training_scheduler
from svpgen.distributed import DistContext, setup, teardown
from svpgen.errors import SvpgenError
from svpgen.training import (
    TrainingDiverged,
    autocast,
    check_finite,
    epoch_generator,
    resume_state,
    save_checkpoint,
)

__all__ = [
    "EvalHook",
    "TrainResult",
    "TrainingDiverged",
    "diffusion_loss",
    "load_training_images",
    "to_model_range",
    "train_diffusion",
]

# Called at the configured FID epochs with a Generator around the current EMA weights.
EvalHook = Callable[[Generator, int], dict]
METRICS_FILE = "metrics.csv"


@dataclass
class TrainResult:
    """What a training run did: where, how long, on how many images, the final loss."""

    out: Path
    epochs: int
    images: int
    seconds: float
    final_loss: float


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 N×S×S → float N×1×S×S in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0).unsqueeze(1)


def diffusion_loss(
    model: torch.nn.Module,
    x_in: torch.Tensor,
    t: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The paper's L1 loss between the network's output and its target (ε for the paper),
    or MSE; optionally weighted per sample (min-SNR-γ)."""
    loss_fn = F.l1_loss if kind == "l1" else F.mse_loss
    per_sample = loss_fn(model(x_in, t), target, reduction="none").flatten(1).mean(1)
    return (
        per_sample.mean() if weight is None else (per_sample * weight.to(per_sample.device)).mean()
    )


def load_training_images(
    store_path: Path, label: str, max_images: int | None, seed: int
) -> np.ndarray:
    """Real (or simulated) images of one class; generated images are refused."""
    store = ParticleStore(store_path)
    idx = store.indices(label=label, source=("real", "simulated"))
    if len(idx) == 0:
        n_gen = len(store.indices(label=label, source="generated"))
        extra = (
            f" ({n_gen} generated images refused: a diffusion model trains on real images only)"
            if n_gen
            else ""
        )
        raise SvpgenError(f"{store_path}: no real images with label {label!r}{extra}")
    if max_images and len(idx) > max_images:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_images, replace=False))
    return np.asarray(store.images[idx])


@dataclass
class _Run:
    """The mutable state of one training run."""

    model: torch.nn.Module  # the U-Net or the latent network
    ema: AveragedModel
    opt: torch.optim.Optimizer
    net: torch.nn.Module  # the model, or its DDP wrapper
    rows: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    last_checkpoint: int | None = None
    last_plot: float = 0.0  # time.perf_counter() of the last curve update
    extra: dict = field(default_factory=dict)  # recorded in the model's config.json
    symmetries: tuple[Symmetry, ...] = SYMMETRIES  # what training augments with


def training_symmetries(
    cfg: DiffusionConfig, images: torch.Tensor
) -> tuple[tuple[Symmetry, ...], dict]:
    """The symmetries training augments with (``cfg.symmetries``) and what to record about
    them in the model's config.json; "auto" tests the training images (deterministic, so a
    resumed run, or every process of a distributed one, finds the same)."""
    if cfg.symmetries == "dihedral":
        return SYMMETRIES, {}
    if cfg.symmetries == "none":
        return ((0, False),), {"symmetries": ["identity"]}
    group, p = invariant_symmetries(images[:, 0].numpy())
    return group, {"symmetries": [SYMMETRY_NAMES[e] for e in group], "symmetry_p_values": p}


def _build(
    cfg: DiffusionConfig,
    ctx: DistContext,
    state: dict | None,
    state_file: Path,
    images: torch.Tensor,
    init_from: Path | None = None,
) -> _Run:
    torch.manual_seed(cfg.seed)
    symmetries, recorded = training_symmetries(cfg, images)
    model = build_network(cfg)
    if (
        init_from is not None and state is None
    ):  # fine-tune a pretrained model (e.g. one trained on protein images)
        prior = Generator.from_pretrained(init_from, "cpu")
        if prior.config.architecture() != cfg.architecture():
            raise SvpgenError(
                f"{init_from}: its network or noise schedule differs from this training run's; "
                "fine-tune with the same settings"
            )
        model.load_state_dict(prior.unet.state_dict())
    elif (
        cfg.network == "pca-mlp" and state is None
    ):  # the latent space of this class's training images
        model.fit(images, symmetries)
    model = model.to(
        ctx.device,
        memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format,
    )
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = _Run(
        model,
        ema,
        opt,
        DistributedDataParallel(model) if ctx.world > 1 else model,
        extra={
            **recorded,
            **({"fine_tuned_from": str(init_from)} if init_from is not None else {}),
        },
        symmetries=symmetries,
    )
    if state is not None:
        saved = DiffusionConfig.from_dict(state["config"])
        if saved.architecture() != cfg.architecture():
            raise SvpgenError(
                f"{state_file}: saved model/schedule differ from the requested preset; resume "
                "with the same settings"
            )
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        run.rows, run.start_epoch = list(state["metrics"]), int(state["epoch"])
        run.last_checkpoint = run.start_epoch
    return run


def learning_rate(cfg: DiffusionConfig, step: int, total_steps: int) -> float:
    """``constant``: ``cfg.lr``; ``cosine``: a linear warm-up over the first 5% of the steps,
    then half a cosine from ``cfg.lr`` down to 0 at the last step."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    warmup = max(1, total_steps // 20)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return (
        cfg.lr
        * 0.5
        * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup - 1))))
    )


def _train_epoch(
    run: _Run,
    images: torch.Tensor,
    cfg: DiffusionConfig,
    epoch: int,
    ctx: DistContext,
    out: Path,
    bar: tqdm,
) -> dict:
    """One pass over this process's share of the images; returns the epoch's metrics row."""
    g = epoch_generator(cfg.seed, epoch)
    perm = torch.randperm(len(images), generator=g)
    if ctx.world > 1:
        perm = perm[: len(perm) - len(perm) % ctx.world][ctx.rank :: ctx.world]
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    ddpm = training_scheduler(cfg.schedule) if cfg.schedule.objective != "edm" else None
    start, losses, seen = time.perf_counter(), [], 0
    run.model.train()
    steps_per_epoch = -(-len(perm) // cfg.batch_size)
    for b in range(0, len(perm), cfg.batch_size):
        for group in (
            run.opt.param_groups
        ):  # from the step index alone, so a resumed run continues the schedule
            group["lr"] = learning_rate(
                cfg,
                (epoch - 1) * steps_per_epoch + b // cfg.batch_size,
                cfg.epochs * steps_per_epoch,
            )
        x0 = random_symmetry(images[perm[b : b + cfg.batch_size]], run.symmetries, g)
        if cfg.network == "pca-mlp":
            x_in, t, target, weight = latent_training_batch(
                run.model, cfg.schedule, x0.to(ctx.device), g
            )
        else:
            x_in, t, target, weight = training_batch(cfg.schedule, x0, g, ddpm, cfg.min_snr_gamma)
        x_in = x_in.to(ctx.device, memory_format=memory_format) if x_in.dim() == 4 else x_in
        with autocast(ctx.device):
            loss = diffusion_loss(
                run.net, x_in, t.to(ctx.device), target.to(ctx.device), cfg.loss, weight
            )
        value = ctx.all_mean(float(loss.detach()))
        check_finite(value, epoch, b // cfg.batch_size + 1, out, run.last_checkpoint)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        run.opt.step()
        run.ema.update_parameters(run.model)
        losses.append(value)
        seen += len(x0) * ctx.world
        bar.update(1)
        # refresh=False: the bar redraws at tqdm's own pace (a latent model makes ~40 steps/s)
        bar.set_postfix(
            epoch=epoch,
            loss=f"{value:.4f}",
            img_s=f"{seen / (time.perf_counter() - start):.1f}",
            refresh=False,
        )
    return {
        "epoch": epoch,
        "loss": float(np.mean(losses)),
        "lr": run.opt.param_groups[0]["lr"],
        "images_per_s": seen / (time.perf_counter() - start),
    }


PLOT_EVERY_S = 60.0  # curves are redrawn at a checkpoint at most this often, and at the end


def _checkpoint(
    out: Path, run: _Run, epoch: int, cfg: DiffusionConfig, label: str, n: int, store_path: Path
) -> None:
    state = {
        "model": run.model.state_dict(),
        "ema": run.ema.state_dict(),
        "optimizer": run.opt.state_dict(),
        "epoch": epoch,
        "metrics": run.rows,
        "config": cfg.to_dict(),
    }
    save_checkpoint(out, state, run.rows, METRICS_FILE)
    Generator(
        run.ema.module,
        cfg,
        label,
        {"trained_epochs": epoch, "train_images": n, "store": str(store_path), **run.extra},
        device=str(next(run.ema.module.parameters()).device),
    ).save_pretrained(out)
    if epoch == cfg.epochs or time.perf_counter() - run.last_plot > PLOT_EVERY_S:
        _plot_curves(run.rows, out)
        run.last_plot = time.perf_counter()


def _plot_curves(rows: list[dict], out: Path) -> None:
    from svpgen.plots import line_curves

    epochs = [r["epoch"] for r in rows]
    line_curves(
        {"training loss": (epochs, [r["loss"] for r in rows])},
        out / "loss.png",
        "epoch",
        "loss",
        "diffusion training loss",
    )
    fid = [
        (r["epoch"], r["fid"])
        for r in rows
        if r.get("fid") is not None and np.isfinite(r.get("fid", np.nan))
    ]
    if fid:
        line_curves(
            {"FID": tuple(zip(*fid))},
            out / "fid.png",
            "epoch",
            "FID (particle encoder)",
            "FID during training",
        )


def train_diffusion(
    store_path: str | Path,
    out: str | Path,
    label: str,
    cfg: DiffusionConfig,
    *,
    resume: bool = False,
    eval_hook: EvalHook | None = None,
    progress: bool = True,
    device: str | None = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train a DDPM on one class; write the model, ``metrics.csv`` and curves to ``out``.
    ``eval_hook(generator, epoch)`` runs at ``cfg.fid_epochs`` and adds to the metrics row;
    ``init_from`` starts from another trained model's weights (fine-tuning)."""
    out, store_path = Path(out), Path(store_path)
    ctx = setup(device)
    try:
        state = resume_state(out, resume)
        images = to_model_range(load_training_images(store_path, label, cfg.max_images, cfg.seed))
        run = _build(cfg, ctx, state, out, images, Path(init_from) if init_from else None)
        out.mkdir(parents=True, exist_ok=True)
        steps_per_epoch = max(1, (len(images) // ctx.world + cfg.batch_size - 1) // cfg.batch_size)
        bar = tqdm(
            total=(cfg.epochs - run.start_epoch) * steps_per_epoch,
            unit="step",
            desc=f"diffusion {label}",
            disable=not (progress and ctx.is_main),
        )
        t_start = time.perf_counter()
        for epoch in range(run.start_epoch + 1, cfg.epochs + 1):
            row = _train_epoch(run, images, cfg, epoch, ctx, out, bar)
            row["seconds"] = time.perf_counter() - t_start
            if eval_hook is not None and epoch in cfg.fid_epochs and ctx.is_main:
                row.update(
                    eval_hook(Generator(run.ema.module, cfg, label, device=str(ctx.device)), epoch)
                )
            run.rows.append(row)
            if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                if ctx.is_main:
                    _checkpoint(out, run, epoch, cfg, label, len(images), store_path)
                ctx.barrier()
                run.last_checkpoint = epoch
        bar.close()
        final = run.rows[-1]["loss"] if run.rows else float("nan")
        return TrainResult(out, cfg.epochs, len(images), time.perf_counter() - t_start, final)
    finally:
        teardown()
