"""The one Markdown table writer every report uses."""

from __future__ import annotations

import numbers

import pandas as pd


def _cell(value, float_format: str) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return format(value, float_format)
    return str(value)


def markdown_table(frame: pd.DataFrame, float_format: str = ".3f", empty: str = "_none_") -> str:
    """A GitHub-flavoured Markdown table: numbers right-aligned, floats as ``float_format``,
    integers with thousands separators; ``empty`` when the frame has no rows."""
    if frame.empty:
        return empty
    cols = [str(c) for c in frame.columns]
    align = [
        "---:"
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        else "---"
        for c in frame.columns
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(align) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, float_format) for v in row) + " |")
    return "\n".join(lines)
