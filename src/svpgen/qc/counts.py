"""From a classified instrument run to a QC answer: cumulative particle counts and
concentrations by predicted class and size (USP <787>/<788>, Ph. Eur. 2.9.19).

* Sizes: the instrument's ESD (FlowCam) / ECD (MFI) in µm (``esd_um``).
* Concentration per mL = count × dilution / fluid volume imaged; per container =
  per mL × fill volume. 95% intervals are exact Poisson (Garwood) intervals on the count.
* Air bubbles are not particulate matter: the particulate total is every other class
  (protein, silicone oil, other, and particles left unclassified by a confidence threshold).
* Limits apply to the particulate total: ≤ 100 mL containers, per container
  (light obscuration ≤ 6000 at ≥ 10 µm, ≤ 600 at ≥ 25 µm; microscopic ≤ 3000 / ≤ 300);
  > 100 mL, per mL (light obscuration ≤ 25 / ≤ 3; microscopic ≤ 12 / ≤ 2). ≥ 2 and ≥ 5 µm
  are reported for information only. Pass/fail needs the fill volume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2

from svpgen.atomic import write_csv, write_text
from svpgen.data.predictions import UNCLASSIFIED, assign_classes, parse_min_confidence
from svpgen.errors import SvpgenError
from svpgen.markdown import markdown_table

THRESHOLDS_UM = (2.0, 5.0, 10.0, 25.0)
_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px}"
)
EXTRA_THRESHOLDS_UM = (50.0, 100.0)
PARTICULATE = "particulate (excl. air bubbles)"
# (method, small container?) → {threshold µm: (limit, unit)}
LIMITS = {
    ("light-obscuration", True): {10.0: (6000.0, "per container"), 25.0: (600.0, "per container")},
    ("light-obscuration", False): {10.0: (25.0, "per mL"), 25.0: (3.0, "per mL")},
    ("microscopic", True): {10.0: (3000.0, "per container"), 25.0: (300.0, "per container")},
    ("microscopic", False): {10.0: (12.0, "per mL"), 25.0: (2.0, "per mL")},
}


@dataclass(frozen=True)
class RunInfo:
    """How the sample was measured: the volume imaged, dilution, and the container."""

    fluid_volume_ml: float  # volume actually imaged
    dilution: float = 1.0
    fill_volume_ml: float | None = None
    container_ml: float | None = None  # nominal size; defaults to the fill volume
    method: str = "light-obscuration"


def poisson_ci(count: int | np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) confidence interval for a Poisson count."""
    count = np.asarray(count, dtype=np.float64)
    a = (1 - level) / 2
    lower = np.where(count > 0, chi2.ppf(a, 2 * count) / 2, 0.0)
    upper = chi2.ppf(1 - a, 2 * count + 2) / 2
    return lower, upper


