"""``svpgen train-diffusion`` as a function: preset + overrides → training → summary text."""

from __future__ import annotations

from svpgen.config import preset as get_preset
from svpgen.config import with_overrides
from svpgen.distributed import pick_device


def run_train_diffusion(store, out, label, preset_name="quick", resume=False, device="auto", eval_hook_factory=None, timesteps=None, **overrides) -> str:
    """``eval_hook_factory(cfg)`` may return a per-epoch FID/KID hook (see study.audit)."""
    from dataclasses import replace

    from svpgen.diffusion.train import train_diffusion

    cfg = with_overrides(get_preset("diffusion", preset_name), **overrides)
    if timesteps:
        cfg = replace(cfg, schedule=replace(cfg.schedule, timesteps=timesteps))
    hook = eval_hook_factory(cfg) if eval_hook_factory and cfg.fid_epochs else None
    result = train_diffusion(store, out, label, cfg, resume, hook, device=pick_device(device))
    return (
        f"trained {label} diffusion ({preset_name}) on {result.images} images for {result.epochs} epochs "
        f"in {result.seconds / 60:.1f} min (final loss {result.final_loss:.4f})\n"
        f"model: {out}/model.safetensors + config.json; metrics: {out}/metrics.csv; curves: {out}/loss.png"
    )
