"""ParticleStore: a directory of 64×64 uint8 particle images plus one table row per image.

Layout (the data contract)::

    STORE/images.npy         uint8 N×64×64, opened as a read-only memmap
    STORE/particles.parquet  id, label, source, sha256, origin, native_h, native_w,
                             pixel_um, esd_um, + free instrument columns
    STORE/store.json         format version, image size, classes (+ the lab's original
                             class names), count, provenance
    STORE/measurements.parquet  optional: instrument rows without an image (an export
                             that has none), kept for the morphology baselines

Labels are normalised class names: the canonical classes or a lab's own
(:mod:`svpgen.data.classes`), ``unknown`` for unlabelled particles.

Every write builds the complete new store in a hidden sibling directory and swaps it in
with renames, so a crash leaves either the old store or none — never a half-written one.
Appending copies the existing rows unchanged and adds the new ones after them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from svpgen.data.classes import SOURCES, UNKNOWN, is_class_name, ordered_classes
from svpgen.errors import SvpgenError

FORMAT_VERSION = 1
MEASUREMENTS = "measurements.parquet"
REQUIRED_COLUMNS = (
    "id",
    "label",
    "source",
    "sha256",
    "origin",
    "native_h",
    "native_w",
    "pixel_um",
    "esd_um",
)
WriteMode = Literal["create", "append", "overwrite"]
_COPY_CHUNK = 65_536


def image_sha256(images: np.ndarray) -> list[str]:
    """SHA-256 of each stored image's raw pixel bytes (C order)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    return [hashlib.sha256(img.tobytes()).hexdigest() for img in images]


def provenance_record(command: str, seed: int | None = None, **extra) -> dict:
    """What made a store: command line, seed, package version, UTC time."""
    from svpgen import __version__

    return {
        "command": command,
        "seed": seed,
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


@dataclass
class Particles:
    """An in-memory batch of particles: images (N×64×64 uint8) and their table rows."""

    images: np.ndarray
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        labels: Sequence[str] | str,
        source: Sequence[str] | str,
        ids: Sequence[str],
        origins: Sequence[str] | str = "",
        **columns,
    ) -> "Particles":
        """Build a batch, filling sha256 and default values for the contract's columns."""
        images = np.ascontiguousarray(images, dtype=np.uint8)
        n = len(images)
        table = pd.DataFrame({"id": [str(i) for i in ids]})
        table["label"] = labels
        table["source"] = source
        table["sha256"] = image_sha256(images)
        table["origin"] = origins
        for name in ("native_h", "native_w"):
            table[name] = columns.pop(
                name, images.shape[1] if name == "native_h" else images.shape[2]
            )
        for name in ("pixel_um", "esd_um"):
            table[name] = columns.pop(name, np.nan)
        for name, values in columns.items():
            table[name] = values
        if len(table) != n:
            raise SvpgenError(f"{len(table)} table rows for {n} images")
        return cls(images, table)

    def concat(self, other: "Particles") -> "Particles":
        """This batch followed by ``other``."""
        return Particles(
            np.concatenate([self.images, other.images]),
            pd.concat([self.table, other.table], ignore_index=True),
        )


