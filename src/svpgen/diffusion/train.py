"""``svpgen train-diffusion``: train one class's DDPM (paper Sec. 2.4, 3.1).

Per epoch the data order, augmentations, timesteps and noise come from a generator
seeded by (seed, epoch), so resuming from an epoch checkpoint continues exactly as an
uninterrupted run would. A non-finite loss stops training; the last good checkpoint stays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from svpgen import __version__
from svpgen.atomic import write_csv
from svpgen.checkpoint import load_state, read_config, save_artefact, save_state
from svpgen.config import DiffusionConfig
from svpgen.data.augment import dihedral
from svpgen.data.store import ParticleStore
from svpgen.diffusion.schedule import training_scheduler
from svpgen.diffusion.unet import UNet
from svpgen.distributed import DistContext, setup, teardown
from svpgen.errors import SvpgenError

EvalHook = Callable[[torch.nn.Module, int], dict]


class TrainingDiverged(SvpgenError):
    """The loss became NaN/inf; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    out: Path
    epochs: int
    images: int
    seconds: float
    final_loss: float


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 N×64×64 → float N×1×64×64 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0).unsqueeze(1)


def diffusion_loss(model: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, kind: str) -> torch.Tensor:
    """The paper's L1 loss on the predicted noise (``mse`` as an option)."""
    pred = model(x_t, t)
    return F.l1_loss(pred, noise) if kind == "l1" else F.mse_loss(pred, noise)


def load_training_images(store_path: Path, label: str, max_images: int | None, seed: int) -> np.ndarray:
    """Real (or simulated) images of one class; generated images are refused."""
    store = ParticleStore(store_path)
    idx = store.indices(label=label, source=("real", "simulated"))
    if len(idx) == 0:
        n_gen = len(store.indices(label=label, source="generated"))
        extra = f" ({n_gen} generated images refused: a diffusion model trains on real images only)" if n_gen else ""
        raise SvpgenError(f"{store_path}: no real images with label {label!r}{extra}")
    if max_images and len(idx) > max_images:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_images, replace=False))
    return np.asarray(store.images[idx])


def _plot_curves(rows: list[dict], out: Path) -> None:
    from svpgen.plots import line_curves

    epochs = [r["epoch"] for r in rows]
    line_curves({"training loss": (epochs, [r["loss"] for r in rows])}, out / "loss.png", "epoch", "loss", "diffusion training loss")
    fid = [(r["epoch"], r["fid"]) for r in rows if r.get("fid") is not None and np.isfinite(r.get("fid", np.nan))]
    if fid:
        line_curves({"FID": tuple(zip(*fid))}, out / "fid.png", "epoch", "FID (particle encoder)", "FID during training")


def _artefact_config(cfg: DiffusionConfig, label: str, epoch: int, n_images: int, store: Path) -> dict:
    return {
        "kind": "svpgen-diffusion",
        "label": label,
        "diffusion": cfg.to_dict(),
        "trained_epochs": epoch,
        "train_images": n_images,
        "store": str(store),
        "package_version": __version__,
    }


def train_diffusion(
    store_path: str | Path,
    out: str | Path,
    label: str,
    cfg: DiffusionConfig,
    resume: bool = False,
    eval_hook: EvalHook | None = None,
    progress: bool = True,
    device: str | None = None,
) -> TrainResult:
    """Train a DDPM on one class; write the artefact, metrics.csv and curves to ``out``."""
    out = Path(out)
    ctx: DistContext = setup(device)
    try:
        return _train(Path(store_path), out, label, cfg, resume, eval_hook, progress and ctx.is_main, ctx)
    finally:
        teardown()


