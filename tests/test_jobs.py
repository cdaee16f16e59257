"""Study jobs side by side: same results as one after another, errors surface."""

import os

import pytest

from svpgen.study.jobs import local_workers, run_jobs


def _job(x: int) -> tuple[int, int, int]:
    import torch

    if x < 0:
        raise ValueError(f"bad job {x}")
    return x * x, torch.get_num_threads(), os.getpid()


def test_jobs_in_two_processes_match_one_after_another():
    jobs = [(f"j{x}", (x,)) for x in (3, 1, 2)]
    done = []
    serial = run_jobs(_job, jobs, workers=1)
    parallel = run_jobs(_job, jobs, workers=2, on_done=lambda name, result: done.append(name))
    assert list(parallel) == ["j3", "j1", "j2"] and sorted(done) == ["j1", "j2", "j3"]
    assert [v[0] for v in parallel.values()] == [v[0] for v in serial.values()] == [9, 1, 4]
    assert all(pid != os.getpid() for _, _, pid in parallel.values())  # ran in worker processes
    assert all(threads == max(1, (os.cpu_count() or 1) // 2) for _, threads, _ in parallel.values())


def _then(name: str, result: tuple) -> list:
    """A follow-up for every first-round job: its square's square, under a new name."""
    return [] if name.startswith("f") else [(f"f{name}", _job, (result[0],))]


@pytest.mark.parametrize("workers", [1, 2])
def test_follow_up_jobs_join_the_queue(workers):
    out = run_jobs(_job, [("a", (2,)), ("b", (3,))], workers=workers, follow_up=_then)
    assert list(out)[:2] == ["a", "b"] and sorted(out)[2:] == ["fa", "fb"]
    assert out["fa"][0] == 16 and out["fb"][0] == 81


def test_a_failing_follow_up_raises_here():
    with pytest.raises(ValueError, match="bad job -1"):
        run_jobs(
            _job, [("a", (2,)), ("b", (1,))], workers=2, follow_up=lambda n, r: [("c", _job, (-1,))]
        )


def test_a_failing_job_raises_here():
    with pytest.raises(ValueError, match="bad job -1"):
        run_jobs(_job, [("a", (2,)), ("b", (-1,))], workers=2)


def test_local_workers():
    assert local_workers(4, "cuda") == 1
    assert 1 <= local_workers(8, "cpu") <= (os.cpu_count() or 1)
