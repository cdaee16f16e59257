"""A lab's own data as it is: any class list (2, 3 and 5 classes, names that are not
canonical), class maps, bare collages (the real one in the shared fixtures), MFI tables in
lower snake case — from import to a study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from svpgen.cli import main
from svpgen.data.classes import default_minority, resolve_class_names
from svpgen.data.importers import import_source
from svpgen.data.preprocess import preprocess
from svpgen.data.store import ParticleStore, provenance_record
from svpgen.errors import SvpgenError

COLLAGE = "real_flowcam_mab_so/mAb7_200xdilu_SO_100xdilu_50_50_r0_000003.tif"
# tiles per band of the real collage (bands: rows of tiles between all-black rows), counted
# by eye on the image: 211 particles
BANDS_BY_EYE = [26, 25, 22, 28, 26, 22, 28, 26, 8]
# lab class lists: simulated class → the lab's name for it
LAB_CLASSES = {
    2: {"protein": "notoil", "silicone_oil": "badoil"},
    3: {"protein": "Protein aggregates", "silicone_oil": "SO", "glass": "Dense globular"},
    5: {
        "protein": "Protein",
        "silicone_oil": "Silicone oil",
        "air_bubble": "Air bubble",
        "glass": "Schlieren lines",
        "fiber": "Translucent fibral",
    },
}


def _invoke(*args: str):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


def test_a_labs_class_names_resolve_together():
    names = ["Silicone oil", "Multi-droplet silicone oil", "Schlieren lines", "badoil/notoil"]
    names += ["Air bubbles (syringe)", "unclassified", "???"]
    assert resolve_class_names(names) == {
        "Silicone oil": "silicone_oil",
        "Multi-droplet silicone oil": "multi_droplet_silicone_oil",  # would merge with SO
        "Schlieren lines": "schlieren_lines",
        "badoil/notoil": "badoil_notoil",
        "Air bubbles (syringe)": "air_bubble",  # its words name one class, nobody else's
        "unclassified": "unknown",
        "???": "unknown",
    }
    mapped = resolve_class_names(
        ["Multi-droplet silicone oil"], {"multi droplet SILICONE oil": "SO"}
    )
    assert mapped == {"Multi-droplet silicone oil": "silicone_oil"}
    assert default_minority({"protein": 900, "silicone_oil": 40}) == ("silicone_oil",)
    assert default_minority({"notoil": 900, "badoil": 40}) == ("badoil",)


def _class_tree(root: Path, names: dict[str, int], rng) -> Path:
    from conftest import particle_image

    for name, n in names.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(particle_image(rng, 30 + i, 40)).save(root / name / f"p{i}.png")
    return root


def test_class_map_renames_and_merges_at_import(tmp_path, rng):
    tree = _class_tree(
        tmp_path / "tree", {"Schlieren": 2, "schlieren lines": 1, "SO": 2, "Rubber": 1}, rng
    )
    (tmp_path / "map.csv").write_text(
        "lab name,class\nSchlieren,Schlieren lines\nRubber,unknown\ncells,cell\n"
    )
    res = _invoke("import", tree, tmp_path / "out", "--class-map", tmp_path / "map.csv")
    assert "class map entry 'cells' matched no class" in res.output
    assert "class 'Schlieren' → schlieren_lines" in res.output
    store = ParticleStore(tmp_path / "out")
    assert store.table["label"].value_counts().to_dict() == {
        "schlieren_lines": 3,
        "silicone_oil": 2,
        "unknown": 1,
    }
    assert store.meta["class_names"]["schlieren_lines"] == ["Schlieren", "schlieren lines"]
    info = _invoke("info", tmp_path / "out").output
    assert "classes     2: silicone_oil, schlieren_lines" in info

    (tmp_path / "bad.csv").write_text("lab name,class\nSchlieren,lines,extra\n")
    res = CliRunner().invoke(
        main, ["import", str(tree), str(tmp_path / "x"), "--class-map", str(tmp_path / "bad.csv")]
    )
    assert res.exit_code == 2
    assert f"{tmp_path / 'bad.csv'}: row 2: expected 'lab name,class'" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "x").exists()


def _mfi_export(
    folder: Path, n_classes: int, seed: int, with_images: bool = True
) -> dict[str, str]:
    """An MFI table as a lab keeps it: lower snake case, a ``type`` column, one thumbnail
    per particle (simulated crops, so the classes differ)."""
    from svpgen.simulate import SimConfig, simulate

    names = LAB_CLASSES[n_classes]
    sim = simulate({c: 24 for c in names}, seed=seed, config=SimConfig(workers=1, label_noise=0.0))
    folder.mkdir(parents=True)
    rows = []
    for i, (img, label) in enumerate(zip(sim.particles.images, sim.particles.table["label"]), 1):
        if with_images:
            Image.fromarray(img).save(folder / f"particle_{i:05d}.png")
        ecd = 3.0 + (i % 17) * 2.0
        rows.append(
            f"{i},{1 + i // 10},{1 + i % 10},{ecd:.2f},{int(np.pi * (ecd / 1.4) ** 2)},"
            f"{img.mean():.1f},0,63,0,63,0,{names[label]}"
        )
    header = (
        "particle_id,frame_num,particle_num,ecd_um,area_px,intensity_mean,"
        "x_left,x_right,y_top,y_bottom,edge_particle,type"
    )
    text = "sample,lab export\noperator,anon\n\n" + header + "\n" + "\n".join(rows) + "\n"
    (folder / "particles.csv").write_text(text)
    return names


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_lab_classes_end_to_end(tmp_path, n_classes):
    """import → info → train-classifier → evaluate → classify → counts, on a lab's own
    class list (MFI snake case with a ``type`` column)."""
    names = _mfi_export(tmp_path / "mfi", n_classes, seed=n_classes)
    res = _invoke("import", tmp_path / "mfi", tmp_path / "store")
    assert f"imported {24 * n_classes} particles (mfi)" in res.output
    store = ParticleStore(tmp_path / "store")
    labels = resolve_class_names(names.values())
    assert set(store.classes) == set(labels.values()) and len(store.classes) == n_classes
    assert (store.table["vs_class"].map(labels) == store.table["label"]).all()
    assert store.table["esd_um"].notna().all() and store.table["frame_number"].notna().all()

    _invoke(
        "train-classifier",
        tmp_path / "store",
        tmp_path / "clf",
        "--preset",
        "smoke",
        "--device",
        "cpu",
    )
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["classes"] == store.classes
    prevalence = ":".join(
        "1" if c in default_minority(store.table["label"].value_counts()) else "1000"
        for c in store.classes
    )
    _invoke(
        "evaluate",
        tmp_path / "clf",
        tmp_path / "store",
        "--out",
        tmp_path / "eval",
        "--prevalence",
        prevalence,
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert list(metrics["as_sampled"]["per_class"]) == store.classes
    assert 0 <= metrics["at_prevalence"]["macro_auprc"] <= 1

    _invoke("classify", tmp_path / "clf", tmp_path / "mfi", "--out", tmp_path / "pred.csv")
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 24 * n_classes and set(pred["predicted"]) <= set(store.classes)
    assert [c for c in pred.columns if c.startswith("p_")] == [f"p_{c}" for c in store.classes]
    _invoke(
        "counts", tmp_path / "pred.csv", "--out", tmp_path / "counts", "--fluid-volume-ml", "0.25"
    )
    counts = pd.read_csv(tmp_path / "counts" / "counts.csv")
    assert set(pred["predicted"]) <= set(counts["class"])


def test_mfi_without_any_image_keeps_the_rows_as_measurements(tmp_path):
    _mfi_export(tmp_path / "mfi", 2, seed=1, with_images=False)
    res = _invoke("import", tmp_path / "mfi", tmp_path / "store")
    assert "no image for 48 instrument rows: kept as measurements only" in res.output
    store = ParticleStore(tmp_path / "store")
    assert len(store) == 0 and len(store.measurements) == 48
    assert set(store.measurements["label"]) == {"notoil", "badoil"}
    assert (
        "measurements 48 instrument rows without an image"
        in _invoke("info", tmp_path / "store").output
    )


def test_mfi_snake_case_crops_from_frames(tmp_path, rng):
    from conftest import particle_image

    folder = tmp_path / "run"
    folder.mkdir()
    frame = np.full((120, 160), 170, np.uint8)
    frame[10:50, 20:68] = particle_image(rng, 40, 48)
    Image.fromarray(frame).save(folder / "frame_0003.png")
    (folder / "table.csv").write_text(
        "particle_id,frame_num,ecd_um,area_px,x_left,x_right,y_top,y_bottom,class\n"
        "7,3,12.5,420,20,67,10,49,Silicone oil\n"
    )
    store, result = import_source(folder, tmp_path / "out")
    assert result.format == "mfi" and len(store) == 1
    assert np.array_equal(store.images[0], preprocess(frame[10:50, 20:68]))
    assert (
        store.table.loc[0, "label"] == "silicone_oil"
        and store.table.loc[0, "origin"] == "frame_0003.png@20,10"
    )


def _independent_tiles(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Tiles by projections, not connected regions: bands of rows holding any non-black
    pixel, column runs inside a band, then the rows each column run spans."""
    boxes = []

    def runs(mask: np.ndarray) -> list[tuple[int, int]]:
        edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]))
        return list(zip(edges[::2], edges[1::2]))

    for y0, y1 in runs((gray > 0).any(1)):
        band = gray[y0:y1]
        for x0, x1 in runs((band > 0).any(0)):
            for r0, r1 in runs((band[:, x0:x1] > 0).any(1)):
                boxes.append((int(x0), int(y0 + r0), int(x1 - x0), int(r1 - r0)))
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def test_real_bare_collage_splits_into_its_tiles(real_fixtures, tmp_path):
    path = real_fixtures / COLLAGE
    res = _invoke("import", path, tmp_path / "out", "--pixel-um", "0.74")
    assert "imported 211 particles (collage)" in res.output and "skipped" not in res.output
    store = ParticleStore(tmp_path / "out")
    gray = np.asarray(Image.open(path).convert("L"))  # Pillow's own 601 luma of the RGB LZW file
    boxes = _independent_tiles(gray)
    assert len(boxes) == sum(BANDS_BY_EYE) == len(store) == 211
    t = store.table
    assert list(zip(t["image_x"], t["image_y"], t["image_w"], t["image_h"])) == boxes
    for i, (x, y, w, h) in enumerate(boxes):
        assert np.array_equal(store.images[i], preprocess(gray[y : y + h, x : x + w])), boxes[i]
    assert t["origin"].iloc[0] == f"{path.name}@0,0" and (t["pixel_um"] == 0.74).all()
    assert (t["native_h"].between(24, 174)).all() and (t["label"] == "unknown").all()


