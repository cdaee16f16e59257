"""Particle class names: the canonical classes and the synonyms importers accept, a lab's
own class names (kept, normalised for file and column use), class maps, and the paper's
minority classes and deployment prevalence as defaults for any class list."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

from svpgen.errors import SvpgenError

PRIMARY_CLASSES: tuple[str, ...] = ("protein", "silicone_oil", "air_bubble")
OPTIONAL_CLASSES: tuple[str, ...] = ("glass", "fiber", "other")
CANONICAL_CLASSES: tuple[str, ...] = PRIMARY_CLASSES + OPTIONAL_CLASSES
UNKNOWN = "unknown"
SOURCES: tuple[str, ...] = ("real", "generated", "simulated")
PAPER_MINORITY: tuple[str, ...] = ("silicone_oil", "air_bubble")
# the paper's deployment setting, 1000:1:1 — here: 1000 per majority class, 1 per minority class
PAPER_RATIO = 1000.0
_CLASS_NAME = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")

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
    "unclassified": UNKNOWN,
}


def normalise_class_name(name: object) -> str:
    """A class name fit for file names and table columns: ASCII lower case, words joined
    by ``_`` ("Schlieren lines" → ``schlieren_lines``, "badoil/notoil" → ``badoil_notoil``,
    "µ-droplets" → ``u_droplets``); empty when the name has no letter or digit."""
    text = unicodedata.normalize("NFKD", str(name).replace("µ", "u").replace("μ", "u"))
    text = text.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


def is_class_name(label: str) -> bool:
    """Whether ``label`` is already a normalised class name (what a store's label holds)."""
    return bool(_CLASS_NAME.match(str(label)))


def canonical_label(name: str) -> str | None:
    """Map a class name or synonym (any case, spaces/dashes allowed) to its canonical
    name, ``"unknown"`` for unlabeled markers, or ``None`` when it is not recognised."""
    return _SYNONYMS.get(normalise_class_name(name))


def _word_match(name: str) -> str | None:
    """The one canonical class a name's words or word pairs point at ("SO droplets 2019"
    → silicone_oil, "Air bubbles (syringe)" → air_bubble); None for none or several."""
    words = [w for w in normalise_class_name(name).split("_") if w and not w.isdigit()]
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
    return found.pop() if len(found) == 1 else None


def class_label(name: str) -> str:
    """The stored label of one class name on its own: the canonical class of a synonym,
    else the name normalised; ``unknown`` for unlabelled markers and empty names."""
    canon = canonical_label(name)
    if canon is not None:
        return canon
    return normalise_class_name(name) or UNKNOWN


def resolve_class_names(
    names: Iterable[str], class_map: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The stored label of each of a lab's class names (instrument classes, library or
    folder names), looked at together:

    1. a class map entry (``--class-map``; lab names match whatever their case or
       punctuation) wins;
    2. a canonical class's name or synonym ("SO", "Air bubbles") maps to that class;
    3. a name whose words point at one canonical class ("SO droplets 2019") maps to it,
       unless another name of the same set already stands for that class, in which case
       it stays a class of its own ("Multi-droplet silicone oil" beside "Silicone oil");
    4. any other name is the lab's own class, normalised ("Schlieren lines" →
       ``schlieren_lines``).

    Unlabelled markers ("unknown", "unclassified"…) and names without a letter or digit
    map to ``unknown``.
    """
    names = list(dict.fromkeys(str(n) for n in names))
    by_key = {normalise_class_name(k): class_label(v) for k, v in (class_map or {}).items()}
    out: dict[str, str] = {}
    for name in names:
        key = normalise_class_name(name)
        if key in by_key:
            out[name] = by_key[key]
        elif (canon := canonical_label(name)) is not None:
            out[name] = canon
    claimed = set(out.values())
    by_words: dict[str, list[str]] = {}
    for name in names:
        if name not in out and (target := _word_match(name)) is not None:
            by_words.setdefault(target, []).append(name)
    for target, group in by_words.items():
        if target not in claimed and len(group) == 1:
            out[group[0]] = target
    return {name: out.get(name) or class_label(name) for name in names}


def label_from_name(name: str) -> str:
    """The stored label of one free-form instrument class or library name, on its own
    (:func:`resolve_class_names` with a single name)."""
    return resolve_class_names([name])[name]


def read_class_map(path: str | Path) -> dict[str, str]:
    """A class map file: one ``lab name,class`` row per lab class (comma, semicolon or tab
    separated; an optional header row whose second cell is ``class``, ``label``, ``to`` or
    ``target``). A target may be a canonical synonym ("SO"), a new name, or ``unknown``.
    Bad rows fail with the file and row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise SvpgenError(f"{path}: cannot read the class map ({err})") from None
    lines = text.splitlines()
    first = lines[0] if lines else ""
    delimiter = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
    mapping: dict[str, str] = {}
    for row_no, cells in enumerate(csv.reader(lines, delimiter=delimiter), 1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if row_no == 1 and len(cells) >= 2 and normalise_class_name(cells[1]) in _MAP_HEADERS:
            continue
        if len(cells) != 2 or not cells[0]:
            raise SvpgenError(
                f"{path}: row {row_no}: expected 'lab name,class', got {','.join(cells)!r}"
            )
        key, target = normalise_class_name(cells[0]), class_label(cells[1]) if cells[1] else UNKNOWN
        if not key:
            raise SvpgenError(
                f"{path}: row {row_no}: lab class name {cells[0]!r} has no letter or digit"
            )
        if mapping.get(key, target) != target:
            raise SvpgenError(
                f"{path}: row {row_no}: {cells[0]!r} is mapped twice ({mapping[key]} and {target})"
            )
        mapping[key] = target
    if not mapping:
        raise SvpgenError(f"{path}: the class map has no 'lab name,class' rows")
    return mapping


_MAP_HEADERS = {"class", "label", "to", "target", "svpgen_class", "maps_to"}


def ordered_classes(labels: Iterable[str]) -> list[str]:
    """The classes present in ``labels`` (``unknown`` left out): the canonical ones in
    canonical order, then a lab's own names alphabetically."""
    present = set(labels) - {UNKNOWN}
    return [c for c in CANONICAL_CLASSES if c in present] + sorted(present - set(CANONICAL_CLASSES))


def default_minority(counts: Mapping[str, int]) -> tuple[str, ...]:
    """The classes that get a generator when none are named: the paper's minority classes
    (silicone oil, air bubbles) present in the data; where none is, every class but the
    most frequent one."""
    classes = ordered_classes(c for c, n in counts.items() if n > 0)
    paper = tuple(c for c in classes if c in PAPER_MINORITY)
    if paper or len(classes) < 2:
        return paper
    most = max(classes, key=lambda c: (counts[c], -classes.index(c)))
    return tuple(c for c in classes if c != most)


def paper_prevalence(classes: Iterable[str], minority: Iterable[str]) -> dict[str, float]:
    """The paper's deployment prevalence for any class list: 1000 for each majority
    class, 1 for each minority class (1000:1:1 for protein, silicone oil, air bubbles)."""
    minority = set(minority)
    return {c: 1.0 if c in minority else PAPER_RATIO for c in classes}
