"""Is a generated particle good enough? The generative audit (``svpgen audit``), the
FID/KID hook used during diffusion training, and the filter applied before generated
images join a training set.

Everything here works on a *generator object* — anything with ``label``, ``metadata``,
``sample(n, sampler, steps, seed)``, ``sampling(sampler, steps)`` and
``training_images()`` (None when unknown, e.g. an imported model: the memorization audit
is then skipped), such as :class:`svpgen.diffusion.generator.Generator` — so the
evaluation layer never depends on how a model was built or trained.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from svpgen.atomic import write_json, write_text
from svpgen.data.augment import SYMMETRY_ALPHA
from svpgen.data.store import ParticleStore
from svpgen.errors import SvpgenError
from svpgen.evaluate import generative
from svpgen.evaluate.features import PixelFeatures
from svpgen.markdown import markdown_table
from svpgen.stats import two_sample_auc


def fid_hook(real_images: np.ndarray, extractor, n_samples: int) -> Callable:
    """A training hook: FID/KID of ``n_samples`` samples (the model's recommended sampler,
    seeded by the epoch) vs ``real_images`` in ``extractor``'s features (paper Fig. 4b)."""
    real = extractor(real_images)

    def hook(generator, epoch: int) -> dict:
        gen = extractor(generator.sample(n_samples, seed=epoch))
        kid_mean, _ = generative.kid(real, gen)
        return {"fid": generative.fid(real, gen), "kid": kid_mean}

    return hook