def _validate(images: np.ndarray, table: pd.DataFrame, where: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise SvpgenError(f"{where}: images must be uint8 N×S×S, got {images.dtype} {images.shape}")
    if len(images) != len(table):
        raise SvpgenError(f"{where}: {len(images)} images but {len(table)} table rows")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise SvpgenError(f"{where}: table lacks required column(s) {', '.join(missing)}")
    bad_labels = sorted(str(v) for v in set(table["label"]) if not is_class_name(v))
    if bad_labels:
        raise SvpgenError(
            f"{where}: label(s) {bad_labels} are not normalised class names "
            "(lower case, words joined by '_'; see svpgen.data.classes.normalise_class_name)"
        )
    bad_sources = sorted(set(table["source"]) - set(SOURCES))
    if bad_sources:
        raise SvpgenError(f"{where}: unknown source(s) {bad_sources}; allowed: {list(SOURCES)}")
    dup = table["id"][table["id"].duplicated()]
    if len(dup):
        raise SvpgenError(f"{where}: {len(dup)} duplicate id(s), e.g. {dup.iloc[0]!r}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a store directory (has a store.json)."""
    return (Path(path) / "store.json").is_file()


def _recover_interrupted_swap(path: Path) -> None:
    """If a swap died between its two renames, put the previous store back."""
    if path.exists():
        return
    backups = sorted(path.parent.glob(f".{path.name}.old-*"))
    if len(backups) == 1 and is_store(backups[0]):
        os.rename(backups[0], path)


class ParticleStore:
    """A read-only view of a store directory. Create or extend one with :meth:`write`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _recover_interrupted_swap(self.path)
        meta_path = self.path / "store.json"
        if not meta_path.is_file():
            raise SvpgenError(f"{self.path}: not a ParticleStore (no store.json)")
        try:
            self.meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as err:
            raise SvpgenError(f"{meta_path}: unreadable store.json ({err.msg})") from None
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise SvpgenError(
                f"{meta_path}: unsupported format_version {self.meta.get('format_version')!r}"
            )
        self.images: np.ndarray = np.load(self.path / "images.npy", mmap_mode="r")
        self.table: pd.DataFrame = pd.read_parquet(self.path / "particles.parquet")
        _validate(self.images, self.table, str(self.path))
        measured = self.path / MEASUREMENTS
        self.measurements: pd.DataFrame = (
            pd.read_parquet(measured) if measured.is_file() else pd.DataFrame()
        )

    @classmethod
    def open(cls, path: str | Path) -> "ParticleStore":
        """Open an existing store (same as the constructor)."""
        return cls(path)

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"ParticleStore({str(self.path)!r}, n={len(self)})"

    @property
    def classes(self) -> list[str]:
        """The labelled classes, in the store's order (canonical first, then a lab's own)."""
        return [c for c in self.meta.get("classes", []) if c != UNKNOWN]

    @property
    def provenance(self) -> list[dict]:
        """What made the store, one record per write."""
        return self.meta.get("provenance", [])

    def indices(
        self, label: str | Sequence[str] | None = None, source: str | Sequence[str] | None = None
    ) -> np.ndarray:
        """Row indices matching a label (or labels) and a source (or sources)."""
        keep = np.ones(len(self), dtype=bool)
        for column, wanted in (("label", label), ("source", source)):
            if wanted is not None:
                wanted = [wanted] if isinstance(wanted, str) else list(wanted)
                keep &= self.table[column].isin(wanted).to_numpy()
        return np.flatnonzero(keep)

    def take(self, indices: np.ndarray) -> Particles:
        """Load the given rows into memory (sorted reads from the memmap)."""
        indices = np.asarray(indices, dtype=np.int64)
        return Particles(
            np.asarray(self.images[indices]), self.table.iloc[indices].reset_index(drop=True)
        )

    def select(
        self, label: str | Sequence[str] | None = None, source: str | Sequence[str] | None = None
    ) -> Particles:
        """Load the rows matching a label and a source into memory."""
        return self.take(self.indices(label, source))

    def counts(self) -> pd.DataFrame:
        """Particle counts per label × source."""
        return pd.crosstab(
            self.table["label"], self.table["source"], margins=True, margins_name="total"
        )

    @classmethod
    def write(
        cls,
        path: str | Path,
        particles: Particles,
        provenance: dict,
        mode: WriteMode = "create",
        measurements: pd.DataFrame | None = None,
    ) -> "ParticleStore":
        """Write ``particles`` as a new store, or append them to / replace an existing one.

        ``create`` refuses an existing store or a non-empty directory at ``path``.
        ``measurements``: instrument rows without an image, kept beside the particles.
        """
        path = Path(path)
        _recover_interrupted_swap(path)
        _validate(particles.images, particles.table, "new particles")
        previous = _existing_for(path, mode)
        table, history = _merged(path, previous, particles, provenance)
        old_measured = previous.measurements if previous is not None else pd.DataFrame()
        parts = [m for m in (old_measured, measurements) if m is not None and len(m)]
        measured = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        labels = set(table["label"]) | set(measured.get("label", []))
        meta = {
            "format_version": FORMAT_VERSION,
            "image_size": int(particles.images.shape[1]),
            "count": len(table),
            "classes": ordered_classes(labels) + ([UNKNOWN] if UNKNOWN in labels else []),
            "class_names": original_class_names(pd.concat([table, measured], ignore_index=True)),
            "measurements": len(measured),
            "provenance": history,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            old_images = previous.images if previous is not None else None
            del previous  # the memmap goes with old_images, released before the directory moves
            _write_files(tmp, old_images, particles.images, table, meta)
            if len(measured):
                measured.to_parquet(tmp / MEASUREMENTS, index=False)
            del old_images
            _swap_in(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(path)


def original_class_names(table: pd.DataFrame) -> dict[str, list[str]]:
    """Each label's original class names (the instrument's, a library's or a folder's, as
    kept in ``vs_class``), for the store's record of its taxonomy."""
    if "vs_class" not in table.columns or not len(table):
        return {}
    pairs = table[["label", "vs_class"]].dropna().astype(str).drop_duplicates()
    return {label: sorted(g["vs_class"]) for label, g in pairs.groupby("label", sort=True)}


