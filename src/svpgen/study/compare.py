"""Table 2 with its uncertainty: every evaluated cell's metrics with bootstrap intervals, and
the comparisons the paper's claim rests on (Mixed-n vs Real-n, each imbalance baseline vs
its dataset) as paired differences with a plain verdict.

Reads each cell's ``predictions.csv`` (one per training seed) under ``OUT/eval`` — all cells
were evaluated on the same images, so one stratified bootstrap serves them all
(:mod:`svpgen.evaluate.intervals`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.evaluate.intervals import Bootstrap, bootstrap, metric_names, verdict
from svpgen.study.config import TABLE1_PROTEIN_K
from svpgen.study.layout import MORPHOLOGY_MODELS, Cell, StudyLayout

SHORT = {"protein": "PA", "silicone_oil": "SO", "air_bubble": "AB"}
BASELINE_NAMES = {
    "rules": "the rule filters",
    "forest": "the random forest",
    "boosting": "gradient boosting",
}
DATASET_ORDER = list(TABLE1_PROTEIN_K)  # Real-0 … Real-4, Mixed-1 … Mixed-4
PAIR_METRICS = ("macro_auprc", "macro_recall")
VERDICTS = ("better", "negligible difference", "no detectable difference", "worse")


def metric_label(metric: str) -> str:
    """Table 2's column name of a metric: 'P SO', 'R AB', 'AP SO' (a class's AUPRC),
    'macro AUPRC'…"""
    if metric.startswith(("precision_", "recall_", "auprc_")):
        kind, _, cls = metric.partition("_")
        short = {"precision": "P", "recall": "R", "auprc": "AP"}[kind]
        return f"{short} {SHORT.get(cls, cls)}"
    return {
        "macro_precision": "macro P",
        "macro_recall": "macro R",
        "macro_auprc": "macro AUPRC",
        "balanced_accuracy": "bal. acc.",
    }[metric]


def load_evaluations(
    out: Path,
) -> tuple[np.ndarray, list[str], dict[Cell, list[np.ndarray]], np.ndarray | None]:
    """(true class indices, classes, cell → one probability matrix per seed, prevalence)
    from the study's evaluations (:meth:`StudyLayout.evaluations`); every cell must have
    been evaluated on the same images in the same order."""
    cells: dict[Cell, list[np.ndarray]] = {}
    y = classes = prevalence = None
    ids = None
    for cell, _, seed_dir in StudyLayout(out).evaluations():
        pred_path = seed_dir / "predictions.csv"
        metrics = json.loads((seed_dir / "metrics.json").read_text())
        pred = pd.read_csv(pred_path)
        if classes is None:
            classes = list(metrics["as_sampled"]["classes"])
            y = pred["truth"].map({c: i for i, c in enumerate(classes)}).to_numpy()
            ids = pred["id"].to_numpy()
            prev = metrics.get("at_prevalence", {}).get("prevalence")
            prevalence = (
                None if prev is None else np.array([prev[c] for c in classes], dtype=np.float64)
            )
        elif not np.array_equal(pred["id"].to_numpy(), ids):
            raise ValueError(f"{pred_path}: evaluated on other images than the first cell")
        cells.setdefault(cell, []).append(pred[[f"p_{c}" for c in classes]].to_numpy())
    return y, classes or [], cells, prevalence


def comparison_pairs(cells: list[Cell]) -> list[tuple[Cell, Cell]]:
    """(candidate, reference): Mixed-n vs Real-n, each imbalance baseline vs its dataset,
    and every CNN cell vs each morphology baseline fitted on the same real images (Real-n
    for Real-n and Mixed-n)."""
    present = set(cells)
    pairs = []
    for c in cells:
        if c.is_baseline:
            continue
        baselines = (Cell(k, c.real_dataset) for k in MORPHOLOGY_MODELS)
        pairs += [(c, ref) for ref in baselines if ref in present]
        if c.imbalance == "none" and c.dataset.startswith("Mixed-"):
            ref = Cell(c.model, c.real_dataset)
        elif c.imbalance != "none":
            ref = Cell(c.model, c.dataset)
        else:
            continue
        if ref in present:
            pairs.append((c, ref))
    return sorted(pairs, key=lambda p: p[1].is_baseline)  # the CNN's own pairs first


@dataclass
class Table2:
    """Table 2's point values with intervals, and the paired comparisons."""

    table: pd.DataFrame  # one row per cell: value, _lo and _hi columns per metric
    comparisons: pd.DataFrame  # one row per (pair, metric)
    classes: list[str]
    seeds: int
    n_boot: int


def _order(cells: list[Cell]) -> list[Cell]:
    """The CNN cells (by model, dataset, strategy), then the morphology baselines."""
    rank = {n: i for i, n in enumerate(DATASET_ORDER)}
    return sorted(
        cells,
        key=lambda c: (
            c.is_baseline,
            c.model,
            rank.get(c.dataset, 99) + (c.imbalance != "none") * 0.5,
            c.imbalance,
        ),
    )


