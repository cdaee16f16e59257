"""``svpgen study``: every stage of the two-phase study, resumable stage by stage.

Stages: data → encoder → diffusion (per minority class) → generate → audit → grid →
evaluate → report (encoder and audit only with ``audit=True``).
A finished stage leaves ``OUT/stages/<stage>.json`` (what it did, how long it took); a
re-run skips finished stages, finished grid trials and finished diffusion epochs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from svpgen.atomic import write_json
from svpgen.data.store import ParticleStore
from svpgen.errors import SvpgenError
from svpgen.study.compare import Table2
from svpgen.study.config import StudyConfig
from svpgen.study.jobs import local_workers, run_jobs
from svpgen.study.layout import Cell, StudyLayout
from svpgen.study.report import StudyReport, write_report


class StudyLog:
    """Echo a timestamped line and append it to ``OUT/study.log``."""

    def __init__(self, out: Path, echo: Callable[[str], None] = print):
        self.path, self.echo = StudyLayout(out).log, echo

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        self.echo(line)
        with open(self.path, "a") as fh:
            fh.write(line + "\n")


def _stage(out: Path, name: str, log: StudyLog, fn: Callable[[], dict]) -> dict:
    marker = StudyLayout(out).stage(name)
    if marker.exists():
        record = json.loads(marker.read_text())
        log(f"[{name}] already done ({record['seconds']:.0f} s) — skipped")
        return record
    log(f"[{name}] start")
    start = time.perf_counter()
    details = fn()
    record = {"stage": name, "seconds": time.perf_counter() - start, **details}
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_json(marker, record)
    log(f"[{name}] done in {record['seconds']:.0f} s")
    return record


def _stage_data(cfg: StudyConfig, out: Path, data: Path | None) -> dict:
    from svpgen.study.datasets import pool_sizes, write_pools

    data_dir = StudyLayout(out).data
    if data is not None:
        store = ParticleStore(data)
        source = store.select(source=("real", "simulated"))
        written = write_pools(source, None, data_dir, cfg)
        return {"source": str(data), "pools": written}
    from svpgen.simulate import SimConfig, simulate

    sizes = pool_sizes(cfg)
    sizes.pop("eval")
    total = {c: sum(s.get(c, 0) for s in sizes.values()) for c in cfg.classes}
    pool = simulate(
        total,
        seed=cfg.seed,
        config=SimConfig(label_noise=cfg.label_noise, profile=cfg.simulator),
        progress=True,
    ).particles
    eval_counts = pool_sizes(cfg)["eval"]
    evaluation = simulate(
        eval_counts,
        seed=cfg.seed + 1_000_000,
        config=SimConfig(label_noise=0.0, profile=cfg.simulator),
        progress=True,
    ).particles
    # pools are cut by the simulator's ground truth so each pool holds the classes it should;
    # training labels keep the label noise, the evaluation set is curated (no label noise)
    written = write_pools(pool, evaluation, data_dir, cfg, label_column="true_label")
    return {"source": "simulated", "pools": written}


def _stage_encoder(cfg: StudyConfig, out: Path, device: str) -> dict:
    """The particle encoder for FID/KID/PR, trained on the real training pool."""
    from svpgen.evaluate.encoder import train_particle_encoder

    layout = StudyLayout(out)
    train = ParticleStore(layout.pool("train")).select()
    tune = ParticleStore(layout.pool("tune")).select()
    res = train_particle_encoder(
        train,
        tune,
        layout.encoder,
        epochs=cfg.encoder_epochs,
        seed=cfg.seed,
        preset=cfg.classifier_preset,
        device=device,
        resume=(layout.encoder / "training_state.pt").exists(),
    )
    return {"tune_macro_auprc": res.best_score, "seconds_training": res.seconds}


def _diffusion_config(cfg: StudyConfig):
    from svpgen.diffusion.config import DiffusionConfig

    dcfg = replace(DiffusionConfig.from_preset(cfg.diffusion_preset), seed=cfg.seed)
    return dcfg if cfg.audit else replace(dcfg, fid_epochs=())


def _train_diffusion_job(cfg: StudyConfig, out: Path, device: str, c: str) -> dict:
    """One minority class's diffusion model (resuming a half-trained one)."""
    from svpgen.diffusion.train import load_training_images, train_diffusion

    dcfg = _diffusion_config(cfg)
    layout = StudyLayout(out)
    model_dir = layout.generator(c)
    hook = None
    if dcfg.fid_epochs:
        from svpgen.evaluate.audit import fid_hook
        from svpgen.evaluate.features import EncoderFeatures

        real = load_training_images(layout.diffusion_pool(c), c, dcfg.max_images, dcfg.seed)
        hook = fid_hook(real, EncoderFeatures(layout.encoder, device=device), dcfg.fid_samples)
    res = train_diffusion(
        layout.diffusion_pool(c),
        model_dir,
        c,
        dcfg,
        resume=(model_dir / "training_state.pt").exists(),
        eval_hook=hook,
        device=device,
    )
    return {
        "images": res.images,
        "epochs": res.epochs,
        "seconds": res.seconds,
        "final_loss": res.final_loss,
    }


