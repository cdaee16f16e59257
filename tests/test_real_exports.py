"""Real instrument exports: the real FlowCam run in ../shared/fixtures, and hand-made
libraries, classifications, particle CSVs and compressed collages written the way
VisualSpreadsheet writes them (RGB, LZW, CRLF, real field names)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from click.testing import CliRunner
from conftest import particle_image
from PIL import Image

from svpgen.cli import main
from svpgen.data.importers import import_source, read_source
from svpgen.data.importers.flowcam import read_run_summary
from svpgen.data.preprocess import preprocess
from svpgen.data.store import ParticleStore
from svpgen.errors import SvpgenError
from svpgen.simulate.writers import LST_FIELDS

REAL_RUN = "real_flowcam_4x"
REAL_STEM = "flowcam_COMICS_DY086_20171118_MSC019_t0_4x"


def real_lst_rows(folder: Path) -> pd.DataFrame:
    lines = (folder / f"{REAL_STEM}.lst").read_text().splitlines()
    n = int(lines[1].split("|")[1])
    names = [line.split("|")[0] for line in lines[2 : 2 + n]]
    return pd.DataFrame([line.split("|") for line in lines[2 + n :]], columns=names)


def test_real_flowcam_run_imports_every_particle(real_fixtures, tmp_path):
    folder = real_fixtures / REAL_RUN
    store, result = import_source(folder, tmp_path / "out")
    rows = real_lst_rows(folder)
    assert result.format == "flowcam" and len(store) == len(rows) == 506
    assert (result.report["status"] == "imported").all()
    collage = np.asarray(
        Image.open(folder / f"{REAL_STEM}_000001.tif").convert("L")
    )  # independent: Pillow's 601 luma
    for i, r in rows.iterrows():
        x, y, w, h = (int(r[k]) for k in ("image_x", "image_y", "image_w", "image_h"))
        assert np.array_equal(store.images[i], preprocess(collage[y : y + h, x : x + w])), (
            f"particle {r['id']}"
        )
    t = store.table
    assert np.allclose(t["pixel_um"], 1.813)
    np.testing.assert_allclose(t["esd_um"], rows["esd_diameter"].astype(float))
    assert t["image_id"].iloc[0] == rows["image_id"].iloc[0] and (t["label"] == "unknown").all()


def test_real_run_with_label_classification_and_info(real_fixtures, tmp_path):
    run = tmp_path / "run (4x) v1.0"
    shutil.copytree(real_fixtures / REAL_RUN, run)
    runner = CliRunner()
    res = runner.invoke(main, ["import", str(run), str(tmp_path / "oil"), "--label", "SO"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["info", str(tmp_path / "oil")])
    assert res.exit_code == 0
    assert "silicone_oil" in res.output and "1.813" in res.output and "27–187" in res.output
    # a lab's own class name is a class; a name without letters or digits is refused
    res = runner.invoke(main, ["import", str(run), str(tmp_path / "zoo"), "--label", "Zooplankton"])
    assert res.exit_code == 0, res.output
    assert set(ParticleStore(tmp_path / "zoo").table["label"]) == {"zooplankton"}
    res = runner.invoke(main, ["import", str(run), str(tmp_path / "bad"), "--label", "?!"])
    assert res.exit_code == 2 and "--label '?!' is not a class name" in res.output

    # a VisualSpreadsheet classification beside the .lst (observed v3 layout), one id that
    # doesn't exist
    cla = [
        "v3",
        "1",
        "SvP classes",
        "3",
        "Silicone Oil",
        "OR",
        "1",
        r"C:\filters\round.fil",
        "3",
        "1",
        "2",
        "3",
        "Air Bubbles",
        "OR",
        "0",
        "2",
        "4",
        "9999",
        "Plankton",
        "AND",
        "0",
        "1",
        "5",
    ]
    (run / f"{REAL_STEM}.cla").write_bytes("\r\n".join(cla).encode() + b"\r\n")
    store, result = import_source(run, tmp_path / "classified")
    t = store.table.set_index("particle_id")
    assert (
        list(t.loc[[1, 2, 3], "label"]) == ["silicone_oil"] * 3
        and list(t.loc[[1, 2, 3], "vs_class"]) == ["Silicone Oil"] * 3
    )
    assert (
        t.loc[4, "label"] == "air_bubble"
        and t.loc[5, "label"] == "plankton"  # the lab's own class name, kept
        and t.loc[5, "vs_class"] == "Plankton"
    )
    assert t.loc[6, "label"] == "unknown" and pd.isna(t.loc[6, "vs_class"])
    bad = result.report[result.report["status"] == "skipped"]
    assert (
        len(bad) == 1 and "9999" in bad["reason"].iloc[0] and bad["file"].iloc[0].endswith(".cla")
    )
    assert len(store) == 506


def _rgb(gray: np.ndarray) -> np.ndarray:
    """A colour camera's view of a gray scene: slightly different channels."""
    return np.clip(
        np.dstack([gray.astype(int) + 2, gray.astype(int), gray.astype(int) - 3]), 0, 255
    ).astype(np.uint8)


