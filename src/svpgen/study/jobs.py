"""Independent training jobs of a study (a class's diffusion model, a grid trial) run side
by side on one machine.

On a small CPU, two processes with one torch thread each get more done than one process
with two threads: the networks here are small (64×64 inputs), where a second thread
speeds one job up by only ~1.5× (ResNet-18 training measured 72 img/s with 2 threads vs
2 × 47 img/s as two 1-thread jobs on this project's 2-core machines). Jobs run in
*spawned* processes (forking a process that has used torch's thread pool is unsafe), in
the order given (callers put the longest first), each with ``cpu_count // workers`` torch,
BLAS and OpenMP threads. Inference stages gain nothing this way (measured: evaluation and
audit were slower side by side), so the study runs those one at a time — except where a
batch is uneven: a job's follow-ups (the grid's evaluation of a cell whose trials are done)
join the queue, and a worker that would idle at the end runs them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any


def local_workers(requested: int, device: str) -> int:
    """How many jobs to run at once here: one on an accelerator, else ≤ the CPU count."""
    if device != "cpu":
        return 1
    return max(1, min(requested, os.cpu_count() or 1))


def _init_worker(threads: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    # numpy's BLAS, scikit-learn's OpenMP; in force until the worker exits
    threadpool_limits(limits=threads)
    # Linux: a worker dies with the study (a killed study must not leave a trial
    # half-written behind it)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


FollowUp = Callable[[str, Any], Sequence[tuple[str, Callable[..., Any], tuple]]]


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[str, tuple]],
    workers: int = 1,
    on_done: Callable[[str, Any], None] | None = None,
    follow_up: FollowUp | None = None,
) -> dict[str, Any]:
    """``{name: fn(*args)}`` for each ``(name, args)`` in ``jobs`` (given longest first).

    With ``workers`` > 1 the jobs run in that many spawned processes; ``fn`` must be a
    module-level function and its arguments picklable. ``on_done(name, result)`` is called
    in this process as each job finishes. ``follow_up(name, result)`` may return more jobs,
    ``(name, function, args)``, that a finished job made possible: they join the queue
    behind the jobs already there, so a worker that would sit idle at the end of an uneven
    batch runs them (their results come back with the others', after ``jobs``' own). The
    first job that fails raises here.
    """
    results: dict[str, Any] = {}

    def finished(name: str, result: Any) -> list[tuple[str, Callable[..., Any], tuple]]:
        results[name] = result
        if on_done:
            on_done(name, result)
        return list(follow_up(name, result)) if follow_up else []

    queue = [(name, fn, args) for name, args in jobs]
    if workers <= 1 or len(jobs) <= 1:
        while queue:
            name, job_fn, args = queue.pop(0)
            queue += finished(name, job_fn(*args))
        return results
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(threads,)
    )
    try:
        running = {pool.submit(job_fn, *args): name for name, job_fn, args in queue}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                for more, job_fn, args in finished(name, future.result()):
                    running[pool.submit(job_fn, *args)] = more
    except BaseException:
        pool.shutdown(
            wait=False, cancel_futures=True
        )  # finished jobs' outputs stay on disk for a resume
        raise
    pool.shutdown()
    first = {name: results[name] for name, _ in jobs}
    return first | {name: r for name, r in results.items() if name not in first}
