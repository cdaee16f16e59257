"""``svpgen train-diffusion`` as a function: preset + overrides → training → summary text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from svpgen.data.classes import UNKNOWN, canonical_label
from svpgen.device import resolve_device
from svpgen.diffusion.config import QUICK_UNET, DiffusionConfig
from svpgen.errors import SvpgenError
from svpgen.options import with_overrides

RECOMMENDED_SAMPLER = {"epsilon": "dpmpp", "v": "dpmpp", "edm": "edm-dpmpp"}


def configure(
    preset_name: str,
    timesteps: int | None = None,
    objective: str | None = None,
    patch: int | None = None,
    latent_components: int | None = None,
    latent_mixture: int | None = None,
    **overrides,
) -> DiffusionConfig:
    """A preset with the options a user set (``None`` = keep the preset's). A new
    ``objective`` without a ``sampler`` brings that objective's recommended sampler;
    ``network="unet"`` with the quick preset brings the quick U-Net's settings (``QUICK_UNET``)."""
    cfg = DiffusionConfig.from_preset(preset_name)
    if preset_name == "quick" and overrides.get("network") == "unet":
        cfg = QUICK_UNET
    changes = {k: v for k, v in overrides.items() if v is not None}
    changes["schedule"] = with_overrides(cfg.schedule, timesteps=timesteps, objective=objective)
    changes["unet"] = with_overrides(cfg.unet, patch=patch)
    changes["latent"] = with_overrides(
        cfg.latent, components=latent_components, mixture=latent_mixture
    )
    if objective and objective != cfg.schedule.objective and "sampler" not in changes:
        changes["sampler"] = RECOMMENDED_SAMPLER[objective]
        changes.setdefault("sampler_steps", None)
    return replace(cfg, **changes)


def run_train_diffusion(
    store,
    out,
    label: str,
    preset_name: str = "quick",
    *,
    resume: bool = False,
    device: str = "auto",
    eval_hook_factory=None,
    init_from: str | Path | None = None,
    **overrides,
) -> str:
    """Train ``label``'s model from a preset with CLI overrides (see :func:`configure`);
    return the summary text. ``eval_hook_factory(label, cfg)`` may return a per-epoch
    FID/KID hook; ``init_from`` fine-tunes another trained model (same architecture)."""
    from svpgen.diffusion.train import train_diffusion

    canon = canonical_label(label)
    if canon in (None, UNKNOWN):
        raise SvpgenError(f"--label {label!r} is not a particle class")
    cfg = configure(preset_name, **overrides)
    hook = eval_hook_factory(canon, cfg) if eval_hook_factory and cfg.fid_epochs else None
    result = train_diffusion(
        store,
        out,
        canon,
        cfg,
        resume=resume,
        eval_hook=hook,
        device=resolve_device(device),
        init_from=init_from,
    )
    return (
        f"trained {canon} diffusion ({preset_name}) on {result.images} images for {result.epochs} "
        "epochs "
        f"in {result.seconds / 60:.1f} min (final loss {result.final_loss:.4f})\n"
        f"model: {Path(out)}/model.safetensors + config.json; metrics: {Path(out)}/metrics.csv; "
        f"curves: {Path(out)}/loss.png"
    )
