"""Atomic file writes: write a hidden temporary sibling, then rename it over the target,
so a crash never leaves a half-written file (a rename is atomic on POSIX filesystems)."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: dict) -> None:
    """Write a JSON file (indented) atomically."""
    write_text(path, json.dumps(data, indent=2, default=str))


def write_csv(path: str | Path, rows: list[dict] | pd.DataFrame) -> None:
    """Write rows (or a DataFrame) as CSV atomically."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