def held_out_real(generator, real_store: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Real images of the generator's class in ``real_store`` that it was not trained on,
    and their sub-types when the store records them (simulated data does)."""
    store = ParticleStore(real_store)
    idx = store.indices(label=generator.label, source=("real", "simulated"))
    train_store = generator.metadata.get("store")
    train_hashes = (
        set(ParticleStore(train_store).table["sha256"])
        if train_store and Path(train_store).exists()
        else set()
    )
    held = idx[~store.table["sha256"].iloc[idx].isin(train_hashes).to_numpy()]
    if len(held) < 10:
        raise SvpgenError(
            f"{real_store}: only {len(held)} held-out real {generator.label} images (not used to "
            "train the model); need ≥ 10"
        )
    subtypes = store.table["subtype"].to_numpy()[held] if "subtype" in store.table.columns else None
    return np.asarray(store.images[held]), subtypes


def realism_lenses(
    real: np.ndarray,
    real_subtypes: np.ndarray | None,
    gen: np.ndarray,
    m: int,
    seeds=range(3),
    embedded: tuple[np.ndarray, np.ndarray] | None = None,
    n_jobs: int | None = None,
) -> dict:
    """What FID alone misses: the classifier two-sample test (generated vs the first ``m``
    real images, AUC) and mode coverage (sub-type shares, when the real images record them;
    with ``embedded`` — feature rows of ``real`` and ``gen`` — also how many of each
    sub-type's generated images look like its real ones). (The third lens, the
    real-vs-real FID floor, is computed per feature space.) ``n_jobs``: processes for the
    lenses' classifier fits (-1: one per core; the numbers do not change)."""
    out: dict = {"n": m}
    aucs = [two_sample_auc(real[:m], gen[:m], seed, n_jobs=n_jobs) for seed in seeds]
    out["two_sample_auc"] = {k: float(np.mean([a[k] for a in aucs])) for k in aucs[0]}
    if real_subtypes is not None and len(set(generative.subtype_groups(real_subtypes))) > 1:
        out["modes"] = generative.mode_coverage(
            real, real_subtypes, gen, embedded=embedded, n_jobs=n_jobs
        )
    return out


def _pairs_gallery(
    gen: np.ndarray,
    train: np.ndarray,
    nearest: np.ndarray,
    ratio: np.ndarray,
    path: Path,
    k: int = 8,
) -> None:
    from svpgen.plots import sample_grid

    order = np.argsort(ratio)[:k]
    sample_grid(
        {f"generated (closest {k})": gen[order], "nearest training image": train[nearest[order]]},
        path,
        title="closest generated–training pairs (ratio "
        + ", ".join(f"{r:.2f}" for r in ratio[order])
        + ")",
    )


def _lenses_markdown(lenses: dict) -> str:
    lines = [
        f"FID / floor: the FID divided by the FID between two disjoint sets of {lenses['n']} real "
        "images (same features)."
    ]
    auc = lenses["two_sample_auc"]
    lines.append(
        "Two-sample test, generated vs real (AUC; 0.5 = indistinguishable): logistic regression "
        f"{auc['logreg']:.3f}, "
        f"gradient boosting {auc['gbm']:.3f}."
    )
    modes = lenses.get("modes")
    if modes:
        shares = ", ".join(
            f"{k} {modes['real'][k]:.2f} / {modes['real_classified'][k]:.2f} → "
            f"{modes['generated'][k]:.2f} "
            f"(recall {modes['classifier_recall'][k]:.2f})"
            for k in modes["modes"]
        )
        lines.append(
            "Mode coverage (sub-type shares: real by label / real as the sub-type classifier "
            "assigns them → generated "
            "as it assigns them; cross-validated accuracy "
            f"{modes['classifier_cv_accuracy']:.2f}): {shares}. "
            f"Largest gap, like for like: {modes['max_abs_diff']:.3f} (between two sets of real "
            "images of this size: "
            f"{modes['max_abs_diff_floor']:.3f} on average; against the labels: "
            f"{modes['max_abs_diff_vs_labels']:.3f})."
        )
        by_mode = modes.get("precision_by_mode")
        if by_mode:
            looks = ", ".join(
                f"{k} {v:.2f}" if v is not None else f"{k} –" for k, v in by_mode.items()
            )
            lines.append(
                "Precision by sub-type (share of the generated images assigned to a sub-type that "
                "lie inside the "
                "feature-space manifold of its real images; a share can be right with images "
                f"that do not look the part): {looks}."
            )
    return "\n\n".join(lines)


def _audit_markdown(results: dict, origin: str) -> str:
    label, m = results["label"], results["n"]
    features = pd.DataFrame(
        [
            {
                "features": name,
                "FID [95% CI]": f"{r['fid']:.2f} [{r['fid_ci95'][0]:.2f}, {r['fid_ci95'][1]:.2f}]",
                "FID / floor": f"{r['fid'] / r['fid_floor']:.1f}×" if r.get("fid_floor") else "–",
                "KID": f"{r['kid']:.4f}",
                "precision": r["precision"],
                "recall": r["recall"],
            }
            for name, r in results["features"].items()
        ]
    )
    mm = results["memorization"]
    morphology = pd.DataFrame(results["morphology_ks"])[
        ["feature", "ks", "real_median", "generated_median"]
    ]
    if mm is None:
        memo = "Memorization: not audited (the model does not record its training images)."
    else:
        memo = (
            f"Memorization: {100 * mm['near_copy_fraction']:.1f}% near-copies in pixel space, "
            f"{100 * mm['feature_near_copy_fraction']:.1f}% in feature space (nearest-training "
            f"distance < {mm['copy_ratio']:.2f}× "
            "the typical training-to-training distance; smallest ratio "
            f"{mm['min_pixel_ratio']:.2f})."
        )
    sym = results.get("symmetries") or {}
    trained = (
        ""
        if "symmetries" not in sym
        else (
            "Trained on the symmetries of the square its training images keep: "
            f"{', '.join(sym['symmetries'])}"
            + (
                f" (each symmetry's test, p < {SYMMETRY_ALPHA} rejects: "
                f"{', '.join(f'{k} p = {v:.3g}' for k, v in sym['symmetry_p_values'].items())})."
                if "symmetry_p_values" in sym
                else "."
            )
        )
    )
    return "\n".join(
        [
            f"# Generative audit: {label}",
            "",
            f"{m} generated images ({origin}) vs {m} held-out real images.",
            "",
            *([trained, ""] if trained else []),
            markdown_table(features),
            "",
            _lenses_markdown(results["lenses"]),
            "",
            memo,
            "",
            markdown_table(
                morphology.rename(
                    columns={
                        "feature": "morphology feature",
                        "ks": "KS",
                        "real_median": "real median",
                        "generated_median": "generated median",
                    }
                ),
                ".3f",
            ),
            "",
        ]
    )


def run_audit(
    generator,
    real_store: str | Path,
    out: str | Path,
    extractor,
    *,
    n: int = 200,
    sampler: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    generated_store: str | Path | None = None,
    bootstrap: int = 30,
    n_jobs: int | None = -1,
) -> dict:
    """FID/KID (+95% bootstrap CI), precision/recall, memorization and morphology of a
    generator's samples against held-out real images of its class; writes audit.{json,md} + PNGs.
    ``n_jobs``: processes for the realism lenses' classifier fits (default: one per core)."""
    from svpgen.plots import histograms, sample_grid

    out = Path(out)
    label = generator.label
    train_images = generator.training_images()
    all_real, real_subtypes = held_out_real(generator, real_store)
    start = time.perf_counter()
    if generated_store:
        gen = np.asarray(
            ParticleStore(generated_store).select(label=label, source="generated").images[:n]
        )
    else:
        sampler, steps = generator.sampling(sampler, steps)
        gen = generator.sample(n, sampler, steps, seed)
    sample_seconds = time.perf_counter() - start
    # FID/KID/PR at equal, reported counts; half the real images when that leaves room for the floor
    m = min(
        len(gen), len(all_real) // 2 if len(all_real) >= 2 * min(len(gen), 50) else len(all_real)
    )
    real, gen = all_real[:m], gen[:m]
    results: dict = {
        "model": str(generator.path),
        "label": label,
        "sampler": sampler,
        "steps": steps,
        "n": m,
        "sample_seconds": sample_seconds,
        "features": {},
        "symmetries": {
            k: generator.metadata[k]
            for k in ("symmetries", "symmetry_p_values")
            if k in generator.metadata
        },
    }
    # each feature space's rows of all held-out real images and of the generated ones, computed once
    encoded = {ext.name: (ext(all_real), ext(gen)) for ext in (extractor, PixelFeatures())}
    results["lenses"] = realism_lenses(
        all_real, real_subtypes, gen, m, embedded=encoded[extractor.name], n_jobs=n_jobs
    )
    gen_features = {}
    for name, (real_rows, gen_features[name]) in encoded.items():
        rf = real_rows[:m]
        results["features"][name] = {
            **generative.fid_kid(rf, gen_features[name], bootstrap, seed),
            **generative.precision_recall(rf, gen_features[name]),
        }
        if len(all_real) >= 2 * m:  # the real-vs-real floor in these features
            results["features"][name]["fid_floor"] = generative.fid(rf, real_rows[m : 2 * m])
    memo = None
    if train_images is not None:
        memo = generative.memorization(
            gen, train_images, gen_features[extractor.name], extractor(train_images)
        )
        results["memorization"] = {
            k: memo[k]
            for k in (
                "near_copy_fraction",
                "feature_near_copy_fraction",
                "copy_ratio",
                "typical_train_nn",
            )
        }
        results["memorization"]["min_pixel_ratio"] = float(memo["pixel_ratio"].min())
    else:
        results["memorization"] = None
    morph, real_m, gen_m = generative.morphology_comparison(real, gen)
    results["morphology_ks"] = morph.to_dict("records")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "audit.json", results)
    sample_grid(
        {f"real {label}": real[:16], f"generated {label}": gen[:16]}, out / "real_vs_generated.png"
    )
    if memo is not None:
        _pairs_gallery(
            gen, train_images, memo["pixel_nearest"], memo["pixel_ratio"], out / "closest_pairs.png"
        )
    histograms(
        {
            c: (real_m[c].dropna().to_numpy(), gen_m[c].dropna().to_numpy())
            for c in morph["feature"]
        },
        out / "morphology.png",
    )
    origin = (
        f"from {generated_store}"
        if generated_store
        else f"{sampler}{'-' + str(steps) if steps else ''}, sampled in {sample_seconds:.1f} s"
    )
    write_text(out / "audit.md", _audit_markdown(results, origin))
    return results


def generation_filter(
    generator, reference_store: str | Path, copy_ratio: float = 1 / 3
) -> Callable[[np.ndarray], np.ndarray]:
    """A keep-mask function for ``generate``: drops near-copies of the generator's training
    images and images whose morphology is outside the reference class's range."""
    ref = (
        ParticleStore(reference_store)
        .select(label=generator.label, source=("real", "simulated"))
        .images
    )
    if len(ref) < 20:
        raise SvpgenError(
            f"{reference_store}: only {len(ref)} real {generator.label} images to define the "
            "morphology range (need ≥ 20)"
        )
    return partial(
        generative.filter_generated,
        train_images=generator.training_images(),
        reference_images=ref,
        copy_ratio=copy_ratio,
    )