def test_collage_pixel_size_from_its_context_file_and_skipped_regions(real_fixtures, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    gray = np.asarray(Image.open(real_fixtures / COLLAGE).convert("L")).copy()
    gray[940:943, 600:700] = 120  # a thin strip: no particle tile
    gray[0:30, 34:36] = 150  # joins the first two tiles (34 and 37 px high): not rectangular
    Image.fromarray(np.dstack([gray] * 3)).save(run / "lab_run_000001.tif", compression="tiff_lzw")
    (run / "lab_run.ctx").write_text(
        "[Software]\r\nVersion=4.12\r\n[Fluidics]\r\nCalibrationConstant=0.6088\r\n"
    )
    Image.fromarray(((gray > 0) * 255).astype(np.uint8)).save(run / "lab_run_000001_bin.tif")
    store, result = import_source(run, tmp_path / "out", label="silicone_oil")
    assert result.format == "folder" and (store.table["pixel_um"] == 0.6088).all()
    skipped = result.report[result.report["status"] == "skipped"]["reason"].tolist()
    assert any("region too thin" in r and "x=600 y=940" in r for r in skipped)
    assert any("non-rectangular region" in r for r in skipped)
    assert any("FlowCam mask" in r for r in skipped)
    assert len(store) == 211 - 2 and set(store.table["label"]) == {"silicone_oil"}


def test_not_a_collage_is_one_clear_line(tmp_path, rng):
    from conftest import particle_image

    Image.fromarray(particle_image(rng)).save(tmp_path / "single.png")
    res = CliRunner().invoke(main, ["import", str(tmp_path / "single.png"), str(tmp_path / "out")])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "single.png: an image that is no collage" in res.output


def _lab_store(path: Path, counts: dict[str, int], names: dict[str, str]) -> Path:
    """A store of a lab's labelled particles (simulated crops under the lab's names)."""
    from svpgen.simulate import SimConfig, simulate

    sim = simulate(counts, seed=5, config=SimConfig(workers=1, label_noise=0.0)).particles
    t = sim.table
    t["vs_class"] = t["label"].map(names)
    t["label"] = t["vs_class"].map(resolve_class_names(names.values()))
    t["source"] = "real"
    ParticleStore.write(path, sim, provenance_record("a lab's labelled particles"))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "counts, names",
    [
        (
            {"protein": 200, "silicone_oil": 80},
            {"protein": "Protein", "silicone_oil": "Silicone oil"},
        ),
        (
            {"protein": 200, "silicone_oil": 80, "air_bubble": 80, "glass": 120},
            {
                "protein": "Protein",
                "silicone_oil": "SO",
                "air_bubble": "Air bubble",
                "glass": "Schlieren lines",
            },
        ),
    ],
    ids=["two-classes", "four-classes"],
)
def test_study_on_a_labs_store(tmp_path, counts, names):
    """``svpgen study --data``: Table 1's scheme on the lab's classes, pools fitted to a
    small store, the report in the lab's words."""
    data = _lab_store(tmp_path / "lab", counts, names)
    out = tmp_path / "study"
    res = _invoke("study", "--preset", "smoke", "--data", data, "--out", out, "--device", "cpu")
    assert "pools fitted to the data" in (out / "study.log").read_text()
    cfg = json.loads((out / "study.json").read_text())["config"]
    classes = list(resolve_class_names(names.values()).values())
    assert sorted(cfg["classes"]) == sorted(classes)
    minority = [c for c in ("silicone_oil", "air_bubble") if c in classes]
    assert cfg["minority"] == minority
    assert cfg["prevalence"] == [1.0 if c in minority else 1000.0 for c in cfg["classes"]]
    assert sorted(p.name for p in (out / "diffusion").iterdir()) == sorted(minority)
    table = pd.read_csv(out / "report" / "table2.csv")
    cnn = table[table["model"] == "resnet18"]
    assert len(cnn) == 3 and table["macro AUPRC"].between(0, 1).all()
    assert set(table["model"]) == {"resnet18", "rules", "forest"}  # and the baselines' rows
    shorts = [
        {"protein": "PA", "silicone_oil": "SO", "air_bubble": "AB"}.get(c, c)
        for c in cfg["classes"]
    ]
    assert all(f"R {s}" in table.columns for s in shorts)
    # each class's AUPRC (empty for a class the small evaluation pool lacks), whose mean over
    # the classes present is the macro AUPRC
    per_class_ap = table[[f"AP {s}" for s in shorts]].to_numpy()
    assert np.isfinite(per_class_ap).any(1).all()
    assert np.allclose(np.nanmean(per_class_ap, 1), table["macro AUPRC"], atol=1e-9)
    pairs = pd.read_csv(out / "report" / "comparisons.csv")
    assert pairs["difference"].notna().all()
    report = (out / "report" / "report.md").read_text()
    assert "prevalence " + ":".join(f"{p:g}" for p in cfg["prevalence"]) in report
    words = {c: c.replace("_", " ") for c in cfg["classes"]}
    majority = ", ".join(words[c] for c in cfg["classes"] if c not in minority)
    said = f"Classes: {majority} (majority) and {', '.join(words[c] for c in minority)} (minority"
    assert said in report
    pools = {
        p.name: ParticleStore(p) for p in (out / "data").iterdir() if (p / "store.json").exists()
    }
    assert set(pools["eval"].table["label"]) == set(cfg["classes"])
    assert "study finished" in res.output


def test_study_refuses_what_it_cannot_do(tmp_path):
    from dataclasses import replace

    from svpgen.study.config import PRESETS
    from svpgen.study.datasets import fit_to_data, resolve_classes

    with pytest.raises(SvpgenError, match="the simulator renders"):
        resolve_classes(replace(PRESETS["smoke"], classes=("protein", "schlieren_lines")))
    cfg = resolve_classes(PRESETS["smoke"], {"protein": 500, "silicone_oil": 12})
    with pytest.raises(
        SvpgenError, match=r"≥ 20 labelled images of each class \(silicone_oil 12\)"
    ):
        fit_to_data(cfg, {"protein": 500, "silicone_oil": 12})
    with pytest.raises(SvpgenError, match="no minority class among"):
        resolve_classes(PRESETS["smoke"], {"protein": 500})