def _list_text(rows: list[dict], collage: str) -> str:
    lines = ["017", f"num-fields|{len(LST_FIELDS)}"] + [f"{n}|{k}" for n, k in LST_FIELDS]
    for i, r in enumerate(rows):
        values = (
            {n: 0 for n, _ in LST_FIELDS}
            | {
                "id": i + 1,
                "cal_const": "0.7380",
                "esd_diameter": f"{10 + i:.4f}",
                "timestamp": "2021-03-04T10:11:12.123",
                "collage_file": collage,
                "image_id": f"ECD3F2A1-0000-0000-0000-{i:012d}",
            }
            | r
        )
        lines.append("|".join(str(values[n]) for n, _ in LST_FIELDS))
    return "\r\n".join(lines) + "\r\n"


def _collage(rng, boxes, height=120, width=220):
    gray = np.zeros((height, width), np.uint8)
    crops = []
    for x, y, w, h in boxes:
        crop = particle_image(rng, h, w)
        gray[y : y + h, x : x + w] = crop
        crops.append(crop)
    return gray, crops


def test_folder_of_flb_libraries(tmp_path, rng):
    root = tmp_path / "libraries"
    boxes = [(2, 2, 50, 40), (54, 2, 60, 64)]
    expected = {}
    for folder, name in (
        ("Oil (syringes) v1.2", "Silicone Oil droplets"),
        ("bubbles 2021.03", "Air bubbles"),
        ("misc", "Fibres or glass?"),
    ):
        (root / folder).mkdir(parents=True)
        gray, crops = _collage(rng, boxes)
        rows = [{"image_x": x, "image_y": y, "image_w": w, "image_h": h} for x, y, w, h in boxes]
        (root / folder / f"{name}.flb").write_text(
            _list_text(rows, f"{name}_lib_images_000001.tif"), newline=""
        )
        Image.fromarray(_rgb(gray)).save(
            root / folder / f"{name}_lib_images_000001.tif", compression="tiff_lzw"
        )
        expected[name] = [np.asarray(Image.fromarray(_rgb(c)).convert("L")) for c in crops]
    (root / "orphan").mkdir()  # a library whose collage is missing
    (root / "orphan" / "Protein.flb").write_text(
        _list_text(
            [{"image_x": 2, "image_y": 2, "image_w": 20, "image_h": 20}],
            "Protein_lib_images_000001.tif",
        )
    )

    store, result = import_source(root, tmp_path / "out")
    assert result.format == "flowcam" and len(store) == 6
    t = store.table
    labels = t.groupby("vs_class")["label"].first().to_dict()
    assert labels == {
        "Silicone Oil droplets": "silicone_oil",
        "Air bubbles": "air_bubble",
        "Fibres or glass?": "fibres_or_glass",  # names two canonical classes: the lab's own
    }
    for name, crops in expected.items():
        rows = np.flatnonzero((t["vs_class"] == name).to_numpy())
        for row, crop in zip(rows, crops):
            assert np.array_equal(store.images[row], preprocess(crop))
    assert t["id"].is_unique and t["id"].str.startswith("Oil (syringes) v1.2/").sum() == 2
    skipped = result.report[result.report["status"] == "skipped"]
    assert (
        len(skipped) == 1
        and "missing collage file" in skipped["reason"].iloc[0]
        and skipped["file"].iloc[0].endswith("Protein.flb")
    )


