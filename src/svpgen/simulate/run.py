"""``svpgen simulate``: render, write in the chosen format, optionally draw a preview."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from svpgen.data.store import ParticleStore, command_line, provenance_record
from svpgen.simulate.engine import SimConfig, simulate
from svpgen.simulate.writers import write_flowcam, write_folder


def preview_grid(particles, path: Path, per_class: int = 16) -> Path:
    """A labelled grid of the first ``per_class`` crops of each true class."""
    from svpgen.plots import sample_grid

    t = particles.table
    key = "true_label" if "true_label" in t else "label"
    groups = {
        lab: particles.images[np.flatnonzero(t[key].to_numpy() == lab)[:per_class]]
        for lab in t[key].unique()
    }
    return sample_grid(groups, path, title="simulated FIM crops")


def run_simulate(
    out: str | Path,
    counts: dict[str, int],
    *,
    seed: int = 0,
    fmt: str = "store",
    label_noise: float = 0.03,
    pixel_um: float = 0.55,
    workers: int | None = None,
    preview: str | Path | None = None,
) -> str:
    """``svpgen simulate``: render, write as a store / folder tree / FlowCam export; the summary
    text."""
    cfg = SimConfig(label_noise=label_noise, pixel_um=pixel_um)
    if workers:
        cfg = replace(cfg, workers=workers)
    start = time.perf_counter()
    sim = simulate(counts, seed, cfg, keep_native=fmt != "store", progress=True)
    elapsed = time.perf_counter() - start
    out = Path(out)
    if fmt == "store":
        ParticleStore.write(
            out,
            sim.particles,
            provenance_record(command_line(), seed=seed, counts=counts, label_noise=label_noise),
        )
    elif fmt == "folder":
        write_folder(sim, out)
    else:
        write_flowcam(sim, out)
    lines = [
        f"simulated {len(sim.particles)} particles in {elapsed:.1f} s "
        f"({len(sim.particles) / max(elapsed, 1e-9):.0f}/s) → {out} ({fmt})"
    ]
    lines += [
        f"  {lab:>13}: {n}" for lab, n in sim.particles.table["true_label"].value_counts().items()
    ]
    if preview:
        lines.append(f"preview: {preview_grid(sim.particles, Path(preview))}")
    return "\n".join(lines)
