"""Canonical particle class names and the synonyms importers accept."""

from __future__ import annotations

import re

PRIMARY_CLASSES: tuple[str, ...] = ("protein", "silicone_oil", "air_bubble")
OPTIONAL_CLASSES: tuple[str, ...] = ("glass", "fiber", "other")
CANONICAL_CLASSES: tuple[str, ...] = PRIMARY_CLASSES + OPTIONAL_CLASSES
UNKNOWN = "unknown"
SOURCES: tuple[str, ...] = ("real", "generated", "simulated")

_SYNONYMS: dict[str, str] = {
    "protein": "protein",
    "proteins": "protein",
    "protein_aggregate": "protein",
    "protein_aggregates": "protein",
    "aggregate": "protein",
    "aggregates": "protein",
    "pa": "protein",
    "silicone_oil": "silicone_oil",
    "siliconeoil": "silicone_oil",
    "silicone": "silicone_oil",
    "silicon_oil": "silicone_oil",
    "silicone_oil_droplet": "silicone_oil",
    "silicone_oil_droplets": "silicone_oil",
    "oil": "silicone_oil",
    "so": "silicone_oil",
    "sod": "silicone_oil",
    "droplet": "silicone_oil",
    "droplets": "silicone_oil",
    "air_bubble": "air_bubble",
    "air_bubbles": "air_bubble",
    "airbubble": "air_bubble",
    "bubble": "air_bubble",
    "bubbles": "air_bubble",
    "air": "air_bubble",
    "ab": "air_bubble",
    "glass": "glass",
    "glass_lamellae": "glass",
    "lamellae": "glass",
    "fiber": "fiber",
    "fibers": "fiber",
    "fibre": "fiber",
    "fibres": "fiber",
    "other": "other",
    "others": "other",
    "unknown": UNKNOWN,
    "unlabeled": UNKNOWN,
    "unlabelled": UNKNOWN,
}


def canonical_label(name: str) -> str | None:
    """Map a class name or synonym (any case, spaces/dashes allowed) to its canonical
    name, ``"unknown"`` for unlabeled markers, or ``None`` when it is not recognised."""
    key = re.sub(r"[\s\-\.]+", "_", str(name).strip().lower())
    return _SYNONYMS.get(key)
