"""Data pools and the paper's Table 1 configurations, disjoint by construction.

Pools (each its own store under ``OUT/data``): ``diffusion_<class>`` (trains the
generators), ``train`` (classifier training, real minority + majority), ``tune`` (model
selection) and ``eval`` (the imbalanced evaluation set). A hash check proves that no
image is shared between any two pools. Real-n / Mixed-n are assembled from ``train`` and
the generated stores: Real-n = nK of each majority class (protein in the paper) and 1K of
each minority class, real; Mixed-n tops up each minority class with generated images to
nK (all counts × ``scale``). The same scheme serves any class list with one or more
majority and minority classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np

from svpgen.data.classes import (
    PAPER_MINORITY,
    UNKNOWN,
    default_minority,
    ordered_classes,
    paper_prevalence,
)
from svpgen.data.splits import check_disjoint
from svpgen.data.store import Particles, ParticleStore, provenance_record
from svpgen.errors import SvpgenError
from svpgen.simulate.engine import RENDERERS
from svpgen.study.config import TABLE1_PROTEIN_K, StudyConfig

MIN_IMAGES_PER_CLASS = 20


def resolve_classes(cfg: StudyConfig, counts: Mapping[str, int] | None = None) -> StudyConfig:
    """``cfg`` with its classes, minority classes and prevalence filled in (see
    :class:`StudyConfig`): from the labelled images per class of the study's data
    (``counts``, a store given with ``--data``), else for the simulator."""
    if counts is not None:
        present = ordered_classes(c for c, n in counts.items() if n > 0)
        classes = cfg.classes or tuple(present)
        missing = [c for c in classes if counts.get(c, 0) == 0]
        if missing:
            raise SvpgenError(f"the data has no labelled {missing} particles; it has {present}")
        minority = cfg.minority
        if minority is None:
            minority = default_minority({c: counts[c] for c in classes})
    else:
        minority = cfg.minority if cfg.minority is not None else PAPER_MINORITY
        classes = cfg.classes or tuple(ordered_classes(("protein", *minority)))
        if cfg.minority is None:
            minority = tuple(c for c in PAPER_MINORITY if c in classes)
        strays = sorted(set(classes) - set(RENDERERS))
        if strays:
            raise SvpgenError(
                f"the simulator renders {', '.join(RENDERERS)}, not {strays}; "
                "study a lab's own classes with --data STORE"
            )
    if not minority:
        raise SvpgenError(f"no minority class among {list(classes)}: name them with --minority")
    prevalence = cfg.prevalence
    if prevalence is None:
        prevalence = paper_prevalence(classes, minority)
    if isinstance(prevalence, dict):
        lacking = [c for c in classes if c not in prevalence]
        if lacking:
            raise SvpgenError(f"prevalence {prevalence} lacks class(es) {lacking}")
        prevalence = tuple(float(prevalence[c]) for c in classes)
    return replace(
        cfg, classes=tuple(classes), minority=tuple(minority), prevalence=tuple(prevalence)
    )


def data_counts(store: ParticleStore) -> dict[str, int]:
    """Distinct labelled images per class of a store's real and simulated particles (what a
    study with ``--data`` draws its pools from; generated ones are left out)."""
    table = store.table[store.table["source"].isin(("real", "simulated"))]
    table = table[table["label"] != UNKNOWN].drop_duplicates("sha256")
    return {str(c): int(n) for c, n in table["label"].value_counts().items()}


def _resolved(cfg: StudyConfig) -> StudyConfig:
    if cfg.classes is None or cfg.minority is None or cfg.prevalence is None:
        raise SvpgenError("the study config's classes are not resolved (see resolve_classes)")
    return cfg


def table1_counts(name: str, cfg: StudyConfig) -> dict[str, tuple[int, int]]:
    """{class: (real, generated)} for one Table 1 configuration at the study's scale: each
    majority class nK (protein in the paper), each minority class 1K real, topped up with
    generated images to nK in Mixed-n."""
    if name not in TABLE1_PROTEIN_K:
        raise SvpgenError(f"unknown dataset {name!r}; Table 1 has {', '.join(TABLE1_PROTEIN_K)}")
    cfg = _resolved(cfg)
    major = max(1, round(TABLE1_PROTEIN_K[name] * 1000 * cfg.scale))
    minor = max(1, round(1000 * cfg.scale))
    mixed = name.startswith("Mixed")
    return {
        c: (minor, max(0, major - minor) if mixed else 0) if c in cfg.minority else (major, 0)
        for c in cfg.classes
    }


def pool_sizes(cfg: StudyConfig) -> dict[str, dict[str, int]]:
    """Images needed per pool and class."""
    cfg = _resolved(cfg)

    def per_kind(c: str, majority: int, minority: int) -> int:
        return minority if c in cfg.minority else majority

    sizes = {
        "train": {
            c: max(table1_counts(d, cfg)[c][0] for d in (*cfg.datasets, cfg.baseline_dataset))
            for c in cfg.classes
        },
        "tune": {c: per_kind(c, cfg.tune_majority, cfg.tune_minority) for c in cfg.classes},
        "eval": {c: per_kind(c, cfg.eval_majority, cfg.eval_minority) for c in cfg.classes},
    }
    for c in cfg.minority:
        sizes[f"diffusion_{c}"] = {c: cfg.diffusion_images}
    return sizes


def fit_to_data(cfg: StudyConfig, counts: Mapping[str, int]) -> tuple[StudyConfig, str]:
    """A resolved ``cfg`` whose pools fit a lab's data (distinct labelled images per class),
    and a line saying what was changed ("" when the preset fits as it is).

    Where the preset asks for more images than a class has, the evaluation set takes at
    most 30% of each class, the tuning set 15%, each generator's pool 25% of its minority
    class, and Table 1's scale shrinks until Real-n / Mixed-n fit what is left.
    """
    cfg = _resolved(cfg)
    sizes = pool_sizes(cfg)
    need = {c: sum(s.get(c, 0) for s in sizes.values()) for c in cfg.classes}
    if all(need[c] <= counts.get(c, 0) for c in cfg.classes):
        return cfg, ""
    small = [c for c in cfg.classes if counts.get(c, 0) < MIN_IMAGES_PER_CLASS]
    if small:
        have = ", ".join(f"{c} {counts.get(c, 0)}" for c in small)
        raise SvpgenError(
            f"a study needs ≥ {MIN_IMAGES_PER_CLASS} labelled images of each class ({have})"
        )

    def least(kind: tuple[str, ...], share: float, wanted: int) -> int:
        return max(1, min([wanted] + [int(share * counts[c]) for c in kind]))

    fitted = replace(
        cfg,
        eval_majority=least(cfg.majority, 0.30, cfg.eval_majority),
        eval_minority=least(cfg.minority, 0.30, cfg.eval_minority),
        tune_majority=least(cfg.majority, 0.15, cfg.tune_majority),
        tune_minority=least(cfg.minority, 0.15, cfg.tune_minority),
        diffusion_images=least(cfg.minority, 0.25, cfg.diffusion_images),
    )
    left = {
        c: counts[c] - sum(s.get(c, 0) for k, s in pool_sizes(fitted).items() if k != "train")
        for c in cfg.classes
    }
    largest = max(TABLE1_PROTEIN_K[d] for d in (*cfg.datasets, cfg.baseline_dataset))
    scale = min(
        [cfg.scale]
        + [left[c] / (largest * 1000) for c in cfg.majority]
        + [left[c] / 1000 for c in cfg.minority]
    )
    fitted = replace(fitted, scale=float(f"{scale:.4g}"))
    note = (
        f"pools fitted to the data: evaluation {fitted.eval_majority} per majority / "
        f"{fitted.eval_minority} per minority class, tuning {fitted.tune_majority} / "
        f"{fitted.tune_minority}, {fitted.diffusion_images} per generator, Table 1 scale "
        f"{fitted.scale:g} (preset {cfg.scale:g})"
    )
    return fitted, note


def baseline_datasets(cfg: StudyConfig) -> list[str]:
    """The Real-n sets the morphology baselines are fitted on: the real part of every
    dataset of the study (Mixed-n's real images are Real-n's)."""
    names = {"Real-" + d.split("-")[1] for d in (*cfg.datasets, cfg.baseline_dataset)}
    return sorted(names, key=lambda d: TABLE1_PROTEIN_K[d])


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
                f"the study needs {wanted:,} distinct {c} images, the data has {len(rows):,}; "
                "use a smaller scale or more data"
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
