"""Where every model runs: the one place that turns a device request into a device."""

from __future__ import annotations

from svpgen.errors import SvpgenError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | None = "auto") -> str:
    """'auto' (or None) → 'cuda' when a GPU is available, else 'cpu'; 'cuda' without a GPU
    is an error; any other torch device string ('cuda:1') passes through."""
    import torch  # here, not at import: the CLI's light commands never load torch

    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise SvpgenError(f"device {name!r} requested but no CUDA device is available")
    return str(name)
