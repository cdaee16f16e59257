"""``svpgen evaluate``: a trained classifier (the CNN or a morphology baseline) on a labelled
store → metrics.json, metrics.md, confusion matrices, PR curves and a gallery of confident
mistakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.atomic import write_csv, write_json, write_text
from svpgen.classify.classifier import Classifier, load_model
from svpgen.classify.predict import model_inputs, predictions_table
from svpgen.data.store import ParticleStore
from svpgen.errors import SvpgenError
from svpgen.evaluate.metrics import classification_metrics, prevalence_weights
from svpgen.markdown import markdown_table
from svpgen.options import parse_mapping


def parse_prevalence(text: str | None, classes: list[str]) -> dict[str, float] | None:
    """'1000:1:1' (in the model's class order) or 'protein=1000,silicone_oil=1,…'."""
    if not text:
        return None
    if "=" in text:
        return parse_mapping(text, "--prevalence", "protein=1000,silicone_oil=1,air_bubble=1")
    try:
        values = [float(v) for v in text.split(":")]
    except ValueError:
        raise SvpgenError(
            f"--prevalence {text!r}: expected e.g. 1000:1:1 or "
            "protein=1000,silicone_oil=1,air_bubble=1"
        ) from None
    if len(values) != len(classes):
        raise SvpgenError(
            f"--prevalence {text!r} has {len(values)} values for {len(classes)} classes {classes}"
        )
    return dict(zip(classes, values))


def metrics_markdown(m: dict, title: str) -> str:
    """One metric set as Markdown: the per-class table and the macro values."""
    table = pd.DataFrame(
        [
            {
                "class": c,
                "support": v["support"],
                "precision (Eq. 2)": v["precision"],
                "recall": v["recall"],
                "F1": v["f1"],
                "AUPRC": v["auprc"],
                "precision @ recall 0.9": v["precision_at_recall_0.9"],
            }
            for c, v in m["per_class"].items()
        ]
    )
    lines = [f"# {title}", "", f"{m['n']:,} particles.", "", markdown_table(table)]
    lines += [
        "",
        f"macro precision (Eq. 3) **{m['macro_precision']:.3f}** · macro recall "
        f"{m['macro_recall']:.3f} · "
        f"macro AUPRC **{m['macro_auprc']:.3f}** · balanced accuracy {m['balanced_accuracy']:.3f}",
        "",
    ]
    return "\n".join(lines)


def _logit_adjusted(clf: Classifier, twin_predictions: Path, table: pd.DataFrame) -> np.ndarray:
    """The probabilities of a logit-adjusted model from its plain twin's predictions on the
    same particles: softmax(log p + offset) (softmax ignores the per-row constant that
    log p lacks against the logits)."""
    from scipy.special import softmax

    if clf.logit_offset is None:
        raise SvpgenError(
            f"{clf.path}: not a logit-adjusted model; its twin's predictions {twin_predictions} "
            "do not apply"
        )
    twin = pd.read_csv(twin_predictions)
    if (
        len(twin) != len(table)
        or not (twin["id"].astype(str).to_numpy() == table["id"].astype(str).to_numpy()).all()
    ):
        raise SvpgenError(
            f"{twin_predictions}: its particles are not the ones this evaluation covers"
        )
    with np.errstate(divide="ignore"):
        logp = np.log(twin[[f"p_{c}" for c in clf.classes]].to_numpy(np.float64))
    return softmax(logp + clf.logit_offset, axis=1)


def evaluate_model(
    model_dir: str | Path,
    store_path: str | Path,
    out: str | Path,
    prevalence: str | None = None,
    *,
    figures: bool = True,
    progress: bool = True,
    truth_column: str = "label",
    int8: bool = False,
    twin_predictions: str | Path | None = None,
    features: pd.DataFrame | None = None,
) -> dict:
    """Evaluate any svpgen model (the CNN or a morphology baseline) on every particle whose
    ``truth_column`` is one of the model's classes (``true_label`` holds the simulator's
    ground truth before label noise). ``int8`` evaluates the CNN with int8 inference
    (calibrated on the evaluation images, no labels). ``twin_predictions``: for a
    logit-adjusted model, the ``predictions.csv`` of the same weights without the
    adjustment on the same store (and inference); its probabilities are adjusted instead
    of running the network again. ``features``: a baseline's features of the store's rows,
    computed once for several baselines."""
    from svpgen import plots

    out = Path(out)
    clf = load_model(model_dir)
    store = ParticleStore(store_path)
    images, table = model_inputs(
        clf, store.images, store.table, store.measurements, str(store_path)
    )
    if truth_column not in table.columns:
        raise SvpgenError(
            f"{store_path}: no column {truth_column!r} (columns: {', '.join(table.columns[:12])}…)"
        )
    keep = np.flatnonzero(table[truth_column].isin(clf.classes).to_numpy())
    if len(keep) == 0:
        raise SvpgenError(
            f"{store_path}: no particles labelled with the model's classes {clf.classes}"
        )
    every = len(keep) == len(table)
    table = table.iloc[keep].reset_index(drop=True)
    if images is not None and not every:
        images = images[keep]
    proba = None
    if twin_predictions is not None:
        proba = _logit_adjusted(clf, Path(twin_predictions), table)
    elif features is not None:
        proba = clf.predict_proba_features(features.iloc[keep].reset_index(drop=True))
    elif int8 and isinstance(clf, Classifier):
        clf.quantize(images)
    pred = predictions_table(clf, images, table, progress=progress, proba=proba)
    pred["truth"] = table[truth_column].to_numpy()
    proba = pred[[f"p_{c}" for c in clf.classes]].to_numpy()
    y = np.array([clf.classes.index(c) for c in table[truth_column]])
    results = {
        "model": str(model_dir),
        "store": str(store_path),
        "truth_column": truth_column,
        "as_sampled": classification_metrics(y, proba, clf.classes),
    }
    weights = None
    prev = parse_prevalence(prevalence, clf.classes)
    if prev:
        weights = prevalence_weights(y, clf.classes, prev)
        results["at_prevalence"] = {
            "prevalence": prev,
            **classification_metrics(y, proba, clf.classes, weights),
        }
    out.mkdir(parents=True, exist_ok=True)
    md = metrics_markdown(results["as_sampled"], "Evaluation (as sampled)")
    if prev:
        ratio = ":".join(f"{prev[c]:g}" for c in clf.classes)
        md += "\n" + metrics_markdown(
            results["at_prevalence"], f"Evaluation reweighted to prevalence {ratio}"
        )
    write_text(out / "metrics.md", md)
    write_csv(out / "predictions.csv", pred)
    if figures:
        key = "at_prevalence" if prev else "as_sampled"
        cm = np.array(results[key]["confusion_matrix"])
        plots.confusion(
            cm,
            clf.classes,
            out / "confusion_counts.png",
            None,
            "counts" + (" (reweighted)" if prev else ""),
        )
        plots.confusion(cm, clf.classes, out / "confusion_recall.png", "true")
        plots.confusion(cm, clf.classes, out / "confusion_precision.png", "pred")
        plots.pr_curves(y, proba, clf.classes, out / "pr_curves.png", weights)
        if images is not None:
            plots.misclassified_gallery(
                np.asarray(images), y, proba, clf.classes, out / "misclassified.png"
            )
    # last: a study takes metrics.json as the mark of a finished evaluation
    write_json(out / "metrics.json", results)
    return results
