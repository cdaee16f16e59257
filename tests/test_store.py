import json

import numpy as np
import pytest

from svpgen.data.splits import check_disjoint, split_indices
from svpgen.data.store import Particles, ParticleStore, concatenate, describe, provenance_record
from svpgen.errors import LeakageError, SvpgenError


def make_particles(n: int, label: str = "protein", prefix: str = "p", seed: int = 0) -> Particles:
    images = np.random.default_rng(seed).integers(0, 256, (n, 64, 64), dtype=np.uint8)
    return Particles.from_arrays(
        images, labels=label, source="simulated", ids=[f"{prefix}{i}" for i in range(n)]
    )


def test_create_open_roundtrip(tmp_path):
    parts = make_particles(5)
    store = ParticleStore.write(tmp_path / "s", parts, provenance_record("test", seed=1))
    again = ParticleStore.open(tmp_path / "s")
    assert isinstance(again.images, np.memmap)
    assert np.array_equal(np.asarray(again.images), parts.images)
    assert list(again.table["id"]) == [f"p{i}" for i in range(5)]
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert meta["count"] == 5 and meta["image_size"] == 64 and meta["provenance"][0]["seed"] == 1
    assert len(store) == 5


def test_append_keeps_rows_and_select(tmp_path):
    ParticleStore.write(tmp_path / "s", make_particles(4), provenance_record("a"))
    oil = make_particles(3, "silicone_oil", "o", seed=1)
    store = ParticleStore.write(tmp_path / "s", oil, provenance_record("b"), mode="append")
    assert len(store) == 7 and len(store.provenance) == 2
    sel = store.select(label="silicone_oil")
    assert np.array_equal(sel.images, oil.images)
    assert store.counts().loc["total", "total"] == 7
    assert "silicone_oil" in describe(store)


def test_refuses_existing_store_and_duplicate_ids(tmp_path):
    ParticleStore.write(tmp_path / "s", make_particles(2), provenance_record("a"))
    with pytest.raises(SvpgenError, match="already holds a store with 2 particles"):
        ParticleStore.write(tmp_path / "s", make_particles(2), provenance_record("a"))
    with pytest.raises(SvpgenError, match="already in the store"):
        ParticleStore.write(
            tmp_path / "s", make_particles(2), provenance_record("a"), mode="append"
        )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(SvpgenError, match="not a ParticleStore"):
        ParticleStore.write(tmp_path / "other", make_particles(2), provenance_record("a"))


def test_bad_labels_rejected(tmp_path):
    parts = make_particles(2)
    parts.table["label"] = ["protein", "Banana split!"]
    with pytest.raises(SvpgenError, match="Banana split"):
        ParticleStore.write(tmp_path / "s", parts, provenance_record("a"))


def test_lab_classes_are_kept_with_their_original_names(tmp_path):
    parts = make_particles(3)
    parts.table["label"] = ["schlieren_lines", "protein", "dense_globular"]
    parts.table["vs_class"] = ["Schlieren lines", "Protein", "dense globular"]
    store = ParticleStore.write(tmp_path / "s", parts, provenance_record("a"))
    assert store.classes == ["protein", "dense_globular", "schlieren_lines"]
    assert store.meta["class_names"]["schlieren_lines"] == ["Schlieren lines"]
    assert "schlieren_lines ← 'Schlieren lines'" in describe(store)


def test_crash_mid_write_leaves_old_store(tmp_path, monkeypatch):
    ParticleStore.write(tmp_path / "s", make_particles(3), provenance_record("a"))

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr("pandas.DataFrame.to_parquet", boom)
    with pytest.raises(KeyboardInterrupt):
        ParticleStore.write(
            tmp_path / "s", make_particles(5, prefix="q"), provenance_record("b"), mode="append"
        )
    monkeypatch.undo()
    assert len(ParticleStore(tmp_path / "s")) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temp debris


def test_crash_between_renames_recovers(tmp_path):
    ParticleStore.write(tmp_path / "s", make_particles(3), provenance_record("a"))
    (tmp_path / "s").rename(tmp_path / ".s.old-deadbeef")  # what a kill between renames leaves
    assert len(ParticleStore(tmp_path / "s")) == 3


def test_concatenate(tmp_path):
    ParticleStore.write(tmp_path / "a", make_particles(2), provenance_record("a"))
    ParticleStore.write(
        tmp_path / "b", make_particles(3, "air_bubble", "b"), provenance_record("b")
    )
    merged = concatenate([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert len(merged) == 5 and set(merged.table["label"]) == {"protein", "air_bubble"}


def test_split_disjoint_by_hash_and_reproducible():
    parts = make_particles(100)
    table = parts.table.copy()
    table.loc[1, "sha256"] = table.loc[0, "sha256"]  # a duplicated image
    a = split_indices(table, {"train": 0.7, "test": 0.3}, seed=3)
    b = split_indices(table, {"train": 0.7, "test": 0.3}, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert len(a["train"]) + len(a["test"]) == 100
    check_disjoint(table.iloc[a["train"]], table.iloc[a["test"]])
    assert (0 in a["train"]) == (1 in a["train"])


def test_leakage_reported_with_count_and_ids():
    parts = make_particles(10)
    with pytest.raises(
        LeakageError, match=r"3 image\(s\) of train also appear in eval \(e.g. ids p0, p1, p2\)"
    ):
        check_disjoint(parts.table.iloc[:3], parts.table, "train", "eval")
