"""Claim: batched inference from the store runs ≥ 2× a plain timm + torchvision
ImageFolder/DataLoader baseline (default settings) and reaches a large fraction of this
CPU's fp32 matmul peak; 500,000 images with ResNet-18 in ≤ 15 minutes on 2 cores.

    python benchmarks/bench_classify.py --n 50000 --baseline-n 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from common import forward_flops, matmul_peak_gflops, report
from PIL import Image

from svpgen.classify.models import (
    batched_outputs,
    build_classifier,
    fold_batchnorm,
    quantize_int8,
    to_input,
)
from svpgen.data.store import ParticleStore, provenance_record
from svpgen.simulate import simulate


def baseline_rate(arch: str, png_root: Path, n: int) -> float:
    """timm model + torchvision ImageFolder of PNGs + DataLoader, default settings."""
    from torchvision import datasets, transforms

    ds = datasets.ImageFolder(
        str(png_root), transform=transforms.Compose([transforms.Grayscale(), transforms.ToTensor()])
    )
    ds.samples = ds.samples[:n]
    loader = torch.utils.data.DataLoader(ds, batch_size=256)
    model = timm.create_model(arch, num_classes=3, in_chans=1).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for x, _ in loader:
            model(x)
    return len(ds.samples) / (time.perf_counter() - start)


def store_rate(arch: str, store: ParticleStore, n: int, int8: bool = False) -> tuple[float, float]:
    model = (
        fold_batchnorm(build_classifier(arch, 3)).to(memory_format=torch.channels_last).eval()
    )  # as svpgen classify
    flops = (
        forward_flops(model, torch.zeros(256, 1, 64, 64).to(memory_format=torch.channels_last))
        / 256
    )
    if int8:
        model = quantize_int8(model, to_input(torch.from_numpy(np.array(store.images[:512]))))
    batched_outputs(model, np.asarray(store.images[:256]))  # warm-up
    start = time.perf_counter()
    for s in range(0, n, 4096):
        batched_outputs(model, store.images[s : min(n, s + 4096)], batch_size=256)
    rate = n / (time.perf_counter() - start)
    return rate, flops


def int8_auprc(model_dir: Path, eval_store: Path, prevalence: dict) -> dict:
    """Macro AUPRC of fp32 vs int8 inference of one trained model on a labelled store."""
    from svpgen.classify.classifier import Classifier
    from svpgen.evaluate.metrics import classification_metrics, prevalence_weights

    store = ParticleStore(eval_store)
    truth = "true_label" if "true_label" in store.table else "label"
    out = {}
    for name in ("fp32", "int8"):
        clf = Classifier.from_pretrained(model_dir, "cpu")
        if name == "int8":
            clf.quantize(store.images)
        y = np.array([clf.classes.index(c) for c in store.table[truth]])
        proba = clf.predict_proba(store.images)
        out[name] = classification_metrics(
            y, proba, clf.classes, prevalence_weights(y, clf.classes, prevalence)
        )["macro_auprc"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument(
        "--baseline-n", type=int, default=10_000, help="images the (slow) baseline is timed on"
    )
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument(
        "--model",
        type=Path,
        help="a trained classifier for the int8 accuracy check (e.g. the demo's Real-4 run)",
    )
    ap.add_argument(
        "--eval", type=Path, help="its labelled evaluation store (e.g. runs/demo/data/eval)"
    )
    args = ap.parse_args()
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak here: {peak:.0f} GFLOP/s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sim = simulate(
            {
                "protein": args.n - 2 * (args.n // 100),
                "silicone_oil": args.n // 100,
                "air_bubble": args.n // 100,
            },
            seed=0,
        )
        store = ParticleStore.write(tmp / "store", sim.particles, provenance_record("bench"))
        png = tmp / "png" / "unknown"
        png.mkdir(parents=True)
        for i in range(args.baseline_n):
            Image.fromarray(store.images[i]).save(png / f"{i:07d}.png", compress_level=1)
        for arch in args.archs.split(","):
            base = baseline_rate(arch, png.parent, args.baseline_n)
            rate, flops = store_rate(arch, store, args.n)
            gflops = rate * flops / 1e9
            rows.append(
                {
                    "model": arch,
                    "path": f"baseline: ImageFolder PNG + DataLoader ({args.baseline_n:,} imgs)",
                    "images_per_s": base,
                }
            )
            rows.append(
                {
                    "model": arch,
                    "path": f"svpgen: store memmap, channels_last, BN folded ({args.n:,} imgs)",
                    "images_per_s": rate,
                    "speedup": rate / base,
                    "GFLOP/s": gflops,
                    "pct_of_matmul_peak": 100 * gflops / peak,
                    "minutes_for_500k": 500_000 / rate / 60,
                }
            )
            rate8, _ = store_rate(arch, store, args.n, int8=True)
            rows.append(
                {
                    "model": arch,
                    "path": "svpgen --int8 (static PTQ, x86)",
                    "images_per_s": rate8,
                    "speedup": rate8 / base,
                    "minutes_for_500k": 500_000 / rate8 / 60,
                }
            )
    extra = {
        "matmul_peak_gflops": peak,
        "note": "GFLOP/s counts direct-convolution FLOPs; oneDNN's convolution algorithms need fewer, so >100% of the MKL matmul probe is possible",
    }
    if args.model and args.eval:
        auprc = int8_auprc(
            args.model, args.eval, {"protein": 1000, "silicone_oil": 1, "air_bubble": 1}
        )
        extra["macro_auprc_at_1000_1_1"] = auprc
        print(
            f"macro AUPRC at 1000:1:1 — fp32 {auprc['fp32']:.4f}, int8 {auprc['int8']:.4f} (Δ {100 * (auprc['int8'] - auprc['fp32']):+.2f} points)"
        )
    report("bench_classify", rows, extra)


if __name__ == "__main__":
    main()
