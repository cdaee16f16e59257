"""The field's own baselines: the instrument's morphology parameters
(:mod:`svpgen.data.morphology`) in rule filters as a lab writes them in VisualSpreadsheet or
MVAS, and in a class-weighted random forest or gradient boosting (scikit-learn).

* **Rules**: one filter per class but the most frequent (which takes what no filter
  claims), each a conjunction of up to ``max_conditions`` thresholds such as
  ``aspect_ratio ≥ 0.85 and intensity_max ≥ 210`` (MFI's round-and-bright silicone-oil
  rule). Thresholds are fitted on the training set, greedily, to the best F1 of the class
  at the deployment prevalence (each class's training images weighted to its share of the
  deployment prior, 1000:1 by default), and filters are applied most precise first.
* **Forest** / **boosting**: ``RandomForestClassifier`` / ``HistGradientBoostingClassifier``
  with balanced class weights on the same features (missing values allowed).

Both save and load like the CNN classifier — ``config.json`` (kind, classes, where each
feature comes from, the rules) plus, for the trees, ``model.skops`` (scikit-learn's
estimator in the skops format, not a pickle) — and predict from a particle's crop and its
table row (native size, µm/px, the export's columns).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from svpgen.atomic import atomic_path, write_json
from svpgen.data.morphology import feature_sources, particle_features
from svpgen.errors import SvpgenError

KINDS = ("rules", "forest", "boosting")
_KIND_TAG = {k: f"svpgen-{k}" for k in KINDS}
MODEL_FILE = "model.skops"
_QUANTILES = np.linspace(0.01, 0.99, 99)


@dataclass(frozen=True)
class Condition:
    """``feature ≥ threshold`` or ``feature ≤ threshold`` (a missing value fails it)."""

    feature: str
    op: str  # ">=" or "<="
    threshold: float

    def holds(self, features: pd.DataFrame) -> np.ndarray:
        """Which rows satisfy the condition."""
        values = features[self.feature].to_numpy(float)
        with np.errstate(invalid="ignore"):
            return values >= self.threshold if self.op == ">=" else values <= self.threshold

    def text(self) -> str:
        """The condition as a lab would write it."""
        return f"{self.feature} {'≥' if self.op == '>=' else '≤'} {self.threshold:.4g}"


@dataclass(frozen=True)
class Rule:
    """A class's filter: all of its conditions hold."""

    label: str
    conditions: tuple[Condition, ...]
    train_f1: float  # F1 at the deployment prevalence, on the training set

    def holds(self, features: pd.DataFrame) -> np.ndarray:
        """Which rows the filter claims."""
        keep = np.ones(len(features), bool)
        for c in self.conditions:
            keep &= c.holds(features)
        return keep

    def text(self) -> str:
        """E.g. ``silicone_oil if aspect_ratio ≥ 0.87 and intensity_max ≥ 212``."""
        return f"{self.label} if " + " and ".join(c.text() for c in self.conditions)


def _best_condition(
    features: pd.DataFrame, positive: np.ndarray, weight: np.ndarray, keep: np.ndarray
) -> tuple[Condition | None, float]:
    """The threshold on one feature that, added to the rows ``keep`` already selects,
    gives the best weighted F1 for ``positive``."""
    best, best_f1 = None, -1.0
    total_pos = float(weight[positive].sum())
    for name in features.columns:
        x = features[name].to_numpy(float)
        ok = keep & np.isfinite(x)
        if ok.sum() < 2:
            continue
        candidates = np.unique(np.quantile(x[ok], _QUANTILES))
        xs, ws, ps = x[ok], weight[ok], positive[ok]
        order = np.argsort(xs, kind="stable")
        xs, ws, ps = xs[order], ws[order], ps[order]
        tp_cum = np.r_[0.0, np.cumsum(ws * ps)]
        all_cum = np.r_[0.0, np.cumsum(ws)]
        for op in (">=", "<="):
            cut = np.searchsorted(xs, candidates, side="left" if op == ">=" else "right")
            if op == ">=":
                tp, sel = tp_cum[-1] - tp_cum[cut], all_cum[-1] - all_cum[cut]
            else:
                tp, sel = tp_cum[cut], all_cum[cut]
            f1 = np.divide(
                2 * tp, sel + total_pos, out=np.zeros_like(tp), where=sel + total_pos > 0
            )
            i = int(np.argmax(f1))
            if f1[i] > best_f1:
                best, best_f1 = Condition(name, op, float(candidates[i])), float(f1[i])
    return best, best_f1