def _stage_diffusion(cfg: StudyConfig, out: Path, device: str, log: StudyLog, workers: int) -> dict:
    dcfg = _diffusion_config(cfg)
    jobs = []
    layout = StudyLayout(out)
    for c in cfg.minority:
        done = layout.generator(c) / "config.json"
        if done.exists() and json.loads(done.read_text()).get("trained_epochs") == dcfg.epochs:
            log(f"  diffusion {c}: already trained")
            continue
        resume = (layout.generator(c) / "training_state.pt").exists()
        log(
            f"  diffusion {c}: training ({cfg.diffusion_preset} "
            f"preset{', resuming' if resume else ''})"
        )
        jobs.append((c, (cfg, out, device, c)))
    info = run_jobs(
        _train_diffusion_job,
        jobs,
        workers,
        lambda c, r: log(f"  diffusion {c}: trained in {r['seconds']:.0f} s"),
    )
    return {"models": info}


def _generate_job(cfg: StudyConfig, out: Path, device: str, c: str, n_total: int) -> dict:
    """Generate one class's images for Mixed-n, with its denoising strip and sample grid."""
    from svpgen.diffusion.generate import generate_to_store
    from svpgen.diffusion.generator import Generator
    from svpgen.plots import sample_grid

    layout = StudyLayout(out)
    figures = layout.figures
    generator = Generator.from_pretrained(layout.generator(c), device)
    sampler, steps = generator.sampling(cfg.sampler, cfg.sampler_steps)
    store, seconds = generate_to_store(
        generator,
        layout.generated(c),
        n_total,
        sampler=sampler,
        steps=steps,
        seed=cfg.seed,
        trajectory_png=figures / f"denoising_{c}.png",
        mode="overwrite",
    )
    real = ParticleStore(layout.diffusion_pool(c)).images[:16]
    sample_grid(
        {f"real {c}": real, f"generated {c}": store.images[:16]},
        figures / f"real_vs_generated_{c}.png",
        title=f"{c}: real (top) vs generated ({sampler}-{steps or 'default'})",
    )
    return {"images": n_total, "seconds": seconds, "sampler": f"{sampler}-{steps or 'default'}"}


def _stage_generate(cfg: StudyConfig, out: Path, device: str, log: StudyLog) -> dict:
    from svpgen.study.datasets import generated_needed

    info = {}
    for c, n in generated_needed(cfg).items():
        n_total = max(n, 32)  # always enough for the real-vs-generated figure
        info[c] = _generate_job(cfg, out, device, c, n_total)
        log(
            f"  generate {c}: {n_total} images with {info[c]['sampler']} in "
            f"{info[c]['seconds']:.0f} s"
        )
    return {"generated": info}


