"""QC counts against hand-computed expectations."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from svpgen.cli import main
from svpgen.qc.counts import (
    PARTICULATE,
    RunInfo,
    compliance,
    count_table,
    poisson_ci,
    run_info_from_summary,
)


def run_frame():
    # sizes (µm) and predicted classes of a tiny run
    rows = [
        ("protein", 3.0),
        ("protein", 12.0),
        ("protein", 30.0),
        ("protein", 11.0),
        ("silicone_oil", 4.0),
        ("silicone_oil", 10.0),
        ("air_bubble", 40.0),
        ("air_bubble", 15.0),
        ("protein", 1.5),
        ("protein", 26.0),
    ]
    df = pd.DataFrame(rows, columns=["predicted", "esd_um"])
    df["confidence"] = [0.99, 0.95, 0.6, 0.99, 0.9, 0.99, 0.99, 0.99, 0.99, 0.99]
    return df


def cell(table, cls, t, col="count"):
    return table[(table["class"] == cls) & (table["threshold_um"] == t)][col].iloc[0]


def test_counts_and_concentrations():
    t = count_table(run_frame(), RunInfo(fluid_volume_ml=0.5, dilution=2.0, fill_volume_ml=5.0))
    assert (
        cell(t, "protein", 2) == 5 and cell(t, "protein", 10) == 4 and cell(t, "protein", 25) == 2
    )
    assert cell(t, "silicone_oil", 10) == 1 and cell(t, "air_bubble", 10) == 2
    # particulate excludes the two bubbles: sizes ≥10 → protein 12, 30, 11, 26 + oil 10
    assert cell(t, PARTICULATE, 10) == 5 and cell(t, PARTICULATE, 25) == 2
    assert cell(t, PARTICULATE, 10, "per_mL") == pytest.approx(5 * 2 / 0.5)
    assert cell(t, PARTICULATE, 10, "per_container") == pytest.approx(20 * 5)


def test_poisson_intervals():
    lo, hi = poisson_ci(np.array([0, 4]))
    assert lo[0] == 0 and hi[0] == pytest.approx(3.6889, abs=1e-3)
    assert lo[1] == pytest.approx(1.0899, abs=1e-3) and hi[1] == pytest.approx(10.2416, abs=1e-3)


def test_verdicts_at_the_limits_edges():
    # 0.01 mL imaged, fill 10 mL → each particle is 1000 per container
    six = pd.DataFrame({"predicted": ["protein"] * 6, "esd_um": [12.0] * 6})
    seven = pd.DataFrame({"predicted": ["protein"] * 7, "esd_um": [12.0] * 7})
    run = RunInfo(fluid_volume_ml=0.01, fill_volume_ml=10.0)
    v6 = compliance(count_table(six, run), run).set_index("size_um")
    v7 = compliance(count_table(seven, run), run).set_index("size_um")
    assert v6.loc["≥10", "value"] == pytest.approx(6000) and v6.loc["≥10", "verdict"] == "PASS"
    assert v7.loc["≥10", "verdict"] == "FAIL"
    assert v6.loc["≥25", "verdict"] == "PASS" and "upper 95%" in v6.loc["≥25", "note"]
    # > 100 mL container: per-mL limits (25 / mL at ≥10 µm); 0.2 mL imaged: 5 particles = 25/mL
    big = RunInfo(fluid_volume_ml=0.2, fill_volume_ml=250.0)
    five = pd.DataFrame({"predicted": ["protein"] * 5, "esd_um": [12.0] * 5})
    v = compliance(count_table(five, big), big).set_index("size_um")
    assert (
        v.loc["≥10", "unit"] == "per mL"
        and v.loc["≥10", "value"] == pytest.approx(25)
        and v.loc["≥10", "verdict"] == "PASS"
    )
    micro = RunInfo(fluid_volume_ml=0.2, fill_volume_ml=250.0, method="microscopic")
    assert (
        compliance(count_table(five, micro), micro).set_index("size_um").loc["≥10", "verdict"]
        == "FAIL"
    )  # limit 12/mL
    assert compliance(
        count_table(five, RunInfo(0.2)), RunInfo(0.2)
    ).empty  # no fill volume: no verdict


def test_confidence_threshold_makes_unclassified():
    t = count_table(run_frame(), RunInfo(fluid_volume_ml=1.0), min_confidence=0.8)
    assert cell(t, "unclassified", 2) == 1  # the 30 µm protein at confidence 0.6
    assert cell(t, PARTICULATE, 25) == 2  # still counted as particulate


def test_summary_volume_and_cli(tmp_path):
    assert run_info_from_summary({"Fluid Volume Imaged": "0.1234 ml"}) == {
        "fluid_volume_ml": 0.1234
    }
    assert run_info_from_summary({"Sample Volume Processed": "1.0 ml", "Efficiency": "53.4%"})[
        "fluid_volume_ml"
    ] == pytest.approx(0.534)
    run_frame().to_csv(tmp_path / "p.csv", index=False)
    res = CliRunner().invoke(
        main,
        [
            "counts",
            str(tmp_path / "p.csv"),
            "--out",
            str(tmp_path / "c"),
            "--fluid-volume-ml",
            "0.5",
            "--fill-volume-ml",
            "5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output
    for name in (
        "counts.csv",
        "compliance.csv",
        "counts.md",
        "counts.html",
        "size_distribution.png",
    ):
        assert (tmp_path / "c" / name).exists()
    res = CliRunner().invoke(
        main, ["counts", str(tmp_path / "p.csv"), "--out", str(tmp_path / "d")]
    )
    assert res.exit_code == 2 and "no fluid volume imaged" in res.output
    pd.DataFrame({"predicted": ["protein"], "esd_um": ["big"]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    res = CliRunner().invoke(
        main,
        [
            "counts",
            str(tmp_path / "bad.csv"),
            "--out",
            str(tmp_path / "e"),
            "--fluid-volume-ml",
            "1",
        ],
    )
    assert res.exit_code == 2 and "row 2" in res.output and "'big'" in res.output
