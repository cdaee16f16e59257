"""``svpgen report``: the answer first (each Mixed-n vs Real-n and baseline comparison as a
paired difference with its interval and verdict), then the paper's Table 2 (per model ×
dataset: per-class precision, macro precision, AUPRC) plus recall and the imbalance
baselines, every number with its 95% bootstrap interval, as Markdown, CSV and one
self-contained HTML page with every figure embedded."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.atomic import write_csv, write_text
from svpgen.errors import SvpgenError
from svpgen.markdown import markdown_table
from svpgen.study.compare import (
    SHORT,
    Table2,
    answer_sentences,
    signed_interval,
    table2_with_intervals,
    with_intervals,
)
from svpgen.study.layout import MORPHOLOGY_MODELS, Cell, StudyLayout


def _load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


# the as-sampled table's column groups: per-class label and key, then the group's macro value
_AS_SAMPLED = (
    ("P", "precision", "macro P", "macro_precision"),
    ("R", "recall", "macro R", "macro_recall"),
    ("AP", "auprc", "macro AUPRC", "macro_auprc"),
)


def table2_as_sampled(out: Path) -> pd.DataFrame:
    """Point values on the evaluation set as drawn (no reweighting), mean over seeds."""
    by_cell: dict[Cell, list[dict]] = {}
    for cell, _, path in StudyLayout(out).evaluations():
        metrics = json.loads((path / "metrics.json").read_text())["as_sampled"]
        by_cell.setdefault(cell, []).append(metrics)
    rows = []
    for cell, runs in by_cell.items():
        row = {"model": cell.model, "dataset": cell.dataset, "imbalance": cell.imbalance}
        for label, key, macro_label, macro in _AS_SAMPLED:
            for c in runs[0]["classes"]:
                row[f"{label} {SHORT.get(c, c)}"] = float(
                    np.mean([m["per_class"][c][key] for m in runs])
                )
            row[macro_label] = float(np.mean([m[macro] for m in runs]))
        rows.append(row)
    rows.sort(key=lambda r: r["model"] in MORPHOLOGY_MODELS)  # the CNN cells, then baselines
    return pd.DataFrame(rows)


def _lowest_mode_precision(modes: dict | None) -> str:
    """The sub-type whose generated images least look like its real ones, e.g. "large_edge 0.05"."""
    values = {
        k: v for k, v in ((modes or {}).get("precision_by_mode") or {}).items() if v is not None
    }
    if not values:
        return ""
    worst = min(values, key=values.get)
    return f"{worst} {values[worst]:.2f}"


def _audit_table(layout: StudyLayout) -> pd.DataFrame:
    rows = []
    for folder in layout.audits():
        if not (folder / "audit.json").exists():
            continue
        a = json.loads((folder / "audit.json").read_text())
        lenses = a.get("lenses", {})
        auc, modes = lenses.get("two_sample_auc", {}), lenses.get("modes")
        for feats, r in a["features"].items():
            rows.append(
                {
                    "class": a["label"],
                    "features": feats,
                    "n": a["n"],
                    "FID": r["fid"],
                    "FID lo95": r["fid_ci95"][0],
                    "FID hi95": r["fid_ci95"][1],
                    "FID / floor": r["fid"] / r["fid_floor"] if r.get("fid_floor") else np.nan,
                    "KID": r["kid"],
                    "precision": r["precision"],
                    "recall": r["recall"],
                    "two-sample AUC (logreg / GBM)": f"{auc['logreg']:.2f} / {auc['gbm']:.2f}"
                    if auc
                    else "",
                    "largest sub-type gap": modes["max_abs_diff"] if modes else np.nan,
                    "lowest sub-type precision": _lowest_mode_precision(modes),
                    "near-copies": (a.get("memorization") or {}).get("near_copy_fraction", np.nan),
                }
            )
    return pd.DataFrame(rows)


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    text = html.escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{text}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def _figures(layout: StudyLayout) -> list[tuple[Path, str]]:
    figs: list[tuple[Path, str]] = []
    fig_dir = layout.figures
    if (fig_dir / "differences.png").exists():
        figs.append((fig_dir / "differences.png", "paired differences with 95% intervals"))
    for p in sorted(fig_dir.glob("real_vs_generated_*.png")):
        figs.append((p, f"real vs generated: {p.stem.removeprefix('real_vs_generated_')}"))
    for p in sorted(fig_dir.glob("denoising_*.png")):
        figs.append((p, f"denoising trajectory: {p.stem.removeprefix('denoising_')}"))
    for a in layout.audits():
        for name, what in (
            ("closest_pairs.png", "closest generated–training pairs"),
            ("morphology.png", "morphology real vs generated"),
        ):
            if (a / name).exists():
                figs.append((a / name, f"{what}: {a.name}"))
    for d in layout.generators():
        for name, what in (("loss.png", "diffusion loss"), ("fid.png", "FID during training")):
            if (d / name).exists():
                figs.append((d / name, f"{what}: {d.name}"))
    for cell, seed, ev in layout.evaluations():
        if seed != 0:
            continue
        for name, what in (
            ("confusion_precision.png", "precision matrix"),
            ("confusion_recall.png", "recall matrix"),
            ("pr_curves.png", "PR curves"),
            ("misclassified.png", "most confident mistakes"),
        ):
            if (ev / name).exists():
                figs.append((ev / name, f"{cell.key}: {what}"))
    return figs


def _baseline_models(layout: StudyLayout) -> list[str]:
    """Each fitted morphology baseline in a line: what it was fitted on and, for the rule
    filters, the rules as a lab reads them."""
    lines = []
    for cell, folder in layout.baselines():
        description = json.loads((folder / "config.json").read_text()).get("description", "")
        lines.append(f"{cell.model} on {cell.dataset}: {description}")
    return lines


def _names(classes: list[str]) -> str:
    return ", ".join(c.replace("_", " ") for c in classes)


def _intro(study: dict, t2) -> tuple[str, str]:
    """The report's opening paragraph (the set-up, in the study's own class names) and the
    prevalence as written in headings (1000:1:1)."""
    cfg = study["config"]
    classes, minority = cfg["classes"], cfg["minority"]
    majority = [c for c in classes if c not in minority]
    prevalence = ":".join(f"{p:g}" for p in cfg["prevalence"])
    paper = classes == ["protein", "silicone_oil", "air_bubble"] and prevalence == "1000:1:1"
    seeds = t2.seeds if t2 else cfg.get("seeds", 1)
    int8 = " (int8 inference)" if cfg.get("eval_int8") else ""
    text = (
        f"Preset **{cfg['preset']}** (Table 1 scale {cfg['scale']:g}; data: {study['data']}). "
        f"Classes: {_names(majority)} (majority) and {_names(minority)} (minority, each with a "
        f"generator). Evaluation set: {cfg['eval_majority']:,} per majority / "
        f"{cfg['eval_minority']:,} per minority class{int8}; metrics are reweighted to the "
        f"deployment prevalence {prevalence} ({' : '.join(c.replace('_', ' ') for c in classes)})"
        f"{', the paper' + chr(39) + 's 1000:1:1 setting' if paper else ''}. "
        "P = per-class precision (paper Eq. 2, column-normalised), macro P = paper Eq. 3, "
        "R = per-class recall, AP = a class's one-vs-rest average precision (AUPRC), "
        "macro AUPRC = their mean. Minority precision "
        "at such a prevalence is dominated by majority-class false positives; the values the "
        "paper reports as precision behave like recall — both are shown. Intervals: 95% "
        f"stratified bootstrap over the evaluation set ({t2.n_boot if t2 else 0} replicates, "
        "resampled within each true class, reweighted like the estimate; basic bootstrap "
        f"interval){' and over the ' + str(seeds) + ' training seeds' if seeds > 1 else ''}. "
        "Differences are paired: every model was evaluated on the same images, so each "
        "replicate compares them on the same sample."
    )
    return text, prevalence


@dataclass
class StudyReport:
    """What :func:`write_report` wrote, and Table 2 itself (None before any evaluation)."""

    markdown: Path
    html: Path
    csv: Path
    figures: int
    table2: Table2 | None
    answers: list[str]


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}"
    "figure{display:inline-block;margin:8px;vertical-align:top}"
    "img{max-width:620px}figcaption{font-size:12px;color:#555}ul.answer{font-size:16px}"
)


def _html_table(table: pd.DataFrame, empty: str, **options) -> str:
    return table.to_html(index=False, **options) if not table.empty else f"<p>{empty}</p>"


def _html_list(items: list[str], empty: str, css: str = "") -> str:
    entries = "".join(f"<li>{html.escape(i)}</li>" for i in items) or f"<li>{empty}</li>"
    return f'<ul class="{css}">{entries}</ul>' if css else f"<ul>{entries}</ul>"


def write_report(out: str | Path) -> StudyReport:
    """Write ``OUT/report/{report.md, table2.csv, table2_as_sampled.csv, comparisons.csv,
    report.html}``; returns what it wrote, with Table 2."""
    layout = StudyLayout(Path(out))
    study = _load(layout.settings)
    if study is None:
        raise SvpgenError(f"{out}: not a study directory (no study.json)")
    cfg = study["config"]
    report_dir = layout.report
    report_dir.mkdir(parents=True, exist_ok=True)
    t2 = table2_with_intervals(
        layout.root, n_boot=cfg.get("bootstrap", 400), seed=cfg.get("seed", 0)
    )
    at_prev = t2.table if t2 else pd.DataFrame()
    comparisons = t2.comparisons if t2 else pd.DataFrame()
    sampled = table2_as_sampled(layout.root)
    write_csv(report_dir / "table2.csv", at_prev)
    write_csv(report_dir / "table2_as_sampled.csv", sampled)
    write_csv(report_dir / "comparisons.csv", comparisons)
    if not comparisons.empty:
        from svpgen.plots import differences

        differences(comparisons, layout.figures / "differences.png")
    stages = [s for s in (_load(p) for p in layout.stage_records()) if s]
    intro, prevalence = _intro(study, t2)
    answers = answer_sentences(comparisons) if not comparisons.empty else []
    readable = with_intervals(at_prev) if not at_prev.empty else pd.DataFrame()
    comp_readable = (
        comparisons.assign(
            difference=[
                signed_interval(d, lo, hi)
                for d, lo, hi in zip(
                    comparisons["difference"], comparisons["lo"], comparisons["hi"]
                )
            ]
        ).drop(columns=["lo", "hi"])
        if not comparisons.empty
        else pd.DataFrame()
    )
    audit = _audit_table(layout)
    baselines = _baseline_models(layout)
    stage_times = pd.DataFrame(stages)[["stage", "seconds"]] if stages else pd.DataFrame()
    md = "\n".join(
        [
            "# svpgen study report",
            "",
            intro,
            "",
            "## The answer",
            "",
            *(f"- {a}" for a in answers),
            ""
            if answers
            else "_no comparisons (needs Mixed-n with Real-n, or a baseline with its dataset)_",
            "",
            f"## Table 2 — at prevalence {prevalence}, with 95% intervals",
            "",
            markdown_table(readable, empty="_no evaluated models yet_"),
            "",
            "## Baselines: the instrument's morphology parameters",
            "",
            *(f"- {b}" for b in baselines),
            "" if baselines else "_none fitted_",
            "",
            "## All paired comparisons",
            "",
            markdown_table(comp_readable, empty="_none_"),
            "",
            "## Table 2 — as sampled (point values)",
            "",
            markdown_table(sampled, empty="_no evaluated models yet_"),
            "",
            "## Generated images: quality audit (particle-encoder features, vs held-out real)",
            "",
            markdown_table(audit, empty="_no audit_"),
            "",
            "## Stage wall time (s)",
            "",
            markdown_table(stage_times, ".0f"),
            "",
        ]
    )
    write_text(report_dir / "report.md", md)
    figs = _figures(layout)
    three = {"float_format": lambda v: f"{v:.3f}"}
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>svpgen study report</title><style>{_CSS}</style></head><body>
<h1>svpgen study report</h1>
<h2 id="answer">The answer</h2>{_html_list(answers, "no comparisons yet", "answer")}
<p>{html.escape(intro).replace("**", "")}</p>
<h2 id="table2">Table 2 — at prevalence {prevalence}, with 95% intervals</h2>
{_html_table(readable, "no evaluated models yet", table_id="table2-prevalence")}
<h2>Baselines: the instrument's morphology parameters</h2>{_html_list(baselines, "none fitted")}
<h2>All paired comparisons</h2>{_html_table(comp_readable, "none")}
<h2>Table 2 — as sampled (point values)</h2>{_html_table(sampled, "", **three)}
<h2>Generated images: quality audit</h2>{_html_table(audit, "no audit", **three)}
<h2>Stage wall time</h2>{_html_table(stage_times, "", float_format=lambda v: f"{v:.0f}")}
<h2>Figures</h2>{"".join(_img(p, c) for p, c in figs)}
</body></html>"""
    write_text(report_dir / "report.html", page)
    return StudyReport(
        report_dir / "report.md",
        report_dir / "report.html",
        report_dir / "table2.csv",
        len(figs),
        t2,
        answers,
    )
