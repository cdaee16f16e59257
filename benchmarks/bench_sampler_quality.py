"""Claim: fast samplers (DDIM-50, DPM-Solver++-20) give samples of comparable quality to the
paper's ancestral DDPM-1000 at a small fraction of the wall time. For one trained `quick`
model per minority class: FID/KID (particle encoder, bootstrap 95% CI) and precision/recall
of each sampler's samples against held-out real images, with wall time.

    python benchmarks/bench_sampler_quality.py --study runs/demo --n 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import report
from svpgen import Generator
from svpgen.data.store import ParticleStore
from svpgen.evaluate import generative
from svpgen.evaluate.features import EncoderFeatures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", type=Path, default=Path("runs/demo"), help="a finished quick study (models, encoder, eval pool)")
    ap.add_argument("--n", type=int, default=100, help="generated and real images per comparison")
    ap.add_argument("--samplers", default="dpmpp-20,ddim-50,ddpm-1000")
    args = ap.parse_args()
    encoder = EncoderFeatures(args.study / "encoder")
    held_out = ParticleStore(args.study / "data" / "eval")
    rows = []
    for model_dir in sorted((args.study / "diffusion").iterdir()):
        g = Generator.from_pretrained(model_dir)
        real = np.asarray(held_out.select(label=g.label).images[: args.n])
        real_f = encoder(real)
        for spec in args.samplers.split(","):
            name, steps = spec.split("-")
            start = time.perf_counter()
            imgs = g.sample(len(real), sampler=name, steps=int(steps), seed=1)
            sec = time.perf_counter() - start
            q = generative.fid_kid(real_f, encoder(imgs), bootstrap=20)
            pr = generative.precision_recall(real_f, encoder(imgs))
            rows.append({"class": g.label, "sampler": spec, "n": len(real), "seconds": sec, "FID": q["fid"],
                         "FID_lo95": q["fid_ci95"][0], "FID_hi95": q["fid_ci95"][1], "KID": q["kid"],
                         "precision": pr["precision"], "recall": pr["recall"]})
    report("bench_sampler_quality", rows, {"study": str(args.study)})


if __name__ == "__main__":
    main()
