"""Every figure in one place. Figures are built with matplotlib's object API
(``matplotlib.figure.Figure``: no pyplot state, no global backend switch) and written as
PNG atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure as PNG atomically."""
    from svpgen.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return Path(path)


def sample_grid(
    groups: dict[str, np.ndarray], path: str | Path, per_row: int = 8, title: str | None = None
) -> Path:
    """One labelled block of ``per_row``-wide image rows per group (the paper's Fig. 5 style)."""
    groups = {k: v for k, v in groups.items() if len(v)}
    rows = [
        (name, imgs[i : i + per_row])
        for name, imgs in groups.items()
        for i in range(0, len(imgs), per_row)
    ]
    fig = Figure(figsize=(per_row * 0.9, len(rows) * 0.95 + 0.4))
    axes = fig.subplots(len(rows), per_row, squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for c in range(per_row):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(imgs):
                ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        first_of_group = r == 0 or rows[r - 1][0] != name
        if first_of_group:
            axes[r, 0].set_ylabel(
                name.replace("_", " "), rotation=0, ha="right", va="center", fontsize=9
            )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.04, hspace=0.04)
    return save(fig, path)


def line_curves(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logy: bool = False,
) -> Path:
    """Simple x/y curves (loss, FID…) on one axis."""
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o" if len(x) < 30 else None, ms=3, label=name)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