def fit_rules(
    features: pd.DataFrame,
    labels: np.ndarray,
    classes: list[str],
    prior: dict[str, float],
    max_conditions: int = 2,
) -> tuple[list[Rule], str]:
    """Filters for every class but the most frequent one (the default), most precise first."""
    counts = {c: int(np.sum(labels == c)) for c in classes}
    default = max(classes, key=lambda c: (counts[c], -classes.index(c)))
    weight = np.array([prior[c] / max(counts[c], 1) for c in labels])
    rules = []
    for c in classes:
        if c == default or counts[c] == 0:
            continue
        positive = labels == c
        keep = np.ones(len(labels), bool)
        conditions: list[Condition] = []
        f1 = 0.0
        for _ in range(max_conditions):
            cond, score = _best_condition(features, positive, weight, keep)
            if cond is None or score <= f1 + 0.005:
                break
            conditions.append(cond)
            keep &= cond.holds(features)
            f1 = score
        if conditions:
            rules.append(Rule(c, tuple(conditions), f1))
    rules.sort(key=lambda r: -r.train_f1)
    return rules, default


class MorphologyModel:
    """A baseline on the particles' morphology features: ``predict_proba_table(images,
    table)`` → float N×C (rows sum to 1), ``classes``, ``from_pretrained`` /
    ``save_pretrained``."""

    def __init__(
        self,
        kind: str,
        classes: list[str],
        sources: dict[str, str],
        *,
        rules: list[Rule] | None = None,
        default: str | None = None,
        estimator=None,
        metadata: dict | None = None,
    ):
        if kind not in KINDS:
            raise SvpgenError(f"unknown baseline {kind!r}; choose from {', '.join(KINDS)}")
        self.kind, self.classes, self.sources = kind, list(classes), dict(sources)
        self.rules, self.default, self.estimator = list(rules or []), default, estimator
        self.metadata = dict(metadata or {})
        self.path: Path | None = None

    @classmethod
    def fit(
        cls,
        kind: str,
        images: np.ndarray | None,
        table: pd.DataFrame,
        *,
        prior: dict[str, float],
        features: str = "auto",
        seed: int = 0,
    ) -> "MorphologyModel":
        """Fit a baseline on labelled particles (``table["label"]``); ``prior`` is the
        deployment prevalence per class (the rules' objective)."""
        from svpgen.data.classes import ordered_classes

        classes = ordered_classes(table["label"])
        if len(classes) < 2:
            raise SvpgenError(f"a baseline needs ≥ 2 labelled classes (got {classes})")
        missing = [c for c in classes if c not in prior]
        if missing:
            raise SvpgenError(f"deployment prior {prior} lacks class(es) {missing}")
        sources = feature_sources(table, features, has_images=images is not None)
        x = particle_features(images, table, sources)
        labels = table["label"].astype(str).to_numpy()
        counts = {c: int(np.sum(labels == c)) for c in classes}
        metadata = {"train_counts": counts, "prior": {c: float(prior[c]) for c in classes}}
        if kind == "rules":
            rules, default = fit_rules(x, labels, classes, prior)
            return cls(kind, classes, sources, rules=rules, default=default, metadata=metadata)
        estimator = _estimator(kind, seed)
        estimator.fit(x.to_numpy(float), labels)
        return cls(kind, classes, sources, estimator=estimator, metadata=metadata)

    def features(self, images: np.ndarray | None, table: pd.DataFrame) -> pd.DataFrame:
        """The model's features of some particles, from the same sources as in training."""
        return particle_features(images, table, self.sources)

    def predict_proba_features(self, x: pd.DataFrame) -> np.ndarray:
        """Class probabilities from precomputed features (rules: one-hot)."""
        if self.kind == "rules":
            assigned = np.full(len(x), self.classes.index(str(self.default)))
            claimed = np.zeros(len(x), bool)
            for rule in self.rules:
                hit = rule.holds(x) & ~claimed
                assigned[hit] = self.classes.index(rule.label)
                claimed |= hit
            return np.eye(len(self.classes))[assigned]
        proba = self.estimator.predict_proba(x[list(self.sources)].to_numpy(float))
        order = [list(self.estimator.classes_).index(c) for c in self.classes]
        return proba[:, order]

    def prepare_inference(self, n_images: int) -> None:
        """Nothing to settle (the interface every svpgen model shares)."""

    def predict_proba_table(self, images: np.ndarray | None, table: pd.DataFrame) -> np.ndarray:
        """Class probabilities N×C for particles (crops + their table rows)."""
        return self.predict_proba_features(self.features(images, table))

    def describe(self) -> str:
        """The fitted model in one paragraph (the rules as a lab reads them)."""
        source = ", ".join(sorted({s for s in self.sources.values()}))
        if self.kind == "rules":
            filters = "; ".join(r.text() for r in self.rules) or "no filter"
            return f"rules: {filters}; otherwise {self.default} (features: {source})"
        return f"{self.kind} on {len(self.sources)} features ({source})"

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` (+ ``model.skops`` for the trees), each atomically."""
        from svpgen import __version__

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.estimator is not None:
            import skops.io as sio

            with atomic_path(path / MODEL_FILE) as tmp:
                sio.dump(self.estimator, tmp)
        config = {
            "kind": _KIND_TAG[self.kind],
            "classes": self.classes,
            "sources": self.sources,
            "rules": [
                {
                    "label": r.label,
                    "train_f1": r.train_f1,
                    "conditions": [asdict(c) for c in r.conditions],
                }
                for r in self.rules
            ],
            "default": self.default,
            "description": self.describe(),
            "package_version": __version__,
            **self.metadata,
        }
        write_json(path / "config.json", config)
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "MorphologyModel":
        """Load a baseline written by :meth:`save_pretrained`."""
        path = Path(path)
        config = read_config(path)
        kind = next((k for k, tag in _KIND_TAG.items() if tag == config.get("kind")), None)
        if kind is None:
            raise SvpgenError(f"{path}: not an svpgen baseline model (kind {config.get('kind')!r})")
        estimator = _load_estimator(path / MODEL_FILE) if kind != "rules" else None
        rules = [
            Rule(r["label"], tuple(Condition(**c) for c in r["conditions"]), float(r["train_f1"]))
            for r in config.get("rules", [])
        ]
        keys = ("kind", "classes", "sources", "rules", "default", "description", "package_version")
        model = cls(
            kind,
            config["classes"],
            config["sources"],
            rules=rules,
            default=config.get("default"),
            estimator=estimator,
            metadata={k: v for k, v in config.items() if k not in keys},
        )
        model.path = path
        return model

    load = from_pretrained

    def __repr__(self) -> str:
        return f"MorphologyModel({self.kind}, classes={self.classes})"


def _estimator(kind: str, seed: int):
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=300,
            min_samples_leaf=2,
            class_weight="balanced",
            n_jobs=1,
            random_state=seed,
        )
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)


def _load_estimator(path: Path):
    """scikit-learn's estimator from its skops file, trusting scikit-learn and NumPy types only."""
    import skops.io as sio

    if not path.is_file():
        raise SvpgenError(f"{path.parent}: the baseline's {MODEL_FILE} is missing")
    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
    if foreign:
        raise SvpgenError(f"{path}: refuses to load types other than scikit-learn's: {foreign[:3]}")
    return sio.load(path, trusted=untrusted)


def read_config(path: Path) -> dict:
    """A model directory's ``config.json``; a clear error when it is missing or unreadable."""
    config = path / "config.json"
    try:
        return json.loads(config.read_text())
    except FileNotFoundError:
        raise SvpgenError(f"{path}: not a model directory (no config.json)") from None
    except json.JSONDecodeError as err:
        raise SvpgenError(f"{config}: unreadable ({err.msg})") from None


def is_baseline(path: str | Path) -> bool:
    """Whether a model directory holds a morphology baseline."""
    try:
        return read_config(Path(path)).get("kind") in _KIND_TAG.values()
    except SvpgenError:
        return False
