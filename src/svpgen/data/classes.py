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


def label_from_name(name: str) -> str:
    """The canonical class a free-form instrument class or library name stands for.

    The whole name is tried first ("Silicone Oil" → silicone_oil); then its words and word
    pairs ("SO droplets 2019" → silicone_oil, "Air bubbles (syringe)" → air_bubble). If the
    words point at different classes, or at none, the answer is ``"unknown"``.
    """
    whole = canonical_label(name)
    if whole is not None:
        return whole
    words = [w for w in re.split(r"[^0-9a-z]+", str(name).lower()) if w and not w.isdigit()]
    found = set()
    i = 0
    while i < len(words):
        pair = canonical_label("_".join(words[i : i + 2])) if i + 1 < len(words) else None
        if pair not in (None, UNKNOWN):
            found.add(pair)
            i += 2
            continue
        single = canonical_label(words[i])
        if single not in (None, UNKNOWN):
            found.add(single)
        i += 1
    return found.pop() if len(found) == 1 else UNKNOWN
