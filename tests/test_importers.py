"""Importers: folder tree, FlowCam collage + .lst, FlowCam CSV, MFI; every bad input."""

import numpy as np
import pandas as pd
import pytest
import tifffile
from click.testing import CliRunner
from conftest import LST_FIELDS, particle_image, write_lst
from PIL import Image

from svpgen.cli import main
from svpgen.data.importers import import_source, read_source
from svpgen.data.preprocess import preprocess
from svpgen.data.store import ParticleStore
from svpgen.errors import SvpgenError


def test_folder_tree_with_synonyms(class_tree, tmp_path):
    store, result = import_source(class_tree, tmp_path / "out")
    assert result.format == "folder"
    assert store.table["label"].value_counts().to_dict() == {
        "protein": 3,
        "silicone_oil": 2,
        "air_bubble": 2,
    }
    first = np.asarray(Image.open(class_tree / "protein" / "p0.png"))
    row = store.table.index[store.table["id"] == "protein/p0.png"][0]
    assert np.array_equal(store.images[row], preprocess(first))
    assert (tmp_path / "out" / "import_report.csv").exists()


def test_folder_bad_inputs_are_skipped_with_reasons(class_tree, tmp_path, rng):
    prot = class_tree / "protein"
    (prot / "zero.png").write_bytes(b"")
    (prot / "text.png").write_text("not an image at all")
    good = (prot / "p0.png").read_bytes()
    (prot / "trunc.png").write_bytes(good[: len(good) // 2])
    (prot / "notes.txt").write_text("hello")
    tifffile.imwrite(
        prot / "deep.tif", (particle_image(rng).astype(np.uint16) * 4)
    )  # 10-bit in 16-bit
    rgba = np.dstack([particle_image(rng)] * 3 + [np.full((40, 48), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(prot / "rgba.png")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(prot / "tiny.png")
    Image.fromarray(np.full((10000, 10000), 170, np.uint8)).save(prot / "huge.png")
    Image.fromarray(particle_image(rng).astype(np.uint8)).convert("P").save(prot / "palette.png")
    (class_tree / "zooplankton").mkdir()
    Image.fromarray(particle_image(rng)).save(class_tree / "zooplankton" / "z.png")
    (class_tree / "air").mkdir()  # empty class folder

    store, result = import_source(class_tree, tmp_path / "out")
    report = pd.read_csv(tmp_path / "out" / "import_report.csv")
    reasons = dict(zip(report["file"].str.rsplit("/", n=1).str[-1], report["reason"].fillna("")))
    assert "zero-byte" in reasons["zero.png"]
    assert "not an image" in reasons["text.png"]
    assert "corrupt" in reasons["trunc.png"]
    assert "not an image file type" in reasons["notes.txt"]
    assert "too small" in reasons["tiny.png"]
    assert "empty class folder" in reasons["air"]
    # a folder name that is no canonical class is the lab's own class, not a skip
    zoo = store.table[store.table["id"] == "zooplankton/z.png"]
    assert list(zoo["label"]) == ["zooplankton"] and list(zoo["vs_class"]) == ["zooplankton"]
    ids = set(store.table["id"])
    assert {
        "protein/deep.tif",
        "protein/rgba.png",
        "protein/huge.png",
        "protein/palette.png",
    } <= ids
    huge = store.images[store.table.index[store.table["id"] == "protein/huge.png"][0]]
    assert (huge == 170).all()
    deep = store.images[store.table.index[store.table["id"] == "protein/deep.tif"][0]]
    assert deep.max() > 150  # 10-bit values rescaled, not clipped or crushed
    assert result.skip_counts().sum() == 6


def test_nothing_usable_is_an_error_and_writes_nothing(tmp_path):
    (tmp_path / "src" / "protein").mkdir(parents=True)
    (tmp_path / "src" / "protein" / "a.png").write_bytes(b"")
    with pytest.raises(SvpgenError, match="nothing usable found \\(1 zero-byte file\\)"):
        import_source(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_flowcam_lst_exact_crops(flowcam_export, tmp_path):
    folder, crops = flowcam_export
    store, result = import_source(folder, tmp_path / "out")
    assert result.format == "flowcam" and len(store) == 3
    for i, crop in enumerate(crops):
        assert np.array_equal(store.images[i], preprocess(crop))
    t = store.table
    assert list(t["id"]) == ["run1:1", "run1:2", "run1:3"]
    assert (t["pixel_um"] == 0.55).all() and list(t["esd_um"]) == [10.0, 11.0, 12.0]
    assert list(t["native_w"]) == [50, 70, 30] and (t["label"] == "unknown").all()
    assert "timestamp" in t.columns and "particle_id" in t.columns


def test_flowcam_lst_bad_rows(flowcam_export, tmp_path):
    folder, _ = flowcam_export
    rows = [
        [1, 2, 3, 50, 40, 0.55, 1.0, 20.0, 10.0, 0.9, "t", "run1_000001.tif"],
        [2, 2, 3, 50, 40, 0.55, 1.0, 20.0, 10.0, 0.9, "t"],  # wrong field count
        [
            3,
            180,
            100,
            50,
            40,
            0.55,
            1.0,
            20.0,
            10.0,
            0.9,
            "t",
            "run1_000001.tif",
        ],  # outside collage
        [4, 2, 3, 50, 40, 0.55, 1.0, 20.0, 10.0, 0.9, "t", "run1_000009.tif"],  # missing collage
    ]
    write_lst(folder / "run1.lst", LST_FIELDS, rows)
    store, result = import_source(folder, tmp_path / "out")
    assert len(store) == 1
    counts = result.skip_counts().to_dict()
    assert counts == {"wrong field count": 1, "crop outside collage": 1, "missing collage file": 1}
    report = result.report
    assert list(report.loc[report["status"] == "skipped", "row"]) == [16, 17, 18]


def test_flowcam_lst_without_raw_esd_field_computes_it(flowcam_export, tmp_path):
    folder, _ = flowcam_export
    fields = [f for f in LST_FIELDS if f[0] != "esd_diameter"]
    write_lst(
        folder / "run1.lst",
        fields,
        [[1, 2, 3, 50, 40, 0.5, 2.0, 22.0, 0.9, "t", "run1_000001.tif"]],
    )
    store, _ = import_source(folder, tmp_path / "out")
    assert store.table["esd_um"].iloc[0] == pytest.approx((22.0 - 2.0) * 0.5)


def test_flowcam_csv_export(tmp_path, rng):
    folder = tmp_path / "csvrun"
    folder.mkdir()
    collage = np.zeros((60, 120), np.uint8)
    crop = particle_image(rng, 40, 50)
    collage[5:45, 10:60] = crop
    Image.fromarray(collage).save(folder / "coll_1.png")
    Image.fromarray(particle_image(rng, 30, 30)).save(folder / "single.png")
    pd.DataFrame(
        {
            "Particle ID": [1, 2],
            "Class": ["Silicone Oil", "bubble"],
            "Diameter (ESD) (µm)": [12.5, 30.0],
            "Calibration Factor": [0.55, 0.55],
            "Image File": ["coll_1.png", "single.png"],
            "Image X (px)": [10, 0],
            "Image Y (px)": [5, 0],
            "Image Width (px)": [50, 30],
            "Image Height (px)": [40, 30],
        }
    ).to_csv(folder / "export.csv", index=False)
    store, result = import_source(folder, tmp_path / "out")
    assert result.format == "flowcam"
    assert list(store.table["label"]) == ["silicone_oil", "air_bubble"]
    assert list(store.table["esd_um"]) == [12.5, 30.0]
    assert np.array_equal(store.images[0], preprocess(crop))


def test_mfi_csv_with_preamble_thumbnails_and_frames(tmp_path, rng):
    folder = tmp_path / "mfi"
    folder.mkdir()
    preamble = "Sample ID,abc\nOperator,me\nSoftware,MVAS 4.0\n\n"
    header = (
        "#,Frame #,Particle #,Time Stamp(s),ECD(um),Area(pixels),Perimeter,Circularity,"
        "Intensity Mean,Intensity STD,Intensity Min,Intensity Max,Max Feret Diameter(um),"
        "Aspect Ratio,X Left,X Right,Y Top,Y Bottom,Edge Particle\n"
    )
    rows = [
        "1,1,1,0.1,10.0,78.54,30,0.9,500,20,300,700,11,0.95,0,0,0,0,0",
        "2,1,2,0.1,20.0,314.16,60,0.9,500,20,300,700,21,0.95,0,0,0,0,1",
        "3,2,1,0.2,15.0,100.0,40,0.8,500,20,300,700,16,0.9,10,29,5,24,0",
    ]
    (folder / "mfi_run.csv").write_text(preamble + header + "\n".join(rows) + "\n")
    thumb = particle_image(rng, 30, 30).astype(np.uint16) * 4  # 10-bit values
    Image.fromarray(thumb.astype(np.uint16)).save(folder / "particle_1.png")
    Image.fromarray(thumb.astype(np.uint16)).save(folder / "particle_2.png")
    frame = np.full((64, 64), 700, np.uint16)
    tifffile.imwrite(folder / "frame_2.tif", frame)
    store, result = import_source(folder, tmp_path / "out")
    assert result.format == "mfi" and len(store) == 3
    t = store.table
    assert list(t["esd_um"]) == [10.0, 20.0, 15.0]
    assert t["pixel_um"].iloc[0] == pytest.approx(1.0, rel=1e-3)
    assert list(t["edge_particle"]) == [False, True, False]
    assert store.images[0].max() > 150
    assert t["native_w"].iloc[2] == 20
    _, dropped = import_source(folder, tmp_path / "out2", drop_edge=True)
    assert len(dropped.particles) == 2


def test_csv_without_expected_header(tmp_path):
    (tmp_path / "x.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(SvpgenError, match="cannot tell the format"):
        read_source(tmp_path / "x.csv")
    with pytest.raises(SvpgenError, match="no header line containing 'ECD'"):
        read_source(tmp_path / "x.csv", fmt="mfi")


def test_cli_import_info_and_errors(class_tree, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["import", str(class_tree), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "imported 7 particles" in res.output
    res = runner.invoke(main, ["import", str(class_tree), str(tmp_path / "out")])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"error: {tmp_path / 'out'} already holds a store with 7 particles; use --append to add "
        "to it or --overwrite to replace it"
    ]
    res = runner.invoke(main, ["info", str(tmp_path / "out")])
    assert res.exit_code == 0 and "silicone_oil" in res.output and "64×64" in res.output
    res = runner.invoke(
        main,
        ["split", str(tmp_path / "out"), str(tmp_path / "parts"), "--fractions", "a=0.5,b=0.5"],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        main, ["check-leakage", str(tmp_path / "parts" / "a"), str(tmp_path / "parts" / "b")]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        main, ["check-leakage", str(tmp_path / "out"), str(tmp_path / "parts" / "b")]
    )
    assert res.exit_code == 2 and "also appear in" in res.output


def test_killed_import_leaves_old_store(class_tree, tmp_path):
    """A real process killed mid-import: the old store survives intact."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    ParticleStore.write(
        tmp_path / "out",
        import_source(class_tree, tmp_path / "first")[1].particles,
        {"command": "x"},
    )
    script = textwrap.dedent(f"""
        import time, numpy as np
        import svpgen.data.store as st
        real = st.np.lib.format.open_memmap
        def slow(*a, **k):
            m = real(*a, **k); print("writing", flush=True); time.sleep(30); return m
        st.np.lib.format.open_memmap = slow
        from svpgen.data.importers import import_source
        import_source({str(class_tree)!r}, {str(tmp_path / "out")!r}, mode="overwrite")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ParticleStore(tmp_path / "out")
    assert len(store) == 7