def _existing_for(path: Path, mode: WriteMode) -> ParticleStore | None:
    """The store a write appends to (None otherwise); refuses what ``mode`` must not touch."""
    if not path.exists():
        return None
    if not is_store(path):
        if path.is_file() or any(path.iterdir()):
            raise SvpgenError(
                f"{path} exists and is not a ParticleStore; choose an empty or new directory"
            )
        return None
    if mode == "create":
        n_old = len(pd.read_parquet(path / "particles.parquet", columns=["id"]))
        raise SvpgenError(
            f"{path} already holds a store with {n_old} particles; use --append to add to it or "
            "--overwrite to replace it"
        )
    return ParticleStore(path) if mode == "append" else None


def _merged(
    path: Path, previous: ParticleStore | None, particles: Particles, provenance: dict
) -> tuple[pd.DataFrame, list[dict]]:
    """The written table (old rows unchanged, then the new ones) and provenance history."""
    if previous is None:
        return particles.table.reset_index(drop=True), [provenance]
    if previous.images.shape[1:] != particles.images.shape[1:]:
        raise SvpgenError(
            f"{path}: image size {previous.images.shape[1:]} != new {particles.images.shape[1:]}"
        )
    shared = set(previous.table["id"]) & set(particles.table["id"])
    if shared:
        raise SvpgenError(
            f"{path}: {len(shared)} new id(s) already in the store, e.g. {sorted(shared)[0]!r}"
        )
    return pd.concat([previous.table, particles.table], ignore_index=True), previous.provenance + [
        provenance
    ]


def _write_files(
    tmp: Path,
    old_images: np.ndarray | None,
    new_images: np.ndarray,
    table: pd.DataFrame,
    meta: dict,
) -> None:
    """images.npy (old images copied in chunks, then the new), particles.parquet and
    store.json into ``tmp``, each fsynced."""
    n_old = 0 if old_images is None else len(old_images)
    out = np.lib.format.open_memmap(
        tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(len(table), *new_images.shape[1:])
    )
    if old_images is not None:
        for start in range(0, n_old, _COPY_CHUNK):
            stop = min(start + _COPY_CHUNK, n_old)
            out[start:stop] = old_images[start:stop]
    out[n_old:] = new_images
    out.flush()
    del out
    table.to_parquet(tmp / "particles.parquet", index=False)
    (tmp / "store.json").write_text(json.dumps(meta, indent=2, default=str))
    for name in ("images.npy", "particles.parquet", "store.json"):
        with open(tmp / name, "rb+") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)


