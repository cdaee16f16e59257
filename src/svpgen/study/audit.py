"""Where the two phases meet for quality control: the generative audit of a trained
diffusion model (``svpgen audit``) and the FID/KID hook used during diffusion training."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from svpgen.atomic import write_json
from svpgen.config import DiffusionConfig
from svpgen.data.store import ParticleStore
from svpgen.errors import SvpgenError
from svpgen.evaluate import generative
from svpgen.evaluate.features import PixelFeatures


def fid_eval_hook(store: str | Path, label: str, encoder: str | Path, cfg: DiffusionConfig):
    """A training hook: FID/KID of ``cfg.fid_samples`` EMA samples vs the class's real
    training images, in particle-encoder features (the paper's Fig. 4b protocol)."""
    from svpgen.diffusion.sample import sample_images
    from svpgen.diffusion.train import load_training_images
    from svpgen.evaluate.features import EncoderFeatures

    extractor = EncoderFeatures(encoder)
    real = extractor(load_training_images(Path(store), label, cfg.max_images, cfg.seed))

    def hook(model, epoch: int) -> dict:
        imgs, _ = sample_images(model, cfg.schedule, cfg.fid_samples, cfg.eval_sampler, cfg.eval_steps, seed=epoch)
        gen = extractor(imgs)
        kid_mean, _ = generative.kid(real, gen)
        return {"fid": generative.fid(real, gen), "kid": kid_mean}

    return hook


def _pairs_gallery(gen: np.ndarray, train: np.ndarray, nearest: np.ndarray, ratio: np.ndarray, path: Path, k: int = 8) -> None:
    from svpgen.plots import sample_grid

    order = np.argsort(ratio)[:k]
    sample_grid({f"generated (closest {k})": gen[order], "nearest training image": train[nearest[order]]}, path,
                title="closest generated–training pairs (ratio " + ", ".join(f"{r:.2f}" for r in ratio[order]) + ")")


def run_audit(model_dir: str | Path, real_store: str | Path, out: str | Path, extractor, n: int = 200, sampler: str = "dpmpp",
              steps: int | None = None, seed: int = 0, generated_store: str | Path | None = None, bootstrap: int = 30) -> dict:
    """FID/KID (+95% bootstrap CI), precision/recall, memorization and morphology of a
    model's samples against held-out real images of its class; writes audit.{json,md} + PNGs."""
    from svpgen import Generator
    from svpgen.diffusion.train import load_training_images
    from svpgen.plots import histograms, sample_grid

    out = Path(out)
    gen_model = Generator.load(model_dir)
    label, cfg = gen_model.label, DiffusionConfig.from_dict(gen_model.config["diffusion"])
    train_images = load_training_images(Path(gen_model.config["store"]), label, cfg.max_images, cfg.seed)
    store = ParticleStore(real_store)
    idx = store.indices(label=label, source=("real", "simulated"))
    table = store.table.iloc[idx]
    train_hashes = set(ParticleStore(gen_model.config["store"]).table["sha256"]) if Path(gen_model.config["store"]).exists() else set()
    held = idx[~table["sha256"].isin(train_hashes).to_numpy()]
    if len(held) < 10:
        raise SvpgenError(f"{real_store}: only {len(held)} held-out real {label} images (not used to train the model); need ≥ 10")
    real = np.asarray(store.images[held])
    start = time.perf_counter()
    if generated_store:
        gen = np.asarray(ParticleStore(generated_store).select(label=label, source="generated").images[:n])
    else:
        gen = gen_model.sample(n, sampler, steps, seed)
    sample_seconds = time.perf_counter() - start
    m = min(len(real), len(gen))
    real, gen = real[:m], gen[:m]  # FID/KID/PR at equal, reported counts
    results: dict = {"model": str(model_dir), "label": label, "sampler": sampler, "steps": steps, "n": m,
                     "sample_seconds": sample_seconds, "features": {}}
    gen_features = {}
    for ext in (extractor, PixelFeatures()):
        rf, gen_features[ext.name] = ext(real), ext(gen)
        results["features"][ext.name] = {**generative.fid_kid(rf, gen_features[ext.name], bootstrap, seed),
                                         **generative.precision_recall(rf, gen_features[ext.name])}
    memo = generative.memorization(gen, train_images, gen_features[extractor.name], extractor(train_images))
    results["memorization"] = {k: memo[k] for k in ("near_copy_fraction", "feature_near_copy_fraction", "copy_ratio", "typical_train_nn")}
    results["memorization"]["min_pixel_ratio"] = float(memo["pixel_ratio"].min())
    morph, real_m, gen_m = generative.morphology_comparison(real, gen)
    results["morphology_ks"] = morph.to_dict("records")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "audit.json", results)
    sample_grid({f"real {label}": real[:16], f"generated {label}": gen[:16]}, out / "real_vs_generated.png")
    _pairs_gallery(gen, train_images, memo["pixel_nearest"], memo["pixel_ratio"], out / "closest_pairs.png")
    histograms({c: (real_m[c].dropna().to_numpy(), gen_m[c].dropna().to_numpy()) for c in morph["feature"]}, out / "morphology.png")
    origin = f"from {generated_store}" if generated_store else f"{sampler}{'-' + str(steps) if steps else ''}, sampled in {sample_seconds:.1f} s"
    lines = [f"# Generative audit: {label}", "", f"{m} generated images ({origin}) vs {m} held-out real images.", "",
             "| features | FID [95% CI] | KID | precision | recall |", "|---|---:|---:|---:|---:|"]
    for name, r in results["features"].items():
        lines.append(f"| {name} | {r['fid']:.2f} [{r['fid_ci95'][0]:.2f}, {r['fid_ci95'][1]:.2f}] | {r['kid']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} |")
    mm = results["memorization"]
    lines += ["", f"Memorization: {100 * mm['near_copy_fraction']:.1f}% near-copies in pixel space, "
              f"{100 * mm['feature_near_copy_fraction']:.1f}% in feature space (nearest-training distance < {mm['copy_ratio']:.2f}× "
              f"the typical training-to-training distance; smallest ratio {mm['min_pixel_ratio']:.2f}).", "",
              "| morphology feature | KS | real median | generated median |", "|---|---:|---:|---:|"]
    lines += [f"| {r['feature']} | {r['ks']:.3f} | {r['real_median']:.2f} | {r['generated_median']:.2f} |" for r in results["morphology_ks"]]
    (out / "audit.md").write_text("\n".join(lines) + "\n")
    return results


def generation_filter(model_dir: str | Path, reference_store: str | Path, copy_ratio: float = 1 / 3):
    """A keep-mask function for ``generate``: drops near-copies of the model's training
    images and images whose morphology is outside the reference class's range."""
    from functools import partial

    from svpgen import Generator
    from svpgen.diffusion.train import load_training_images

    g = Generator.load(model_dir)
    cfg = DiffusionConfig.from_dict(g.config["diffusion"])
    train = load_training_images(Path(g.config["store"]), g.label, cfg.max_images, cfg.seed)
    ref = ParticleStore(reference_store).select(label=g.label, source=("real", "simulated")).images
    if len(ref) < 20:
        raise SvpgenError(f"{reference_store}: only {len(ref)} real {g.label} images to define the morphology range (need ≥ 20)")
    return partial(generative.filter_generated, train_images=train, reference_images=ref, copy_ratio=copy_ratio)
