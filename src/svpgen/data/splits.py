"""Disjoint splits by image hash, and the leakage guard between image sets.

Identical pixels (same sha256) always land in the same part, so a duplicated image can
never sit on both sides of a split.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from svpgen.errors import LeakageError, SvpgenError


def split_indices(
    table: pd.DataFrame,
    fractions: Mapping[str, float],
    seed: int = 0,
    stratify: str | None = "label",
) -> dict[str, np.ndarray]:
    """Assign rows to named parts by fraction, disjoint by ``sha256``, reproducible per seed.

    Fractions are normalised to sum to 1. With ``stratify`` each label is split separately
    so every part keeps the class mix.
    """
    if not fractions or any(f < 0 for f in fractions.values()) or sum(fractions.values()) <= 0:
        raise SvpgenError(f"invalid split fractions {dict(fractions)}")
    names = list(fractions)
    weights = np.array([fractions[n] for n in names], dtype=float)
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    groups = [table] if stratify is None else [g for _, g in table.groupby(stratify, sort=True)]
    for group in groups:
        hashes = np.array(sorted(set(group["sha256"])))
        rng.shuffle(hashes)
        bounds = np.rint(np.cumsum(weights) * len(hashes)).astype(int)
        part_of_hash = {}
        start = 0
        for name, stop in zip(names, bounds):
            for h in hashes[start:stop]:
                part_of_hash[h] = name
            start = stop
        assigned = group["sha256"].map(part_of_hash)
        for name in names:
            parts[name].append(group.index[assigned == name].to_numpy())
    return {
        n: np.sort(np.concatenate(p)) if p else np.array([], dtype=np.int64)
        for n, p in parts.items()
    }


def shared_images(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``a`` whose image (sha256) also appears in ``b``."""
    return a[a["sha256"].isin(set(b["sha256"]))]


def check_disjoint(a: pd.DataFrame, b: pd.DataFrame, name_a: str = "A", name_b: str = "B") -> None:
    """Raise LeakageError naming the count and example ids if ``a`` and ``b`` share images."""
    overlap = shared_images(a, b)
    if len(overlap):
        examples = ", ".join(map(str, overlap["id"].head(5)))
        raise LeakageError(
            f"{len(overlap)} image(s) of {name_a} also appear in {name_b} (e.g. ids {examples})"
        )


def split_store(store_path, out, fractions: Mapping[str, float], seed: int = 0) -> dict:
    """Write each part of a hash-disjoint split as its own store ``out/<name>``."""
    from pathlib import Path

    from svpgen.data.store import ParticleStore, provenance_record

    store = ParticleStore(store_path)
    parts = split_indices(store.table, fractions, seed)
    written = {}
    for name, idx in parts.items():
        record = provenance_record(
            "split", seed=seed, parent=str(store.path), part=name, fractions=dict(fractions)
        )
        written[name] = ParticleStore.write(Path(out) / name, store.take(idx), record)
    return written
