"""``svpgen classify``: a trained classifier over a store, a folder tree or an instrument
export, streamed in chunks, to a predictions table."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from svpgen.atomic import write_csv
from svpgen.errors import SvpgenError

# instrument size columns carried into predictions when present
# carried from the input into predictions: sizes, and VisualSpreadsheet's particle id
SIZE_COLUMNS = (
    "particle_id",
    "esd_um",
    "pixel_um",
    "native_h",
    "native_w",
    "esd_diameter",
    "abd_diameter",
    "ecd",
    "area",
    "edge_particle",
)
PRECISIONS = ("fp32", "int8", "bf16")


def predictions_table(
    clf,
    images: np.ndarray | None,
    table: pd.DataFrame,
    *,
    batch_size: int = 512,
    progress: bool = False,
    proba: np.ndarray | None = None,
) -> pd.DataFrame:
    """id, origin, predicted, confidence, p_<class>…, the size columns present, and the
    label (and instrument class) when the input carries them. ``clf``: any svpgen model
    (:func:`~svpgen.classify.classifier.load_model`); ``images`` None for a baseline that
    reads export columns only. ``proba``: the class probabilities when they are already
    known (the particles are then not classified)."""
    if proba is None:
        n = len(table)
        clf.prepare_inference(n)
        proba = np.empty((n, len(clf.classes)))
        bar = tqdm(total=n, unit="img", desc="classify", disable=not progress)
        chunk = batch_size * 16
        for start in range(0, n, chunk):
            rows = slice(start, start + chunk)
            part = None if images is None else np.asarray(images[rows])
            proba[rows] = clf.predict_proba_table(part, table.iloc[rows])
            bar.update(min(chunk, n - start))
        bar.close()
    origin = table["origin"].to_numpy() if "origin" in table.columns else ""
    out = pd.DataFrame({"id": table["id"].to_numpy(), "origin": origin})
    out["predicted"] = np.asarray(clf.classes, dtype=object)[proba.argmax(1)]
    out["confidence"] = proba.max(1)
    for i, c in enumerate(clf.classes):
        out[f"p_{c}"] = proba[:, i]
    for col in SIZE_COLUMNS:
        if col in table.columns:
            out[col] = table[col].to_numpy()
    if "label" in table.columns and (table["label"] != "unknown").any():
        out["label"] = table["label"].to_numpy()
    if "vs_class" in table.columns:
        out["vs_class"] = table["vs_class"].to_numpy()
    return out


def load_input(path: str | Path) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame, str]:
    """(images, table, measurements without images, source kind) from a store, a folder
    tree or an instrument export."""
    from svpgen.data.store import ParticleStore, is_store

    path = Path(path)
    if is_store(path):
        store = ParticleStore(path)
        return store.images, store.table, store.measurements, "store"
    from svpgen.data.importers import read_source

    result = read_source(path)
    if len(result.particles) == 0 and len(result.measurements) == 0:
        raise SvpgenError(f"{path}: no usable particles to classify")
    return result.particles.images, result.particles.table, result.measurements, result.format


def model_inputs(
    model, images: np.ndarray, table: pd.DataFrame, measurements: pd.DataFrame, where: str
) -> tuple[np.ndarray | None, pd.DataFrame]:
    """What a model reads of an input: the particles' crops and rows — or, for a baseline
    that reads export columns only, every row (measurements without images included) and
    no crops."""
    sources = getattr(model, "sources", None)
    if sources is not None and "computed" not in sources.values():
        rows = [t for t in (table, measurements) if len(t)]
        return None, pd.concat(rows, ignore_index=True) if rows else table
    if len(table) == 0:
        raise SvpgenError(
            f"{where}: no particle images (measurements only); this model reads crops"
        )
    return images, table


def load_classifier(model: str | Path, device: str = "auto", precision: str = "fp32"):
    """Any classifier svpgen writes: a model directory (the CNN or a morphology baseline)
    or an exported ``.onnx`` file (run on onnxruntime; torch is not imported).
    ``precision`` (fp32, int8 or bf16) applies to the CNN of a model directory."""
    if precision not in PRECISIONS:
        raise SvpgenError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if Path(model).suffix.lower() == ".onnx":
        from svpgen.classify.onnx import OnnxClassifier

        if precision == "int8":
            raise SvpgenError(
                "--int8 applies to a model directory; export an int8 ONNX file instead"
            )
        if precision == "bf16":
            raise SvpgenError("--bf16 applies to a model directory, not an ONNX file")
        return OnnxClassifier(model)
    from svpgen.classify.classifier import Classifier, load_model

    clf = load_model(model, device)
    if precision != "fp32" and not isinstance(clf, Classifier):
        raise SvpgenError(f"--{precision}: {model} is a morphology baseline, not a CNN")
    if precision == "bf16":
        clf.inference = "bf16"
    return clf


def classify_input(
    model: str | Path,
    input_path: str | Path,
    out: str | Path,
    *,
    batch_size: int = 512,
    precision: str = "fp32",
    device: str = "auto",
    progress: bool = True,
) -> tuple[pd.DataFrame, str, float]:
    """Classify every particle of ``input_path`` and write the predictions CSV ``out``;
    returns (predictions, input kind, seconds). ``precision="int8"`` calibrates the CNN's
    int8 inference on the input; ``"bf16"`` runs it under bf16 autocast."""
    start = time.perf_counter()
    clf = load_classifier(model, device, precision)
    images, table, measurements, kind = load_input(input_path)
    images, table = model_inputs(clf, images, table, measurements, str(input_path))
    if precision == "int8":
        clf.quantize(images)
    pred = predictions_table(clf, images, table, batch_size=batch_size, progress=progress)
    write_csv(out, pred)
    return pred, kind, time.perf_counter() - start


def write_classification(
    pred: pd.DataFrame,
    out: str | Path,
    classes: list[str],
    *,
    name: str,
    min_confidence: dict[str, float] | float | None = None,
) -> dict[str, int]:
    """The predictions as a VisualSpreadsheet classification (``.cla``) of the run they came
    from: one class per model class (and ``unclassified`` for particles below
    ``min_confidence``), listing VisualSpreadsheet's particle ids; returns the counts."""
    from svpgen.data.importers.flowcam import write_cla
    from svpgen.data.predictions import UNCLASSIFIED, assign_classes

    if "particle_id" not in pred.columns or pred["particle_id"].isna().any():
        raise SvpgenError(
            "--cla needs particles with VisualSpreadsheet particle ids (a FlowCam .lst run)"
        )
    runs = pred["id"].astype(str).str.rsplit(":", n=1).str[0].unique()
    if len(runs) != 1:
        raise SvpgenError(
            f"--cla writes one run's classification; the input holds {len(runs)} runs"
        )
    assigned = assign_classes(pred, min_confidence).to_numpy()
    ids = pred["particle_id"].map(_vs_id)
    members = {c: ids[assigned == c].tolist() for c in [*classes, UNCLASSIFIED]}
    if not members[UNCLASSIFIED]:
        members.pop(UNCLASSIFIED)
    write_cla(out, name, members)
    return {c: len(v) for c, v in members.items()}


def _vs_id(value) -> str:
    """A particle id as VisualSpreadsheet writes it (``7``, not ``7.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