def _swap_in(tmp: Path, path: Path) -> None:
    """Replace ``path`` by the complete ``tmp`` directory with two renames; a crash between
    them is repaired by the next open (:func:`_recover_interrupted_swap`)."""
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, path)
    _fsync_dir(path.parent)


def concatenate(
    paths: Sequence[str | Path], out: str | Path, mode: WriteMode = "create"
) -> ParticleStore:
    """Concatenate several stores into ``out`` (ids must stay unique)."""
    stores = [ParticleStore(p) for p in paths]
    if not stores:
        raise SvpgenError("concatenate needs at least one store")
    merged = stores[0].take(np.arange(len(stores[0])))
    for s in stores[1:]:
        merged = merged.concat(s.take(np.arange(len(s))))
    record = provenance_record("concatenate", sources=[str(p) for p in paths])
    return ParticleStore.write(out, merged, record, mode=mode)


def class_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per label: count, native crop size range (px), ESD range (µm), µm per pixel, and the
    instrument's own class names (``vs_class``) when the import kept them."""

    def span(values: pd.Series, fmt: str) -> str:
        v = pd.to_numeric(values, errors="coerce").dropna()
        if v.empty:
            return "–"
        lo, hi = v.min(), v.max()
        return format(lo, fmt) if lo == hi else f"{lo:{fmt}}–{hi:{fmt}}"

    rows = []
    for label, g in table.groupby("label", sort=True):
        row = {
            "label": label,
            "n": len(g),
            "native px (h×w)": f"{span(g['native_h'], 'g')} × {span(g['native_w'], 'g')}",
            "ESD µm": span(g["esd_um"], ".1f"),
            "µm/px": span(g["pixel_um"], ".4g"),
        }
        if "vs_class" in g:
            names = g["vs_class"].dropna().astype(str).value_counts()
            row["instrument classes"] = ", ".join(
                f"{k} ({v})" for k, v in names.head(4).items()
            ) + (" …" if len(names) > 4 else "")
        rows.append(row)
    return pd.DataFrame(rows)


def describe(store: ParticleStore) -> str:
    """The text `svpgen info` prints: counts per label × source, per-class sizes and µm/px,
    image size, provenance."""
    lines = [
        f"store       {store.path}",
        f"particles   {len(store)}",
        f"image size  {store.meta['image_size']}×{store.meta['image_size']} uint8",
        f"classes     {len(store.classes)}: {', '.join(store.classes) or '(none labelled)'}",
    ]
    renamed = {
        label: names
        for label, names in store.meta.get("class_names", {}).items()
        if names != [label]
    }
    if renamed:
        lines.append(
            "taxonomy    "
            + "; ".join(
                f"{label} ← {', '.join(repr(n) for n in names[:4])}{' …' if len(names) > 4 else ''}"
                for label, names in renamed.items()
            )
        )
    if len(store.measurements):
        lines.append(
            f"measurements {len(store.measurements)} instrument rows without an image "
            f"({store.path / MEASUREMENTS})"
        )
    if len(store):
        lines += [
            "",
            store.counts().to_string(),
            "",
            class_summary(store.table).to_string(index=False),
        ]
    lines.append("")
    for i, rec in enumerate(store.provenance, 1):
        extra = {k: v for k, v in rec.items() if k not in ("command", "created", "package_version")}
        lines.append(
            f"provenance {i}: {rec.get('created')} svpgen {rec.get('package_version')} :: "
            f"{rec.get('command')}"
        )
        if extra:
            lines.append("  " + ", ".join(f"{k}={v}" for k, v in extra.items()))
    return "\n".join(lines)


def command_line() -> str:
    """The current process's command line, for provenance records."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
