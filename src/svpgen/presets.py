"""The preset registry: the three names every stage config knows.

Each stage keeps its own preset table beside its config (``DiffusionConfig.preset``,
``ClassifierConfig.preset``, ``StudyConfig.preset``); this registry is what the CLI
offers and what those tables are checked against.
"""

from __future__ import annotations

from svpgen.errors import SvpgenError

PRESETS: dict[str, str] = {
    "smoke": "seconds, for tests: tiny networks, tiny data",
    "quick": "the README's main job on a 2-core CPU in minutes",
    "paper": "the paper's exact setup, for a GPU",
}
NAMES: tuple[str, ...] = tuple(PRESETS)


def lookup(table: dict, name: str, what: str):
    """``table[name]``, or a clear error listing the registry's presets."""
    if name not in table:
        raise SvpgenError(f"unknown {what} preset {name!r}; choose from {', '.join(NAMES)}")
    return table[name]
