"""The classifier grid: trials, a local runner (one folder + done marker per trial, so a
killed study resumes without redoing finished trials) and the same trials on Ray Tune
(``backend="ray"``; a local cluster, or the cluster at ``RAY_ADDRESS``).

A ``logit-adjust`` trial trains exactly as its ``none`` twin (same data, grid point and
seed; the adjustment is applied at prediction), so when the twin is in the grid the
trial is not trained again: its model is the twin's weights with the deployment prior."""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from svpgen.atomic import write_json
from svpgen.classify.config import ClassifierConfig
from svpgen.errors import SvpgenError
from svpgen.study.config import TABLE1_PROTEIN_K, StudyConfig
from svpgen.study.jobs import run_jobs
from svpgen.study.layout import Cell, StudyLayout


@dataclass(frozen=True)
class Trial:
    """One grid point for one (model, Table 1 dataset, imbalance strategy) cell."""

    arch: str
    dataset: str  # Table 1 name
    imbalance: str
    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int
    seed: int = 0  # the training seed (0 … seeds − 1), added to the study's seed

    @property
    def cell(self) -> Cell:
        """The (model, training data, strategy) cell of Table 2 this trial competes in."""
        return Cell(self.arch, self.dataset, self.imbalance)

    @property
    def group(self) -> str:
        """The trial's cell by name (:attr:`Cell.key`), as grid records store it."""
        return self.cell.key

    @property
    def name(self) -> str:
        """The grid point as a folder name, e.g. adam-lr0.001-wd0.0001-bs64."""
        return f"{self.optimizer}-lr{self.lr:g}-wd{self.weight_decay:g}-bs{self.batch_size}" + (
            f"-seed{self.seed}" if self.seed else ""
        )

    def run_dir(self, runs: Path) -> Path:
        """The trial's run folder below a study's ``runs`` folder."""
        return runs / self.cell.model / self.cell.folder / self.name


def grid_points(grid: dict) -> list[dict]:
    """Every combination of the grid's optimizer × lr × weight decay × batch size."""
    keys = ("optimizer", "lr", "weight_decay", "batch_size")
    missing = [k for k in keys if k not in grid]
    if missing:
        raise SvpgenError(f"grid lacks {missing}")
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def study_trials(cfg: StudyConfig) -> list[Trial]:
    """All trials of the study: each model × (dataset or baseline) × grid point × seed."""
    trials = []
    for arch in cfg.archs:
        cells = [(d, "none") for d in cfg.datasets] + [
            (cfg.baseline_dataset, b) for b in cfg.baselines
        ]
        for dataset, imbalance in cells:
            for point in grid_points(cfg.grid):
                for seed in range(cfg.seeds):
                    trials.append(Trial(arch, dataset, imbalance, **point, seed=seed))
    return trials


def deployment_prior(cfg: StudyConfig) -> dict[str, float]:
    """The study's deployment prevalence by class."""
    return cfg.prevalence_by_class()


def twin(trial: Trial) -> Trial | None:
    """The ``none`` trial a ``logit-adjust`` trial's training equals; None for other strategies."""
    return replace(trial, imbalance="none") if trial.imbalance == "logit-adjust" else None


def _split(trials: list[Trial]) -> tuple[list[int], list[int]]:
    """(indices of the trials to train, indices of those derived from a twin in ``trials``)."""
    present = set(trials)
    derived = {i for i, t in enumerate(trials) if twin(t) in present}
    return [i for i in range(len(trials)) if i not in derived], sorted(derived)


def derive_logit_adjusted(trial: Trial, cfg: StudyConfig, out: Path) -> dict:
    """A ``logit-adjust`` trial from its trained twin: the twin's model with the study's
    deployment prior in its metadata, and the twin's record (tuning score, epochs; no seconds)."""
    from svpgen.classify.classifier import Classifier
    from svpgen.classify.train import normalise_prior

    layout = StudyLayout(out)
    run = trial.run_dir(layout.runs)
    done = run / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    source = twin(trial).run_dir(layout.runs)
    derived_from = str(source.relative_to(out))
    clf = Classifier.from_pretrained(source, "cpu")
    clf.config = replace(clf.config, imbalance=trial.imbalance)
    clf.metadata.update(
        deploy_prior=normalise_prior(deployment_prior(cfg), clf.classes).tolist(),
        derived_from=derived_from,
    )
    clf.save_pretrained(run)
    record = {
        **json.loads((source / "done.json").read_text()),
        **asdict(trial),
        "group": trial.group,
        "seconds": 0.0,
        "derived_from": derived_from,
    }
    write_json(done, record)
    return record


