"""``svpgen train-diffusion`` as a function: preset + overrides → training → summary text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from svpgen.data.classes import UNKNOWN, canonical_label
from svpgen.device import resolve_device
from svpgen.diffusion.config import DiffusionConfig
from svpgen.errors import SvpgenError
from svpgen.options import with_overrides


def run_train_diffusion(store, out, label: str, preset_name: str = "quick", resume: bool = False, device: str = "auto",
                        eval_hook_factory=None, timesteps: int | None = None, **overrides) -> str:
    """Train ``label``'s model from a preset with CLI overrides; return the summary text.
    ``eval_hook_factory(label, cfg)`` may return a per-epoch FID/KID hook."""
    from svpgen.diffusion.train import train_diffusion

    canon = canonical_label(label)
    if canon in (None, UNKNOWN):
        raise SvpgenError(f"--label {label!r} is not a particle class")
    cfg = with_overrides(DiffusionConfig.from_preset(preset_name), **overrides)
    if timesteps:
        cfg = replace(cfg, schedule=replace(cfg.schedule, timesteps=timesteps))
    hook = eval_hook_factory(canon, cfg) if eval_hook_factory and cfg.fid_epochs else None
    result = train_diffusion(store, out, canon, cfg, resume, hook, device=resolve_device(device))
    return (
        f"trained {canon} diffusion ({preset_name}) on {result.images} images for {result.epochs} epochs "
        f"in {result.seconds / 60:.1f} min (final loss {result.final_loss:.4f})\n"
        f"model: {Path(out)}/model.safetensors + config.json; metrics: {Path(out)}/metrics.csv; curves: {Path(out)}/loss.png"
    )