def denoising_strip(
    trajectory: list[tuple[str, np.ndarray]],
    path: str | Path,
    rows: int = 4,
    title: str | None = None,
) -> Path:
    """Rows of images across denoising steps, noisy (left) to clean (right): paper Fig. 2."""
    cols = len(trajectory)
    rows = min(rows, len(trajectory[0][1])) if trajectory else 0
    fig = Figure(figsize=(cols * 0.95, rows * 1.0 + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for c, (step, frames) in enumerate(trajectory):
        for r in range(rows):
            ax = axes[r, c]
            ax.imshow(frames[r], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        axes[0, c].set_title(step, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.04, hspace=0.04)
    return save(fig, path)


def confusion(
    cm: np.ndarray,
    classes: list[str],
    path: str | Path,
    normalise: str | None = None,
    title: str = "",
) -> Path:
    """Confusion matrix heat map: counts, or normalised by true row ('true') / predicted column
    ('pred')."""
    cm = np.asarray(cm, dtype=np.float64)
    if normalise == "true":
        shown = cm / np.maximum(cm.sum(1, keepdims=True), 1e-12)
    elif normalise == "pred":
        shown = cm / np.maximum(cm.sum(0, keepdims=True), 1e-12)
    else:
        shown = cm
    fig = Figure(figsize=(1.2 * len(classes) + 1.5, 1.1 * len(classes) + 1))
    ax = fig.subplots()
    ax.imshow(shown if normalise else np.log1p(shown), cmap="Blues")
    for i in range(len(classes)):
        for j in range(len(classes)):
            text = f"{shown[i, j]:.3f}" if normalise else f"{cm[i, j]:,.0f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black")
    names = [c.replace("_", "\n") for c in classes]
    ax.set_xticks(range(len(classes)), names, fontsize=8)
    ax.set_yticks(range(len(classes)), names, fontsize=8)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_title(
        title
        or {
            "true": "recall (row-normalised)",
            "pred": "precision (column-normalised, paper Eq. 2)",
        }.get(normalise, "counts"),
        fontsize=9,
    )
    return save(fig, path)


def pr_curves(
    y: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    path: str | Path,
    sample_weight: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """One-vs-rest precision–recall curve per class, with its AUPRC in the legend."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = Figure(figsize=(4.6, 3.6))
    ax = fig.subplots()
    for i, c in enumerate(classes):
        yb = (y == i).astype(int)
        if yb.sum() == 0:
            continue
        p, r, _ = precision_recall_curve(yb, proba[:, i], sample_weight=sample_weight)
        ap = average_precision_score(yb, proba[:, i], sample_weight=sample_weight)
        ax.plot(r, p, label=f"{c} (AP {ap:.3f})")
    ax.set_xlabel("recall"), ax.set_ylabel("precision"), ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title or "precision–recall (one-vs-rest)", fontsize=9)
    return save(fig, path)


def misclassified_gallery(
    images: np.ndarray,
    y: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    path: str | Path,
    per_class: int = 8,
) -> Path:
    """The most confidently misclassified crops per true class (paper Fig. 6)."""
    pred = proba.argmax(1)
    fig = Figure(figsize=(per_class * 0.95, len(classes) * 1.15 + 0.3))
    axes = fig.subplots(len(classes), per_class, squeeze=False)
    for i, c in enumerate(classes):
        wrong = np.flatnonzero((y == i) & (pred != i))
        wrong = wrong[np.argsort(-proba[wrong, pred[wrong]])][:per_class]
        for j in range(per_class):
            ax = axes[i, j]
            ax.set_xticks([]), ax.set_yticks([])
            if j < len(wrong):
                k = wrong[j]
                ax.imshow(images[k], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                ax.set_title(f"→{classes[pred[k]][:7]} {proba[k, pred[k]]:.2f}", fontsize=6)
        axes[i, 0].set_ylabel(f"true\n{c}", fontsize=8)
    fig.suptitle("most confident mistakes per true class", fontsize=9)
    return save(fig, path)


def size_distribution(sizes_um: np.ndarray, classes: np.ndarray, path: str | Path) -> Path:
    """Cumulative count ≥ size per class, log-log (the usual FIM size-distribution view)."""
    fig = Figure(figsize=(5, 3.4))
    ax = fig.subplots()
    grid = np.logspace(
        np.log10(max(0.5, np.nanmin(sizes_um))), np.log10(max(1.0, np.nanmax(sizes_um))), 60
    )
    for c in sorted(set(classes)):
        s = np.sort(sizes_um[classes == c])
        counts = len(s) - np.searchsorted(s, grid, side="left")
        ax.step(grid, np.maximum(counts, 0.8), where="post", label=f"{c} ({len(s):,})")
    for t in (2, 5, 10, 25):
        ax.axvline(t, color="gray", lw=0.6, ls=":")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("ESD / ECD (µm)"), ax.set_ylabel("particles ≥ size")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save(fig, path)


def histograms(
    pairs: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, labels=("real", "generated")
) -> Path:
    """Overlaid real-vs-generated histograms, one panel per feature."""
    n = len(pairs)
    cols = min(4, max(1, n))
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(cols * 2.8, rows * 2.2))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, (a, b)) in zip(axes.flat, pairs.items()):
        both = np.concatenate([a, b]) if len(a) + len(b) else np.array([0.0])
        bins = np.linspace(np.nanmin(both), np.nanmax(both) + 1e-9, 25)
        ax.hist(a, bins=bins, alpha=0.55, density=True, label=labels[0])
        ax.hist(b, bins=bins, alpha=0.55, density=True, label=labels[1])
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    return save(fig, path)


def realism_panel(
    classes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
    per_row: int = 10,
) -> Path:
    """Per class: a row block of real crops, a block of simulated crops, and the radial
    profile bands (quartiles 25/50/75 per radius) of both. ``classes[label] = (real,
    simulated, real_profile 3×R, simulated_profile 3×R)``."""
    n = len(classes)
    fig = Figure(figsize=(per_row * 0.75 + 4.2, n * 3.3))
    grid = fig.add_gridspec(n, 2, width_ratios=(per_row * 0.75, 4.0), wspace=0.15, hspace=0.35)
    for i, (label, (real, sim, real_p, sim_p)) in enumerate(classes.items()):
        rows = int(np.ceil(len(real) / per_row)) + int(np.ceil(len(sim) / per_row))
        sub = grid[i, 0].subgridspec(rows, per_row, wspace=0.03, hspace=0.03)
        tiles = [("real", t) for t in real] + [("sim", t) for t in sim]
        for j, (kind, tile) in enumerate(tiles):
            row = (
                j // per_row
                if kind == "real"
                else int(np.ceil(len(real) / per_row)) + (j - len(real)) // per_row
            )
            ax = fig.add_subplot(sub[row, (j if kind == "real" else j - len(real)) % per_row])
            ax.imshow(tile, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if (j if kind == "real" else j - len(real)) % per_row == 0:
                ax.set_ylabel("real" if kind == "real" else "simulated", fontsize=7)
        ax = fig.add_subplot(grid[i, 1])
        radii = np.arange(real_p.shape[1])
        for prof, name, color in ((real_p, "real", "C0"), (sim_p, "simulated", "C1")):
            ax.fill_between(radii, prof[0], prof[2], color=color, alpha=0.2)
            ax.plot(radii, prof[1], color=color, label=f"{name} (median, IQR)")
        ax.set_title(label.replace("_", " "), fontsize=9)
        ax.set_xlabel("radius (px)", fontsize=8), ax.set_ylabel("gray level", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return save(fig, path)


def differences(
    comparisons, path: str | Path, metrics: tuple[str, ...] = ("macro AUPRC", "macro R")
) -> Path:
    """Paired differences with their 95% intervals, one row per comparison, a panel per metric."""
    fig = Figure(
        figsize=(4.2 * len(metrics), 0.45 * max(1, comparisons["candidate"].nunique() + 1) + 1.2)
    )
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        rows = comparisons[comparisons["metric"] == metric].reset_index(drop=True)
        ypos = np.arange(len(rows))[::-1]
        colors = [
            "C2" if v == "better" else "C3" if v == "worse" else "C7" for v in rows["verdict"]
        ]
        for y, (d, lo, hi), color in zip(ypos, rows[["difference", "lo", "hi"]].to_numpy(), colors):
            ax.errorbar([d], [y], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(
            ypos,
            [
                f"{c.split('/', 1)[1]} vs {r.split('/', 1)[1]}"
                for c, r in zip(rows["candidate"], rows["reference"])
            ],
            fontsize=8,
        )
        ax.set_xlabel(f"difference in {metric} (95% interval)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(
        "paired comparisons: green better, red worse, gray no detectable or negligible difference",
        fontsize=9,
    )
    fig.tight_layout()
    return save(fig, path)