def run_trial(
    trial: Trial, cfg: StudyConfig, out: Path, device: str = "cpu", progress: bool = False
) -> dict:
    """Train one grid trial (resuming a half-finished one); return its done record."""
    from svpgen.classify.train import train_classifier
    from svpgen.data.store import ParticleStore
    from svpgen.study.datasets import assemble

    layout = StudyLayout(out)
    run = trial.run_dir(layout.runs)
    done, state = run / "done.json", run / "training_state.pt"
    if done.exists():
        state.unlink(missing_ok=True)  # left by a run killed after writing done.json (below)
        return json.loads(done.read_text())
    ccfg: ClassifierConfig = replace(
        ClassifierConfig.from_preset(cfg.classifier_preset),
        arch=trial.arch,
        imbalance=trial.imbalance,
        optimizer=trial.optimizer,
        lr=trial.lr,
        weight_decay=trial.weight_decay,
        batch_size=trial.batch_size,
        seed=cfg.seed + trial.seed,
    )
    train = assemble(trial.dataset, cfg, layout.data, layout.generated_root)
    tune = ParticleStore(layout.pool("tune")).select()
    result = train_classifier(
        train,
        tune,
        run,
        ccfg,
        resume=state.exists(),
        progress=progress,
        device=device,
        deploy_prior=deployment_prior(cfg),
    )
    record = {
        **asdict(trial),
        "group": trial.group,
        "score": result.best_score,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds": result.seconds,
        "train_images": len(train),
    }
    write_json(done, record)
    # a done trial is never resumed: drop its resumable state (weights + optimizer moments,
    # ≈ 3× the model; 126 of them on the paper grid), keeping the model and its history
    state.unlink(missing_ok=True)
    return record


def _expected_images(trial: Trial) -> int:
    """Relative training-set size of a trial (Mixed-n sets are ~3× their Real-n protein count)."""
    return TABLE1_PROTEIN_K[trial.dataset] * (3 if trial.dataset.startswith("Mixed") else 1)


def run_local(
    trials: list[Trial],
    cfg: StudyConfig,
    out: Path,
    device: str = "cpu",
    workers: int = 1,
    then: Callable[[dict], Sequence[tuple[str, Callable[..., Any], tuple]]] | None = None,
) -> list[dict]:
    """Run the trials on this machine, ``workers`` at a time, largest training sets first
    (finished ones are read back), then derive the logit-adjusted ones; records come back
    in ``trials`` order. ``then(best)``: jobs to run in the same pool once every trial of a
    cell (and training seed) has finished, given that cell's best record — the study
    evaluates a cell's model there while other cells still train."""
    trained, derived = _split(trials)
    order = sorted(trained, key=lambda i: -_expected_images(trials[i]))
    bar = tqdm(total=len(trials), unit="trial", desc="grid")
    pending = Counter((trials[i].group, trials[i].seed) for i in trained)
    finished: dict[tuple[str, int], list[tuple[int, dict]]] = {}

    # a trial's job is named by its index in ``trials``; a follow-up by its output folder
    def done(name: str, record: dict) -> None:
        if name.isdigit():
            bar.set_postfix_str(f"{record['group']} done")
            bar.update(1)

    def follow_up(name: str, record: dict) -> list:
        if then is None or not name.isdigit():
            return []
        key = (record["group"], record.get("seed", 0))
        finished.setdefault(key, []).append((int(name), record))
        if len(finished[key]) < pending[key]:
            return []
        # the same record (ties included) as best_per_group picks from the full grid
        best = best_per_group([r for _, r in sorted(finished[key], key=lambda t: t[0])])
        return list(then(best[key[0]][0]))

    results = run_jobs(
        run_trial,
        [(str(i), (trials[i], cfg, out, device)) for i in order],
        workers,
        on_done=done,
        follow_up=follow_up,
    )
    for i in derived:
        results[str(i)] = derive_logit_adjusted(trials[i], cfg, out)
        done(str(i), results[str(i)])
    bar.close()
    return [results[str(i)] for i in range(len(trials))]


def run_ray(trials: list[Trial], cfg: StudyConfig, out: Path, workers: int = 2) -> list[dict]:
    """The same trials as Ray Tune grid-search samples, one CPU each (the logit-adjusted
    ones derived here afterwards)."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise SvpgenError("--backend ray needs Ray Tune: pip install 'svpgen[ray]'") from None
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    out = out.resolve()
    cfg_dict = cfg.to_dict()

    def trainable(config: dict) -> dict:
        import torch

        from svpgen.study.config import StudyConfig as _S

        torch.set_num_threads(1)
        record = run_trial(
            Trial(**config["trial"]), _S.from_dict(config["study"]), Path(config["out"])
        )
        return {"score": record["score"], "seconds": record["seconds"]}

    trained, derived = _split(trials)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={
            "trial": tune.grid_search([asdict(trials[i]) for i in trained]),
            "study": cfg_dict,
            "out": str(out),
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=workers),
        run_config=tune.RunConfig(storage_path=str(StudyLayout(out).ray), name="grid", verbose=0),
    )
    results = tuner.fit()
    errors = [r.error for r in results if r.error]
    if errors:
        raise SvpgenError(
            f"{len(errors)} Ray trial(s) failed; first: {str(errors[0]).splitlines()[0][:200]}"
        )
    for i in derived:
        derive_logit_adjusted(trials[i], cfg, out)
    runs = StudyLayout(out).runs
    return [json.loads((t.run_dir(runs) / "done.json").read_text()) for t in trials]


def best_per_group(records: list[dict]) -> dict[str, list[dict]]:
    """The best trial (tuning score) of each Table 2 cell, per training seed."""
    best: dict[tuple[str, int], dict] = {}
    for r in records:
        key = (r["group"], r.get("seed", 0))
        if key not in best or r["score"] > best[key]["score"]:
            best[key] = r
    out: dict[str, list[dict]] = {}
    for (group, _), r in sorted(best.items()):
        out.setdefault(group, []).append(r)
    return out