def _volume_ml(text: str) -> float | None:
    m = re.search(r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*(ml|µl|ul)?", str(text), re.IGNORECASE)
    if not m:
        return None
    value = float(m.group(1))
    return value / 1000.0 if (m.group(2) or "").lower() in ("µl", "ul") else value


def run_info_from_summary(summary: dict[str, str]) -> dict[str, float]:
    """Fluid volume imaged (mL) from FlowCam run-summary keys; {} when not derivable."""
    keys = {k.lower().strip(): v for k, v in summary.items()}
    imaged = _volume_ml(keys["fluid volume imaged"]) if "fluid volume imaged" in keys else None
    if imaged is None and "sample volume processed" in keys and "efficiency" in keys:
        processed = _volume_ml(keys["sample volume processed"])
        eff = float(str(keys["efficiency"]).strip().rstrip("%")) / 100.0
        imaged = processed * eff if processed else None
    return {"fluid_volume_ml": imaged} if imaged else {}


def particle_sizes(pred: pd.DataFrame) -> pd.Series:
    """Each particle's size in µm: ESD (FlowCam) or ECD (MFI), whichever column is filled."""
    for col in ("esd_um", "esd_diameter", "ecd"):
        if col in pred.columns and pred[col].notna().any():
            sizes = pd.to_numeric(pred[col], errors="coerce")
            if sizes.isna().any():
                bad = int(sizes.isna().idxmax())
                raise SvpgenError(
                    f"row {bad + 2}: missing or non-numeric size in column {col!r} "
                    f"({pred[col].iloc[bad]!r})"
                )
            return sizes
    raise SvpgenError(
        "predictions have no size column (esd_um, esd_diameter or ecd); classify an instrument "
        "export or a store with sizes"
    )


def count_table(
    pred: pd.DataFrame, run: RunInfo, thresholds=THRESHOLDS_UM, min_confidence=None
) -> pd.DataFrame:
    """Cumulative counts, concentrations and 95% CIs per class and size threshold."""
    if run.fluid_volume_ml is None or run.fluid_volume_ml <= 0:
        raise SvpgenError(f"fluid volume imaged must be > 0 mL (got {run.fluid_volume_ml})")
    classes = assign_classes(pred, min_confidence)
    sizes = particle_sizes(pred).to_numpy()
    groups = {c: (classes == c).to_numpy() for c in sorted(classes.unique())}
    groups[PARTICULATE] = (classes != "air_bubble").to_numpy()
    rows = []
    per_ml = run.dilution / run.fluid_volume_ml
    for name, mask in groups.items():
        for t in thresholds:
            n = int(np.sum(mask & (sizes >= t)))
            lo, hi = poisson_ci(n)
            row = {
                "class": name,
                "size_um": f"≥{t:g}",
                "threshold_um": t,
                "count": n,
                "per_mL": n * per_ml,
                "per_mL_lo95": float(lo) * per_ml,
                "per_mL_hi95": float(hi) * per_ml,
            }
            if run.fill_volume_ml:
                f = run.fill_volume_ml
                row.update(
                    per_container=n * per_ml * f,
                    per_container_lo95=float(lo) * per_ml * f,
                    per_container_hi95=float(hi) * per_ml * f,
                )
            rows.append(row)
    return pd.DataFrame(rows)


def compliance(table: pd.DataFrame, run: RunInfo) -> pd.DataFrame:
    """USP <788> verdicts for the particulate total (needs the fill volume)."""
    if not run.fill_volume_ml:
        return pd.DataFrame()
    if run.method not in ("light-obscuration", "microscopic"):
        raise SvpgenError(f"unknown method {run.method!r} (light-obscuration or microscopic)")
    small = (run.container_ml or run.fill_volume_ml) <= 100
    rows = []
    for t, (limit, unit) in LIMITS[(run.method, small)].items():
        r = table[(table["class"] == PARTICULATE) & (table["threshold_um"] == t)]
        if r.empty:
            continue
        r = r.iloc[0]
        key = "per_container" if unit == "per container" else "per_mL"
        value, upper = r[key], r[f"{key}_hi95"]
        verdict = "PASS" if value <= limit else "FAIL"
        rows.append(
            {
                "size_um": f"≥{t:g}",
                "value": value,
                "upper95": upper,
                "limit": limit,
                "unit": unit,
                "verdict": verdict,
                "note": "upper 95% bound exceeds the limit"
                if verdict == "PASS" and upper > limit
                else "",
            }
        )
    return pd.DataFrame(rows)


def write_counts_report(
    pred: pd.DataFrame, run: RunInfo, out: Path, thresholds=THRESHOLDS_UM, min_confidence=None
) -> dict:
    """counts.csv, compliance.csv, counts.md, counts.html and size_distribution.png in ``out``."""
    import base64

    from svpgen.plots import size_distribution

    out.mkdir(parents=True, exist_ok=True)
    table = count_table(pred, run, thresholds, min_confidence)
    verdicts = compliance(table, run)
    write_csv(out / "counts.csv", table)
    write_csv(out / "compliance.csv", verdicts)
    classes = assign_classes(pred, min_confidence)
    size_distribution(
        particle_sizes(pred).to_numpy(), classes.to_numpy(), out / "size_distribution.png"
    )
    n_unclassified = int((classes == UNCLASSIFIED).sum())
    head = [
        "# Particle counts",
        "",
        f"{len(pred):,} particles; fluid volume imaged {run.fluid_volume_ml:g} mL; dilution "
        f"{run.dilution:g}"
        + (
            f"; fill volume {run.fill_volume_ml:g} mL"
            if run.fill_volume_ml
            else "; no fill volume given (no pass/fail)"
        )
        + (
            f"; {n_unclassified:,} below the confidence threshold (unclassified, counted as "
            "particulate)."
            if min_confidence
            else "."
        ),
        "",
        "Air bubbles are excluded from the particulate total. Intervals: exact Poisson 95%.",
        "",
    ]
    cols = ["class", "size_um", "count", "per_mL", "per_mL_lo95", "per_mL_hi95"] + [
        c for c in ("per_container", "per_container_lo95", "per_container_hi95") if c in table
    ]
    show = table[cols]
    verdict_md = ["", f"## USP <788> ({run.method}), particulate total", ""]
    if verdicts.empty:
        verdict_md.append("_fill volume not given: no pass/fail verdict._")
    else:
        shown = verdicts.assign(verdict=verdicts["verdict"].map(lambda v: f"**{v}**"))
        verdict_md.append(
            markdown_table(
                shown.rename(columns={"size_um": "size", "upper95": "upper 95%"}), ",.1f"
            )
        )
    md = "\n".join(head + [markdown_table(show, ",.2f")] + verdict_md) + "\n"
    write_text(out / "counts.md", md)
    png = base64.b64encode((out / "size_distribution.png").read_bytes()).decode()
    table_html = show.to_html(index=False, float_format=lambda v: f"{v:,.2f}")
    verdict_html = (
        verdicts.to_html(index=False)
        if not verdicts.empty
        else "<p>fill volume not given: no verdict</p>"
    )
    html = f"""<!doctype html><html><head><meta charset='utf-8'><title>Particle counts</title>
<style>{_CSS}</style></head><body>
<h1>Particle counts</h1><p>{head[2]}</p>{table_html}
<h2>USP &lt;788&gt; ({run.method}), particulate total</h2>{verdict_html}
<img src='data:image/png;base64,{png}' alt='size distribution'></body></html>"""
    write_text(out / "counts.html", html)
    return {"table": table, "compliance": verdicts, "markdown": md}


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A predictions CSV written by ``svpgen classify``; a clear error when unreadable."""
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SvpgenError(
            f"{path}: not a readable predictions CSV ({str(err).splitlines()[0][:80]})"
        ) from None


def counts_report(
    predictions: str | Path,
    out: str | Path,
    *,
    export_dir: str | Path | None = None,
    fluid_volume_ml: float | None = None,
    dilution: float = 1.0,
    fill_volume_ml: float | None = None,
    container_ml: float | None = None,
    method: str = "light-obscuration",
    min_confidence: str | None = None,
    large: bool = False,
) -> dict:
    """``svpgen counts``: predictions CSV (+ the export's run summary for the volume imaged)
    → the counts report in ``out``; returns what :func:`write_counts_report` returns."""
    from svpgen.data.importers.flowcam import read_run_summary

    pred = read_predictions(predictions)
    summary = run_info_from_summary(read_run_summary(Path(export_dir))) if export_dir else {}
    volume = fluid_volume_ml or summary.get("fluid_volume_ml")
    if volume is None:
        raise SvpgenError(
            "no fluid volume imaged: pass --fluid-volume-ml or --export with a FlowCam run summary"
        )
    run = RunInfo(volume, dilution, fill_volume_ml, container_ml, method)
    thresholds = THRESHOLDS_UM + (EXTRA_THRESHOLDS_UM if large else ())
    return write_counts_report(
        pred, run, Path(out), thresholds, parse_min_confidence(min_confidence)
    )