def _audit_job(cfg: StudyConfig, out: Path, device: str, c: str, extractor) -> dict:
    """Audit one class's generated images against held-out real ones (the evaluation pool)."""
    from svpgen.diffusion.generator import Generator
    from svpgen.evaluate.audit import run_audit

    layout = StudyLayout(out)
    generator = Generator.from_pretrained(layout.generator(c), device)
    res = run_audit(
        generator,
        layout.pool("eval"),
        layout.audit(c),
        extractor,
        n=cfg.eval_minority,
        sampler=cfg.sampler,
        steps=cfg.sampler_steps,
        seed=cfg.seed,
        generated_store=layout.generated(c),
        bootstrap=20,
    )
    enc = res["features"]["particle-encoder"]
    modes = res["lenses"].get("modes")
    return {
        "fid": enc["fid"],
        "fid_floor": enc.get("fid_floor"),
        "kid": enc["kid"],
        "precision": enc["precision"],
        "recall": enc["recall"],
        "two_sample_auc": res["lenses"]["two_sample_auc"],
        "max_mode_gap": modes["max_abs_diff"] if modes else None,
        "near_copy_fraction": res["memorization"]["near_copy_fraction"],
        "n": res["n"],
    }


def _stage_audit(cfg: StudyConfig, out: Path, device: str, log: StudyLog) -> dict:
    from svpgen.evaluate.features import EncoderFeatures

    extractor = EncoderFeatures(StudyLayout(out).encoder, device=device)
    info = {}
    for c in cfg.minority:
        log(f"  audit {c}")
        info[c] = _audit_job(cfg, out, device, c, extractor)
    return {"audit": info}


def _stage_grid(
    cfg: StudyConfig, out: Path, device: str, backend: str, workers: int, log: StudyLog
) -> dict:
    """The classifier grid. Locally, a cell whose trials have all finished is evaluated in
    the same pool while other cells still train (the workers would otherwise idle at the end
    of an uneven grid: the quick study's Mixed-4 trial takes about as long as the three
    others together); the evaluate stage then finds those cells done."""
    from svpgen.study.grid import best_per_group, run_local, run_ray, study_trials

    trials = study_trials(cfg)
    log(
        f"  {len(trials)} trials ({len(trials) // max(1, len(cfg.archs))} per model) on "
        f"{backend}, {workers} at a time"
    )
    layout = StudyLayout(out)
    truth = _truth_column(ParticleStore(layout.pool("eval")))

    def evaluate_early(rec: dict) -> list:
        where = layout.evaluation(Cell.from_key(rec["group"]), rec.get("seed", 0))
        if _evaluated(where):
            return []
        log(f"  evaluate {rec['group']} ({_trial(rec).name}) while the grid runs")
        return [(str(where), _evaluate_job, (cfg, out, rec, where, truth))]

    records = (
        run_ray(trials, cfg, out, workers)
        if backend == "ray"
        else run_local(trials, cfg, out, device, workers, then=evaluate_early)
    )
    best = best_per_group(records)
    write_json(layout.grid_results, {"trials": records, "best": best})
    return {"trials": len(records), "best": {g: [r["score"] for r in rs] for g, rs in best.items()}}


def _trial(rec: dict):
    from svpgen.study.grid import Trial

    return Trial(**{k: rec[k] for k in Trial.__dataclass_fields__ if k in rec})


def _evaluate_job(
    cfg: StudyConfig,
    out: Path,
    rec: dict,
    target: Path,
    truth: str,
    twin_predictions: Path | None = None,
) -> str:
    from svpgen.evaluate.evaluation import evaluate_model

    trial = _trial(rec)
    layout = StudyLayout(out)
    evaluate_model(
        trial.run_dir(layout.runs),
        layout.pool("eval"),
        target,
        _prevalence_option(cfg),
        figures=trial.seed == 0,
        truth_column=truth,
        progress=False,
        int8=cfg.eval_int8,
        twin_predictions=twin_predictions,
    )
    return str(target)


