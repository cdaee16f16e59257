"""Claim: a classifier trained on the simulator alone recognises real particles — the real
droplets and bubbles of the paper's Fig. 5 and the particles of a real FlowCam run whose
class is clear by eye — with ≥ 0.90 recall, and more of them than one trained on the
pre-calibration simulator (the ``fig5`` profile) in the same run.

The real FlowCam run is the collage in ``shared/fixtures/real_flowcam_mab_so`` (a
monoclonal antibody mixed 50/50 with silicone oil, 211 particles, no labels; MIT,
omerch/flowimaging_splitter). Its tiles are numbered in reading order (svpgen's collage
import: top to bottom, then left to right; tile k is the particle id ``<collage>:k``) and
were labelled by eye on the tiles at native resolution, conservatively — only where the
class is clear:

* clear droplets (24): a bright centre in a dark ring, a dark disc in a bright halo, or
  concentric rings (defocus fringes);
* probable droplets (8): large, smooth, round dark discs without a halo (strongly
  defocused) — reported apart, not in the claim;
* clear protein aggregates (21): irregular, lobed or textured flocs, with bright speckle;
* left out: the other ~157 tiles (small soft blobs, faint out-of-focus particles, small
  doublets that could be either, one fibre).

Also: the simulated-vs-real two-sample AUC on the preprocessed tiles (a simulated
protein + silicone-oil run, at the real tiles' background level, against all 211 real
tiles; pooled pixels + radial profile, logistic regression and gradient boosting), and the
tiles' size and intensity statistics.

    python benchmarks/bench_sim_to_real.py --profiles fig5,flowcam
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import report

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
COLLAGE = FIXTURES / "real_flowcam_mab_so" / "mAb7_200xdilu_SO_100xdilu_50_50_r0_000003.tif"
FIG5 = FIXTURES / "paper_fig5" / "tiles.npz"
# tile numbers (1-based, reading order) by class, labelled by eye (see the docstring)
CLEAR_DROPLETS = [3, 6, 7, 13, 48, 71, 78, 81, 95, 97, 99, 106, 108, 112, 144, 146, 148]
CLEAR_DROPLETS += [163, 165, 167, 179, 194, 198, 199]
PROBABLE_DROPLETS = [16, 86, 87, 177, 178, 182, 186, 203]
CLEAR_PROTEIN = [10, 18, 22, 39, 40, 42, 45, 53, 58, 65, 67, 72, 94, 102, 119, 124, 128]
CLEAR_PROTEIN += [141, 142, 171, 174]
CLASSES = ("protein", "silicone_oil", "air_bubble")


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def real_sets(tmp: Path) -> tuple[dict[str, tuple[np.ndarray, str]], np.ndarray]:
    """The labelled real sets (images, true class) and all 211 collage tiles."""
    from svpgen.data.importers import import_source

    store, _ = import_source(COLLAGE, tmp / "collage")
    number = {int(i.rsplit(":", 1)[1]): row for row, i in enumerate(store.table["id"])}
    images = np.asarray(store.images)

    def take(tiles: list[int]) -> np.ndarray:
        return images[[number[t] for t in tiles]]

    fig5 = np.load(FIG5)
    sets = {
        "Fig. 5 real droplets": (fig5["real_silicone_oil"], "silicone_oil"),
        "Fig. 5 real bubbles": (fig5["real_air_bubble"], "air_bubble"),
        "FlowCam clear droplets": (take(CLEAR_DROPLETS), "silicone_oil"),
        "FlowCam clear protein aggregates": (take(CLEAR_PROTEIN), "protein"),
        "FlowCam probable droplets (dark discs)": (take(PROBABLE_DROPLETS), "silicone_oil"),
    }
    return sets, images


def train_on_simulation(profile: str, counts: dict[str, int], seed: int, out: Path, epochs: int):
    """A quick-preset ResNet-18 (``epochs`` epochs) trained on one simulator profile's crops
    only."""
    from dataclasses import replace

    from svpgen.classify.classifier import Classifier
    from svpgen.classify.config import ClassifierConfig
    from svpgen.classify.run import split_train_tune
    from svpgen.classify.train import train_classifier
    from svpgen.simulate import SimConfig, simulate

    sim = simulate(counts, seed=seed, config=SimConfig(profile=profile, label_noise=0.0)).particles
    train, tune = split_train_tune(sim, 0.15, seed)
    cfg = replace(ClassifierConfig.from_preset("quick"), epochs=epochs, seed=seed)
    train_classifier(train, tune, out, cfg, progress=False)
    return Classifier.from_pretrained(out, "cpu")


def figure(sets: dict, tiles: np.ndarray, background: tuple[float, float], path: Path) -> None:
    """Real FlowCam tiles beside simulated ones (the flowcam profile at the run's background):
    droplets, protein aggregates, and a random draw of each."""
    from svpgen.plots import sample_grid
    from svpgen.simulate import SimConfig, simulate

    cfg = SimConfig(label_noise=0.0, workers=1, background=background)
    sim = simulate({"protein": 16, "silicone_oil": 16}, seed=7, config=cfg).particles
    oil = sim.images[(sim.table["label"] == "silicone_oil").to_numpy()]
    protein = sim.images[(sim.table["label"] == "protein").to_numpy()]
    rng = np.random.default_rng(0)
    groups = {
        "real: clear droplets": sets["FlowCam clear droplets"][0][:16],
        "simulated droplets": oil,
        "real: clear aggregates": sets["FlowCam clear protein aggregates"][0][:16],
        "simulated aggregates": protein,
        "real: any 16 tiles": tiles[rng.choice(len(tiles), 16, replace=False)],
    }
    sample_grid(
        groups,
        path,
        per_row=16,
        title="a real FlowCam run (antibody + silicone oil) vs the simulator",
    )


def _bright(m) -> float:
    """The share of crops whose particle is brighter than the background on average."""
    return float(np.nanmean((m.mean_intensity - m.background) > 0))


def recall_row(profile, name, images, truth, classifiers, numbers) -> dict:
    """One real set's recall, averaged over the classifiers (seeds); the interval is
    Wilson's over the set's images (the seeds' mean count of hits out of the images, not
    seeds × images, which would count each tile as independent evidence once per seed)."""
    predicted = np.stack([clf.predict(images) for clf in classifiers])  # seeds × images
    hits = predicted == truth
    n = len(images)
    lo, hi = wilson(hits.sum() / len(classifiers), n)
    missed = hits.shape[0] - hits.sum(axis=0)  # per image, how many seeds missed it
    return {
        "simulator": profile,
        "real set": name,
        "n": n,
        "seeds": len(classifiers),
        "recall": float(hits.mean()),
        "recall_lo95": lo,
        "recall_hi95": hi,
        "called": ", ".join(f"{c} {np.sum(predicted == c)}" for c in CLASSES),
        "missed tiles (seeds)": ", ".join(
            f"{t} ({m}/{len(classifiers)})" for t, m in zip(numbers[name], missed) if m
        )
        if name in numbers
        else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default="fig5,flowcam")
    ap.add_argument("--protein", type=int, default=3000)
    ap.add_argument("--minority", type=int, default=1000, help="per minority class")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="classifiers trained per profile")
    ap.add_argument("--epochs", type=int, default=5, help="the quick preset's 5 by default")
    ap.add_argument("--two-sample-seeds", type=int, default=5)
    ap.add_argument("--figure", type=Path, help="write real vs simulated FlowCam tiles here")
    args = ap.parse_args()
    from svpgen.data.morphology import morphology_table
    from svpgen.simulate import SimConfig, simulate
    from svpgen.stats import two_sample_auc

    counts = {"protein": args.protein, "silicone_oil": args.minority, "air_bubble": args.minority}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sets, tiles = real_sets(tmp)
        numbers = {  # the Fig. 5 tiles by their index in tiles.npz (0–69)
            "Fig. 5 real droplets": list(range(len(sets["Fig. 5 real droplets"][0]))),
            "Fig. 5 real bubbles": list(range(len(sets["Fig. 5 real bubbles"][0]))),
            "FlowCam clear droplets": CLEAR_DROPLETS,
            "FlowCam clear protein aggregates": CLEAR_PROTEIN,
            "FlowCam probable droplets (dark discs)": PROBABLE_DROPLETS,
        }
        real_m = morphology_table(tiles)
        run_background = (float(real_m.background.median()), float(real_m.background.std()))
        if args.figure:
            figure(sets, tiles, run_background, args.figure)
        for profile in [p for p in args.profiles.split(",") if p]:
            classifiers = [
                train_on_simulation(
                    profile, counts, args.seed + k, tmp / f"{profile}{k}", args.epochs
                )
                for k in range(args.seeds)
            ]
            for name, (images, truth) in sets.items():
                rows.append(recall_row(profile, name, images, truth, classifiers, numbers))
            # an unlabelled comparison: a simulated protein + oil run against every real tile
            aucs = []
            for s in range(args.two_sample_seeds):
                half = len(tiles) // 2
                # a simulated run of this instrument: its background level (the tiles' border)
                cfg = SimConfig(
                    profile=profile, label_noise=0.0, workers=1, background=run_background
                )
                sim = simulate(
                    {"protein": half, "silicone_oil": len(tiles) - half}, seed=500 + s, config=cfg
                )
                aucs.append(two_sample_auc(tiles, sim.particles.images, s, n_jobs=-1))
                if s == 0:
                    sim_m = morphology_table(sim.particles.images)
            rows.append(
                {
                    "simulator": profile,
                    "real set": "all 211 FlowCam tiles vs simulated protein + oil (two-sample AUC)",
                    "n": len(tiles),
                    "auc_logreg": float(np.mean([a["logreg"] for a in aucs])),
                    "auc_gbm": float(np.mean([a["gbm"] for a in aucs])),
                    "esd_px median (real / sim)": f"{real_m.esd_px.median():.1f} / "
                    f"{sim_m.esd_px.median():.1f}",
                    "background (real / sim)": f"{real_m.background.median():.0f} / "
                    f"{sim_m.background.median():.0f}",
                    "bright share (real / sim)": f"{_bright(real_m):.2f} / {_bright(sim_m):.2f}",
                }
            )
    if rows:
        report(
            "bench_sim_to_real", rows, {"counts": counts, "seed": args.seed, "epochs": args.epochs}
        )


if __name__ == "__main__":
    main()
