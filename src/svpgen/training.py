"""What the diffusion and classifier trainers share: refusing to overwrite a training run,
per-epoch random generators (so ``--resume`` continues exactly), the autocast choice, the
non-finite-loss guard and the checkpoint (training state + history), all written atomically."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from svpgen.atomic import write_csv
from svpgen.checkpoint import load_state, save_state
from svpgen.errors import SvpgenError

STATE_FILE = "training_state.pt"


class TrainingDiverged(SvpgenError):
    """The loss became NaN/inf; training stopped and the last good checkpoint is kept."""


def state_path(out: Path, resume: bool) -> Path:
    """``out/training_state.pt``; refuses to start over an existing run unless resuming."""
    path = Path(out) / STATE_FILE
    if not resume and path.exists():
        raise SvpgenError(
            f"{out} already holds a training run; pass --resume to continue it or choose a new OUT"
        )
    return path


def resume_state(out: Path, resume: bool) -> dict | None:
    """The saved training state when resuming (an error if there is none), else None."""
    path = state_path(out, resume)
    return load_state(path) if resume else None


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The random generator of one epoch: data order, augmentation, noise. Seeded by
    (seed, epoch) alone, so a resumed run draws exactly what an uninterrupted one would."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def autocast(device: str | torch.device):
    """bf16 autocast on CUDA; fp32 on CPU (bf16 was slower than fp32 on every CPU measured)."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_finite(
    loss: float, epoch: int, batch: int, out: Path, last_good_epoch: int | None
) -> None:
    """Stop with :class:`TrainingDiverged` on a NaN/inf loss, naming the checkpoint kept."""
    if torch.isfinite(torch.tensor(loss)):
        return
    where = (
        f"last good checkpoint: epoch {last_good_epoch} in {out}"
        if last_good_epoch
        else "no checkpoint was written yet"
    )
    raise TrainingDiverged(
        f"non-finite loss ({loss}) at epoch {epoch}, batch {batch}; training stopped ({where})"
    )


def save_checkpoint(out: Path, state: dict, history: list[dict], history_file: str) -> None:
    """Write the resumable training state and the per-epoch history CSV (both atomic)."""
    save_state(state, Path(out) / STATE_FILE)
    write_csv(Path(out) / history_file, history)