@pytest.mark.parametrize("compression", ["tiff_lzw", "packbits", "tiff_adobe_deflate", "raw"])
def test_compressed_rgb_collages(tmp_path, rng, compression):
    folder = tmp_path / "run"
    folder.mkdir()
    boxes = [(0, 0, 50, 40), (52, 0, 60, 64)]
    gray, crops = _collage(rng, boxes)
    Image.fromarray(_rgb(gray)).save(folder / "run_000001.tif", compression=compression)
    rows = [{"image_x": x, "image_y": y, "image_w": w, "image_h": h} for x, y, w, h in boxes]
    (folder / "run.lst").write_text(_list_text(rows, "run_000001.tif"))
    store, result = import_source(folder, tmp_path / "out")
    assert len(store) == 2
    for i, crop in enumerate(crops):
        assert np.array_equal(
            store.images[i], preprocess(np.asarray(Image.fromarray(_rgb(crop)).convert("L")))
        )


def test_tifffile_lzw_and_16bit_collages(tmp_path, rng):
    """What other software writes: tifffile's LZW and a 16-bit gray collage (12-bit data)."""
    folder = tmp_path / "run"
    folder.mkdir()
    boxes = [(0, 0, 50, 40)]
    gray, crops = _collage(rng, boxes)
    tifffile.imwrite(
        folder / "a_000001.tif",
        _rgb(gray),
        compression="lzw" if _has_imagecodecs() else None,
        photometric="rgb",
    )
    tifffile.imwrite(folder / "b_000001.tif", gray.astype(np.uint16) * 16)
    rows = [{"image_x": 0, "image_y": 0, "image_w": 50, "image_h": 40}]
    (folder / "a.lst").write_text(_list_text(rows, "a_000001.tif"))
    (folder / "b.lst").write_text(_list_text(rows, "b_000001.tif"))
    store, _ = import_source(folder, tmp_path / "out")
    assert len(store) == 2
    assert (
        np.abs(store.images[1].astype(int) - preprocess(crops[0]).astype(int)).max() <= 1
    )  # 12-bit rescaled


def _has_imagecodecs() -> bool:
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return False
    return True