def _evaluated(where: Path) -> bool:
    """Whether a cell's evaluation finished (``metrics.json`` is the last file it writes)."""
    return (where / "metrics.json").exists()


def _prevalence_option(cfg: StudyConfig) -> str:
    """The study's deployment prevalence as ``svpgen evaluate --prevalence`` takes it."""
    return ",".join(f"{c}={p:g}" for c, p in cfg.prevalence_by_class().items())


def _truth_column(store: ParticleStore) -> str:
    """The evaluation set's ground truth: the simulator's ``true_label``, else ``label``."""
    return "true_label" if "true_label" in store.table.columns else "label"


def _stage_baselines(cfg: StudyConfig, out: Path, log: StudyLog) -> dict:
    """The field's baselines — rule filters and a random forest on the particles'
    morphology parameters — fitted on each Real-n training set of the study and evaluated
    on the same evaluation set as the CNN cells (features of the evaluation set computed
    once per feature source)."""
    from svpgen.classify.baselines import MorphologyModel
    from svpgen.evaluate.evaluation import evaluate_model
    from svpgen.study.datasets import assemble, baseline_datasets

    layout = StudyLayout(out)
    eval_store = ParticleStore(layout.pool("eval"))
    truth = _truth_column(eval_store)
    features: dict[tuple, object] = {}
    info = {}
    for kind in cfg.morphology_baselines:
        for dataset in baseline_datasets(cfg):
            start = time.perf_counter()
            train = assemble(dataset, cfg, layout.data, layout.generated_root)
            model = MorphologyModel.fit(
                kind, train.images, train.table, prior=cfg.prevalence_by_class(), seed=cfg.seed
            )
            cell = Cell(kind, dataset)
            model_dir = model.save_pretrained(layout.baseline(cell))
            key = tuple(model.sources.items())
            if key not in features:
                features[key] = model.features(eval_store.images, eval_store.table)
            evaluate_model(
                model_dir,
                layout.pool("eval"),
                layout.evaluation(cell),
                _prevalence_option(cfg),
                truth_column=truth,
                progress=False,
                features=features[key],
            )
            seconds = time.perf_counter() - start
            info[cell.key] = {"model": model.describe(), "seconds": seconds}
            log(f"  {kind} on {dataset}: {model.describe()} ({seconds:.0f} s)")
    return {"baselines": info}


def _stage_evaluate(cfg: StudyConfig, out: Path, log: StudyLog) -> dict:
    layout = StudyLayout(out)
    best = json.loads(layout.grid_results.read_text())["best"]
    truth = _truth_column(ParticleStore(layout.pool("eval")))
    target = {
        (group, rec.get("seed", 0)): layout.evaluation(Cell.from_key(group), rec.get("seed", 0))
        for group, recs in best.items()
        for rec in recs
    }
    # where each evaluated model's predictions land: a model derived from its twin (logit
    # adjustment) reuses the twin's predictions instead of running the network again
    predictions = {
        str(_trial(rec).run_dir(layout.runs).relative_to(layout.root)): target[
            group, rec.get("seed", 0)
        ]
        / "predictions.csv"
        for group, recs in best.items()
        for rec in recs
    }
    info: dict[str, list[str]] = {}
    for group, recs in sorted(
        best.items(), key=lambda item: any("derived_from" in r for r in item[1])
    ):  # twins first
        for rec in recs:
            where = target[group, rec.get("seed", 0)]
            info.setdefault(group, []).append(str(where))
            if not _evaluated(where):
                twin = predictions.get(rec.get("derived_from", ""))
                twin = twin if twin is not None and twin.exists() else None
                log(
                    f"  evaluate {group} ({_trial(rec).name})"
                    + (" from its twin's predictions" if twin else "")
                )
                _evaluate_job(cfg, out, rec, where, truth, twin)
    return {"evaluated": dict(sorted(info.items()))}