def table2_with_intervals(out: Path, n_boot: int = 400, seed: int = 0) -> Table2 | None:
    """Bootstrap every evaluated cell together; None when nothing was evaluated yet."""
    y, classes, probas, prevalence = load_evaluations(out)
    if not probas:
        return None
    cells = _order(list(probas))
    boot: Bootstrap = bootstrap(
        y, {c.key: probas[c] for c in cells}, classes, prevalence, n_boot=n_boot, seed=seed
    )
    metrics = metric_names(classes)
    rows = []
    for c in cells:
        row = {
            "model": c.model,
            "dataset": c.dataset,
            "imbalance": c.imbalance,
            "seeds": len(probas[c]),
        }
        for m in metrics:
            value, lo, hi = boot.interval(c.key, m)
            label = metric_label(m)
            row[label], row[f"{label}_lo"], row[f"{label}_hi"] = value, lo, hi
        if len(probas[c]) > 1:  # between-seed spread of the headline metric
            from svpgen.evaluate.intervals import class_weights, weighted_metrics

            w = class_weights(y, len(classes), prevalence)[None, :]
            row["macro AUPRC seed sd"] = float(
                np.std([weighted_metrics(y, p, classes, w)["macro_auprc"][0] for p in probas[c]])
            )
        rows.append(row)
    comps = []
    pair_metrics = (
        list(PAIR_METRICS) + [f"auprc_{c}" for c in classes] + [f"precision_{c}" for c in classes]
    )
    for cand, ref in comparison_pairs(cells):
        for m in pair_metrics:
            diff, lo, hi = boot.difference(cand.key, ref.key, m)
            if np.isnan(diff):  # a class the evaluation set lacks
                continue
            comps.append(
                {
                    "candidate": cand.key,
                    "reference": ref.key,
                    "metric": metric_label(m),
                    "difference": diff,
                    "lo": lo,
                    "hi": hi,
                    "verdict": verdict(lo, hi),
                }
            )
    seeds = max(len(v) for v in probas.values())
    return Table2(pd.DataFrame(rows), pd.DataFrame(comps), classes, seeds, n_boot)


def with_intervals(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The table for reading: each metric as ``0.886 [0.851, 0.920]``, "—" where undefined."""
    out = table[["model", "dataset", "imbalance"]].copy()
    for col in table.columns:
        if f"{col}_lo" in table.columns:
            out[col] = [
                f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(v) else "—"
                for v, lo, hi in zip(table[col], table[f"{col}_lo"], table[f"{col}_hi"])
            ]  # "—": a class the evaluation set lacks has no AUPRC
    if "macro AUPRC seed sd" in table.columns:
        out["macro AUPRC seed sd"] = table["macro AUPRC seed sd"].map(lambda v: f"{v:.{digits}f}")
    return out


def signed_interval(difference: float, lo: float, hi: float, digits: int = 3) -> str:
    """A paired difference for reading, ``+0.012 [-0.004, +0.027]``; with more decimals
    when every number rounds to zero at ``digits`` (a significant −0.0002 must not read as
    "worse by −0.000")."""
    largest = max(abs(difference), abs(lo), abs(hi))
    while 0 < largest < 0.5 * 10.0**-digits and digits < 6:
        digits += 1
    return f"{difference:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def answer_sentences(comparisons: pd.DataFrame, metric: str = "macro AUPRC") -> list[str]:
    """One sentence per comparison of the CNN cells among themselves, e.g. 'Mixed-4 vs
    Real-4 (resnet18): macro AUPRC +0.012 [−0.004, +0.027], no detectable difference.', then
    one sentence on the CNN cells against the morphology baselines."""
    lines = []
    rows = comparisons[comparisons["metric"] == metric]
    against = rows["reference"].str.split("/").str[0].isin(list(MORPHOLOGY_MODELS))
    for r in rows[~against].itertuples():
        arch, cand = r.candidate.split("/", 1)
        ref = r.reference.split("/", 1)[1]
        lines.append(
            f"{cand} vs {ref} ({arch}): {metric} {signed_interval(r.difference, r.lo, r.hi)}, "
            f"{r.verdict}."
        )
    if against.any():
        lines.append(baseline_sentence(rows[against], metric))
    return lines


def baseline_sentence(rows: pd.DataFrame, metric: str = "macro AUPRC") -> str:
    """Whether the CNN cells beat the instrument-parameter baselines, in one sentence:
    per baseline, how many cells are better / no different / worse on ``metric``."""
    parts = []
    for kind, group in rows.groupby(rows["reference"].str.split("/").str[0], sort=False):
        n = len(group)
        verdicts = group["verdict"].value_counts()
        better = int(verdicts.get("better", 0))
        if better == n:
            text = (
                f"all {n} beat {BASELINE_NAMES[kind]}"
                if n > 1
                else f"it beats {BASELINE_NAMES[kind]}"
            )
        else:
            cells = {
                verdict: [
                    c.split("/", 1)[1] for c in group["candidate"][group["verdict"] == verdict]
                ]
                for verdict in VERDICTS
            }
            listed = [", ".join(cells["better"])] if better else []
            listed += [f"{v}: {', '.join(c)}" for v, c in cells.items() if v != "better" and c]
            text = f"{better} of {n} beat {BASELINE_NAMES[kind]} ({'; '.join(listed)})"
        low = group.loc[group["difference"].idxmin()]
        text += f", the smallest margin {signed_interval(low.difference, low.lo, low.hi)}"
        parts.append(text)
    return (
        f"CNN cells against the instrument's morphology parameters ({metric}, paired 95% "
        f"intervals, each against the baseline fitted on its real images): {'; '.join(parts)}."
    )