def test_truncated_lzw_collage_and_missing_field_are_reported(tmp_path, rng):
    folder = tmp_path / "run"
    folder.mkdir()
    boxes = [(0, 0, 50, 40), (52, 0, 60, 64)]
    gray, _ = _collage(rng, boxes, height=400, width=400)
    gray = (
        (gray.astype(int) + rng.integers(0, 40, gray.shape)).clip(0, 255).astype(np.uint8)
    )  # incompressible
    Image.fromarray(_rgb(gray)).save(folder / "run_000001.tif", compression="tiff_lzw")
    data = (folder / "run_000001.tif").read_bytes()
    (folder / "run_000001.tif").write_bytes(data[: len(data) // 3])
    Image.fromarray(_rgb(gray)).save(folder / "run_000002.tif", compression="tiff_lzw")
    rows = [{"image_x": x, "image_y": y, "image_w": w, "image_h": h} for x, y, w, h in boxes]
    text = _list_text(rows + rows, "run_000001.tif").splitlines()
    text[-2] = text[-2].replace("run_000001.tif", "run_000002.tif")
    text[-1] = (
        text[-1].replace("run_000001.tif", "run_000002.tif").replace("|52|", "||", 1)
    )  # image_x missing
    (folder / "run.lst").write_text("\n".join(text) + "\n")
    store, result = import_source(folder, tmp_path / "out")
    assert len(store) == 1
    reasons = result.report.loc[result.report["status"] == "skipped", "reason"].tolist()
    assert sum("truncated or corrupt" in r for r in reasons) == 2
    assert any("missing or non-numeric image_x" in r for r in reasons)


def _csv_export(folder: Path, rng) -> tuple[np.ndarray, Path]:
    """A VisualSpreadsheet particle CSV export: 71 columns, CRLF, µm units, a GUID that starts with
    ECD."""
    gray, crops = _collage(rng, [(0, 0, 50, 40), (52, 0, 60, 64)])
    Image.fromarray(_rgb(gray)).save(folder / "run_000001.tif", compression="tiff_lzw")
    cols = {
        "Particle ID": [1, 2],
        "Area (ABD)": [100.0, 200.0],
        "Diameter (ESD)": [12.5, 30.0],
        "Class": ["SO", "aggregates"],
        "Calibration Factor": [0.738, 0.738],
        "Image File": ["run_000001.tif"] * 2,
        "Image X": [0, 52],
        "Image Y": [0, 0],
        "Image Width": [50, 60],
        "Image Height": [40, 64],
        "UUID": ["ECD3F2A1-1111-2222-3333-444455556666", "ECD00000-1111-2222-3333-444455556666"],
    }
    filler = {f"Measure {i}": [0.5, 0.25] for i in range(71 - len(cols) - 1)}
    frame = pd.DataFrame({**cols, **filler, "Original Reference ID": ["ECDABCDE", "ECDEF012"]})
    path = folder / "particles.csv"
    path.write_bytes(frame.to_csv(index=False, lineterminator="\r\n").encode("latin-1"))
    return crops, path


def test_flowcam_particle_csv_as_file_and_in_folder(tmp_path, rng):
    folder = tmp_path / "csvrun"
    folder.mkdir()
    crops, path = _csv_export(folder, rng)
    for src in (path, folder):
        result = read_source(src)
        assert result.format == "flowcam", src
        t = result.particles.table
        assert list(t["label"]) == ["silicone_oil", "protein"] and list(t["vs_class"]) == [
            "SO",
            "aggregates",
        ]
        assert list(t["esd_um"]) == [12.5, 30.0] and list(t["pixel_um"]) == [0.738, 0.738]
        assert np.array_equal(
            result.particles.images[1],
            preprocess(np.asarray(Image.fromarray(_rgb(crops[1])).convert("L"))),
        )


def test_mfi_requires_mfi_columns_and_keeps_its_class(tmp_path, rng):
    (tmp_path / "guid.csv").write_text("Name,ECD Guid\nx,ECD00000-1111\n")
    with pytest.raises(SvpgenError, match="cannot tell the format"):
        read_source(tmp_path / "guid.csv")
    folder = tmp_path / "mfi"
    folder.mkdir()
    header = "#,Frame #,Particle #,ECD(um),Area(pixels),Intensity Mean,Edge Particle,Class\n"
    (folder / "run.csv").write_text(
        "Sample,abc\n\n"
        + header
        + "1,1,1,10.0,78.54,500,0,Silicone Oil\n2,1,2,20.0,314.16,500,0,Protein\n"
        + "3,x,2,oops,1,1,0,Protein\n"
    )
    for n in (1, 2):
        Image.fromarray(particle_image(rng, 30, 30)).save(folder / f"particle_{n}.png")
    result = read_source(folder)
    assert result.format == "mfi"
    assert list(result.particles.table["label"]) == ["silicone_oil", "protein"]
    assert list(result.particles.table["vs_class"]) == ["Silicone Oil", "Protein"]
    bad = result.report[result.report["status"] == "skipped"]
    assert list(bad["row"]) == [6] and "malformed row" in bad["reason"].iloc[0]


def test_run_summary_with_repeats_tabs_and_spaces(tmp_path):
    text = (
        "Name: run\r\nRun Summary\r\n\tFluid Volume Imaged:\t 0.2500 ml\r\n"
        "  Efficiency :  41.2%\r\n\tFluid Volume Imaged: 0.2500 ml\r\n"
    )
    (tmp_path / "run_run_summary.txt").write_bytes(text.encode())
    summary = read_run_summary(tmp_path)
    assert summary["Fluid Volume Imaged"] == "0.2500 ml" and summary["Efficiency"] == "41.2%"
    (tmp_path / "old_summary.csv").write_text(
        "========Run Summaries========\nMagnification,4X\nFluid Volume Imaged,0.3 "
        "ml\n========Particle Statistics========\nCount,5\n"
    )
    assert read_run_summary(tmp_path)["Magnification"] == "4X"


def test_classify_and_count_a_real_export(real_fixtures, smoke_classifier, tmp_path):
    runner = CliRunner()
    export = real_fixtures / REAL_RUN
    res = runner.invoke(
        main, ["classify", str(smoke_classifier), str(export), "--out", str(tmp_path / "pred.csv")]
    )
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 506 and pred["esd_um"].notna().all() and (pred["pixel_um"] == 1.813).all()
    res = runner.invoke(
        main,
        [
            "counts",
            str(tmp_path / "pred.csv"),
            "--export",
            str(export),
            "--fluid-volume-ml",
            "0.5",
            "--fill-volume-ml",
            "10",
            "--out",
            str(tmp_path / "counts"),
        ],
    )
    assert res.exit_code == 0, res.output
    counts = pd.read_csv(tmp_path / "counts" / "counts.csv")
    total = counts[
        (counts["class"].str.startswith("particulate")) & (counts["threshold_um"] == 2.0)
    ]["count"].iloc[0]
    assert total == int(((pred["predicted"] != "air_bubble") & (pred["esd_um"] >= 2.0)).sum())