@dataclass
class StudyResult:
    """What a study run did: each stage's record, and the report it wrote (Table 2 with its
    intervals and comparisons included)."""

    records: dict[str, dict]
    report: StudyReport

    @property
    def table2(self) -> Table2 | None:
        """Table 2 at the deployment prevalence, with intervals and paired comparisons."""
        return self.report.table2


def run_study(
    cfg: StudyConfig,
    out: str | Path,
    data: str | Path | None = None,
    *,
    device: str = "cpu",
    backend: str = "local",
    workers: int = 2,
    echo: Callable[[str], None] = print,
) -> StudyResult:
    """Run (or resume) the whole study in ``out``; returns each stage's record and the
    report (Table 2, its intervals and comparisons).

    The config's classes, minority classes and prevalence are resolved first — from the
    labelled classes of ``data`` (a store of the lab's own particles, whose pools are then
    fitted to what it holds) or for the simulator."""
    from svpgen.study.datasets import data_counts, fit_to_data, resolve_classes

    out = Path(out)
    counts = data_counts(ParticleStore(data)) if data else None
    cfg = resolve_classes(cfg, counts)
    fitted = ""
    if counts is not None:
        cfg, fitted = fit_to_data(cfg, counts)
    out.mkdir(parents=True, exist_ok=True)
    saved = StudyLayout(out).settings
    if saved.exists():
        previous = json.loads(saved.read_text())
        if previous["config"] != json.loads(json.dumps(cfg.to_dict())):
            raise SvpgenError(
                f"{out} holds a study with different settings; resume it with the same "
                "preset/config or choose a new --out"
            )
    else:
        write_json(saved, {"config": cfg.to_dict(), "data": str(data) if data else "simulated"})
    log = StudyLog(out, echo)
    jobs = local_workers(workers, device)
    log(
        f"study {cfg.preset} → {out} (device {device}, backend {backend}, "
        f"{jobs} job(s) at a time here)"
    )
    log(
        f"classes {', '.join(cfg.classes)}; minority {', '.join(cfg.minority)}; deployment "
        f"prevalence {':'.join(f'{p:g}' for p in cfg.prevalence)}"
    )
    if fitted:
        log(fitted)
    records = {
        "data": _stage(
            out, "data", log, lambda: _stage_data(cfg, out, Path(data) if data else None)
        ),
    }
    if cfg.audit:
        records["encoder"] = _stage(out, "encoder", log, lambda: _stage_encoder(cfg, out, device))
    records |= {
        "diffusion": _stage(
            out, "diffusion", log, lambda: _stage_diffusion(cfg, out, device, log, jobs)
        ),
        # inference stages run one job at a time with every thread: measured faster than side by
        # side here (evaluation 265 s vs 320 s, audit 80 s vs 94 s on 2 cores)
        "generate": _stage(out, "generate", log, lambda: _stage_generate(cfg, out, device, log)),
    }
    if cfg.audit:
        records["audit"] = _stage(out, "audit", log, lambda: _stage_audit(cfg, out, device, log))
    records |= {
        "grid": _stage(
            out,
            "grid",
            log,
            lambda: _stage_grid(
                cfg, out, device, backend, workers if backend == "ray" else jobs, log
            ),
        ),
        "baselines": _stage(out, "baselines", log, lambda: _stage_baselines(cfg, out, log)),
        "evaluate": _stage(out, "evaluate", log, lambda: _stage_evaluate(cfg, out, log)),
    }
    start = time.perf_counter()
    report = write_report(out)
    records["report"] = {"stage": "report", "seconds": time.perf_counter() - start}
    log(f"[report] {report.html}")
    return StudyResult(records, report)
