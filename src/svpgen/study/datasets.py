"""Data pools and the paper's Table 1 configurations, disjoint by construction.

Pools (each its own store under ``OUT/data``): ``diffusion_<class>`` (trains the
generators), ``train`` (classifier training, real minority + protein), ``tune`` (model
selection) and ``eval`` (the imbalanced evaluation set). A hash check proves that no
image is shared between any two pools. Real-n / Mixed-n are assembled from ``train`` and
the generated stores: Real-n = (protein nK, 1K, 1K) real; Mixed-n tops up each minority
class with generated images to nK (all counts × ``scale``).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from svpgen.data.splits import check_disjoint
from svpgen.data.store import Particles, ParticleStore, provenance_record
from svpgen.errors import SvpgenError
from svpgen.study.config import TABLE1_PROTEIN_K, StudyConfig


def table1_counts(name: str, cfg: StudyConfig) -> dict[str, tuple[int, int]]:
    """{class: (real, generated)} for one Table 1 configuration at the study's scale."""
    if name not in TABLE1_PROTEIN_K:
        raise SvpgenError(f"unknown dataset {name!r}; Table 1 has {', '.join(TABLE1_PROTEIN_K)}")
    protein = max(1, round(TABLE1_PROTEIN_K[name] * 1000 * cfg.scale))
    minority = max(1, round(1000 * cfg.scale))
    counts = {"protein": (protein, 0)}
    for c in cfg.minority:
        counts[c] = (minority, max(0, protein - minority) if name.startswith("Mixed") else 0)
    return counts


def pool_sizes(cfg: StudyConfig) -> dict[str, dict[str, int]]:
    """Images needed per pool and class."""
    need_train = {
        c: max(table1_counts(d, cfg)[c][0] for d in (*cfg.datasets, cfg.baseline_dataset))
        for c in ("protein", *cfg.minority)
    }
    sizes = {
        "train": need_train,
        "tune": {"protein": cfg.tune_protein, **{c: cfg.tune_minority for c in cfg.minority}},
        "eval": {"protein": cfg.eval_protein, **{c: cfg.eval_minority for c in cfg.minority}},
    }
    for c in cfg.minority:
        sizes[f"diffusion_{c}"] = {c: cfg.diffusion_images}
    return sizes


def generated_needed(cfg: StudyConfig) -> dict[str, int]:
    """Generated images needed per minority class by the study's Mixed-n datasets."""
    return {
        c: max((table1_counts(d, cfg)[c][1] for d in cfg.datasets), default=0) for c in cfg.minority
    }


def allocate(
    table, sizes: dict[str, dict[str, int]], seed: int, label_column: str = "label"
) -> dict[str, np.ndarray]:
    """Row indices per pool: each class's unique images shuffled once and cut in order, so
    pools never share an image (duplicates by sha256 are dropped first)."""
    rng = np.random.default_rng(seed)
    unique = ~table["sha256"].duplicated().to_numpy()
    out: dict[str, list[np.ndarray]] = {p: [] for p in sizes}
    classes = sorted({c for s in sizes.values() for c in s})
    for c in classes:
        rows = np.flatnonzero(unique & (table[label_column] == c).to_numpy())
        rng.shuffle(rows)
        wanted = sum(s.get(c, 0) for s in sizes.values())
        if len(rows) < wanted:
            raise SvpgenError(
                f"the study needs {wanted:,} distinct {c} images, the data has {len(rows):,}; use a smaller scale or more data"
            )
        start = 0
        for pool, s in sizes.items():
            k = s.get(c, 0)
            out[pool].append(rows[start : start + k])
            start += k
    return {p: np.sort(np.concatenate(v)) if v else np.array([], np.int64) for p, v in out.items()}


def write_pools(
    source: Particles,
    eval_set: Particles | None,
    out: Path,
    cfg: StudyConfig,
    label_column: str = "label",
) -> dict[str, int]:
    """Cut ``source`` into the pools (and use ``eval_set`` as the evaluation pool when
    given); write each as a store; verify all pairs are disjoint."""
    sizes = pool_sizes(cfg)
    if eval_set is not None:
        sizes.pop("eval")
    idx = allocate(source.table, sizes, cfg.seed, label_column)
    written = {}
    for pool, rows in idx.items():
        part = Particles(source.images[rows], source.table.iloc[rows].reset_index(drop=True))
        ParticleStore.write(
            out / pool,
            part,
            provenance_record("svpgen study: data pool", seed=cfg.seed, pool=pool),
            mode="overwrite",
        )
        written[pool] = len(part)
    if eval_set is not None:
        ParticleStore.write(
            out / "eval",
            eval_set,
            provenance_record("svpgen study: evaluation set", seed=cfg.seed),
            mode="overwrite",
        )
        written["eval"] = len(eval_set)
    tables = {p: ParticleStore(out / p).table for p in written}
    for a, b in combinations(sorted(tables), 2):
        check_disjoint(tables[a], tables[b], a, b)
    return written


def assemble(name: str, cfg: StudyConfig, data_dir: Path, generated_dir: Path) -> Particles:
    """The Real-n / Mixed-n training set (deterministic: first rows of each pool)."""
    train = ParticleStore(data_dir / "train")
    parts = []
    for c, (n_real, n_gen) in table1_counts(name, cfg).items():
        rows = train.indices(label=c)[:n_real]
        parts.append(train.take(rows))
        if n_gen:
            gen = ParticleStore(generated_dir / c)
            if len(gen) < n_gen:
                raise SvpgenError(
                    f"{generated_dir / c}: {len(gen)} generated {c} images, {name} needs {n_gen}"
                )
            parts.append(gen.take(np.arange(n_gen)))
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.concat(p)
    return merged
