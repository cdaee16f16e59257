"""Parsing of ``name=value,name=value`` option values (split fractions, priors,
prevalences, confidence thresholds)."""

from __future__ import annotations

from svpgen.errors import SvpgenError


def parse_mapping(text: str, option: str, example: str) -> dict[str, float]:
    """Parse ``name=value,name=value`` (values as floats); a clear error names the option."""
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise SvpgenError(f"{option} {text!r}: expected name=value,… e.g. {example}") from None


def parse_floats(text: str, option: str) -> tuple[float, ...]:
    """Parse ``0.5,0.25,1`` into floats; a clear error names the option."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SvpgenError(
            f"{option} {text!r}: expected comma-separated numbers, e.g. 0.485,0.456,0.406"
        ) from None


def with_overrides(config, **overrides):
    """``dataclasses.replace`` that ignores ``None`` values (options the user did not set)."""
    from dataclasses import replace

    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
