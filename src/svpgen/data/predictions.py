"""What a predictions table (``svpgen classify``'s CSV) says about each particle: its
class, or ``unclassified`` below a confidence floor — shared by the QC counts and the
VisualSpreadsheet classification export."""

from __future__ import annotations

import pandas as pd

from svpgen.errors import SvpgenError
from svpgen.options import parse_mapping

UNCLASSIFIED = "unclassified"


def assign_classes(
    pred: pd.DataFrame, min_confidence: dict[str, float] | float | None = None
) -> pd.Series:
    """The predicted class, or ``unclassified`` below the class's confidence threshold."""
    if "predicted" not in pred.columns:
        raise SvpgenError("predictions lack a 'predicted' column (write them with svpgen classify)")
    classes = pred["predicted"].astype(str).copy()
    if min_confidence is None:
        return classes
    conf = pred["confidence"] if "confidence" in pred else pred.filter(like="p_").max(axis=1)
    if isinstance(min_confidence, dict):
        thresh = classes.map(min_confidence).fillna(0.0)
    else:
        thresh = pd.Series(float(min_confidence), index=pred.index)
    classes[conf.to_numpy() < thresh.to_numpy()] = UNCLASSIFIED
    return classes


def parse_min_confidence(text: str | None) -> dict[str, float] | float | None:
    """``--min-confidence``: one threshold (``0.8``) or per class
    (``protein=0.9,silicone_oil=0.7``)."""
    if not text:
        return None
    if "=" in text:
        return parse_mapping(text, "--min-confidence", "protein=0.9,silicone_oil=0.7")
    try:
        return float(text)
    except ValueError:
        raise SvpgenError(f"--min-confidence {text!r}: expected 0.8 or class=0.8,…") from None
