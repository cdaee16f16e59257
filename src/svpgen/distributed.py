"""torchrun / DDP helpers: one process per GPU (or CPU process on the gloo backend)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and logs."""
        return self.rank == 0

    def all_mean(self, value: float) -> float:
        """The mean of ``value`` over all processes."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def barrier(self) -> None:
        """Wait for every process."""
        if self.world > 1:
            dist.barrier()


def setup(device: str | None = None) -> DistContext:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1). Each
    process takes the GPU of its LOCAL_RANK unless ``device`` is 'cpu'."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        if not use_cuda:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return DistContext(rank, world, dev)


def teardown() -> None:
    """Destroy the process group if one was set up."""
    if dist.is_initialized():
        dist.destroy_process_group()
