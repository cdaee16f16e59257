"""Model artefacts: ``model.safetensors`` + ``config.json`` (+ ``training_state.pt``
for resume, loaded with ``weights_only=True``), and the safe reader of foreign ``.pth``
state dicts. Every file is written atomically."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from svpgen.atomic import atomic_path, write_json
from svpgen.errors import SvpgenError


def save_weights(state_dict: dict, path: Path) -> None:
    """Tensors → ``safetensors`` file (contiguous CPU copies), atomically."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp)


def load_weights(path: Path) -> dict:
    """A ``safetensors`` file → state dict; a clear error when missing."""
    if not path.is_file():
        raise SvpgenError(f"{path}: missing model weights")
    return load_file(path)


def save_state(state: dict, path: Path) -> None:
    """A resumable training state (tensors, numbers, lists) via ``torch.save``, atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict:
    """A training state saved by :func:`save_state`, loaded with ``weights_only=True``."""
    if not path.is_file():
        raise SvpgenError(f"{path}: no training state to resume from")
    return torch.load(path, map_location="cpu", weights_only=True)


def save_artefact(out: Path, weights: dict, config: dict) -> None:
    """Write weights first, then the config that describes them."""
    out.mkdir(parents=True, exist_ok=True)
    save_weights(weights, out / "model.safetensors")
    write_json(out / "config.json", config)


def read_config(path: Path) -> dict:
    """The ``config.json`` of a model directory; a clear error when absent or unreadable."""
    import json

    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        raise SvpgenError(f"{path}: not a model directory (no config.json)")
    try:
        return json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise SvpgenError(f"{cfg_path}: unreadable ({err.msg})") from None


def read_artefact(path: Path, kind: str, what: str) -> tuple[dict, dict]:
    """(config.json contents, weights) of a model directory whose config says ``kind``."""
    info = read_config(path)
    if info.get("kind") != kind:
        raise SvpgenError(f"{path}: not a {what} model (kind={info.get('kind')!r})")
    return info, load_weights(Path(path) / "model.safetensors")


def read_torch_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A ``torch.save``-d state dict, loaded safely (``weights_only=True``); a dict holding
    one state dict under ``model``/``state_dict``/``ema`` is unwrapped."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and weights-only errors all mean "not such a checkpoint"
        raise SvpgenError(
            f"{path}: not a PyTorch checkpoint that loads with weights_only=True "
            f"({type(err).__name__}: {str(err).splitlines()[0][:120]})"
        ) from None
    if isinstance(obj, dict) and len(obj) <= 3:
        for key in ("model", "state_dict", "ema"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(v, torch.Tensor) for v in obj.values())
    ):
        raise SvpgenError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return obj