def _train(store_path, out, label, cfg, resume, eval_hook, progress, ctx: DistContext) -> TrainResult:
    if cfg.loss not in ("l1", "mse"):
        raise SvpgenError(f"unknown loss {cfg.loss!r} (use l1 or mse)")
    state_path = out / "training_state.pt"
    if not resume and state_path.exists():
        raise SvpgenError(f"{out} already holds a training run; pass --resume to continue it or choose a new OUT")
    images = to_model_range(load_training_images(store_path, label, cfg.max_images, cfg.seed))
    n = len(images)
    torch.manual_seed(cfg.seed)
    model = UNet(cfg.unet).to(ctx.device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rows: list[dict] = []
    start_epoch = 0
    if resume:
        state = load_state(state_path)
        saved = DiffusionConfig.from_dict(state["config"])
        if saved.unet != cfg.unet or saved.schedule != cfg.schedule:
            raise SvpgenError(f"{state_path}: saved model/schedule differ from the requested preset; resume with the same settings")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        rows, start_epoch = list(state["metrics"]), int(state["epoch"])
    net = DistributedDataParallel(model) if ctx.world > 1 else model
    sched = training_scheduler(cfg.schedule)
    T = cfg.schedule.timesteps
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if ctx.device.type == "cuda" else torch.autocast("cpu", enabled=False)
    out.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = max(1, (n // ctx.world + cfg.batch_size - 1) // cfg.batch_size)
    bar = tqdm(total=(cfg.epochs - start_epoch) * steps_per_epoch, unit="step", desc=f"diffusion {label}", disable=not progress)
    t_start = time.perf_counter()
    last_ckpt = start_epoch if resume else None
    loss_value = float("nan")
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g)
        perm = perm[: len(perm) - len(perm) % ctx.world][ctx.rank :: ctx.world] if ctx.world > 1 else perm
        epoch_start, losses, seen = time.perf_counter(), [], 0
        model.train()
        for b in range(0, len(perm), cfg.batch_size):
            idx = perm[b : b + cfg.batch_size]
            x0 = dihedral(images[idx], g)
            t = torch.randint(0, T, (len(x0),), generator=g)
            noise = torch.randn(x0.shape, generator=g)
            x_t = sched.add_noise(x0, noise, t)
            x_t, t, noise = x_t.to(ctx.device, memory_format=memory_format), t.to(ctx.device), noise.to(ctx.device)
            with autocast:
                loss = diffusion_loss(net, x_t, t, noise, cfg.loss)
            loss_value = ctx.all_mean(float(loss.detach()))
            if not np.isfinite(loss_value):
                where = f"last good checkpoint: epoch {last_ckpt} in {out}" if last_ckpt else "no checkpoint was written yet"
                raise TrainingDiverged(f"non-finite loss ({loss_value}) at epoch {epoch}, batch {b // cfg.batch_size + 1}; training stopped ({where})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            ema.update_parameters(model)
            losses.append(loss_value)
            seen += len(x0) * ctx.world
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss_value:.4f}", img_s=f"{seen / (time.perf_counter() - epoch_start):.1f}")
        row = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "lr": opt.param_groups[0]["lr"],
            "images_per_s": seen / (time.perf_counter() - epoch_start),
            "seconds": time.perf_counter() - t_start,
        }
        if eval_hook is not None and epoch in cfg.fid_epochs and ctx.is_main:
            row.update(eval_hook(ema.module, epoch))
        rows.append(row)
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            if ctx.is_main:
                _checkpoint(out, model, ema, opt, epoch, rows, cfg, label, n, store_path)
            ctx.barrier()
            last_ckpt = epoch
    bar.close()
    return TrainResult(out, cfg.epochs, n, time.perf_counter() - t_start, loss_value)


def _checkpoint(out, model, ema, opt, epoch, rows, cfg, label, n, store_path) -> None:
    state = {
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": epoch,
        "metrics": rows,
        "config": cfg.to_dict(),
    }
    save_state(state, out / "training_state.pt")
    save_artefact(out, ema.module.state_dict(), _artefact_config(cfg, label, epoch, n, store_path))
    write_csv(out / "metrics.csv", rows)
    _plot_curves(rows, out)


def load_generator_model(path: str | Path) -> tuple[UNet, dict]:
    """The EMA U-Net and artefact config of a trained diffusion model directory."""
    from svpgen.checkpoint import load_weights

    path = Path(path)
    config = read_config(path)
    if config.get("kind") != "svpgen-diffusion":
        raise SvpgenError(f"{path}: not a diffusion model (kind={config.get('kind')!r})")
    cfg = DiffusionConfig.from_dict(config["diffusion"])
    model = UNet(cfg.unet)
    model.load_state_dict(load_weights(path / "model.safetensors"))
    model.eval()
    return model, config
