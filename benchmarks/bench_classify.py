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
from PIL import Image

from common import forward_flops, matmul_peak_gflops, report
from svpgen.classify.models import build_classifier
from svpgen.classify.train import predict_logits
from svpgen.data.store import ParticleStore, provenance_record
from svpgen.simulate import simulate


def baseline_rate(arch: str, png_root: Path, n: int) -> float:
    """timm model + torchvision ImageFolder of PNGs + DataLoader, default settings."""
    from torchvision import datasets, transforms

    ds = datasets.ImageFolder(str(png_root), transform=transforms.Compose([transforms.Grayscale(), transforms.ToTensor()]))
    ds.samples = ds.samples[:n]
    loader = torch.utils.data.DataLoader(ds, batch_size=256)
    model = timm.create_model(arch, num_classes=3, in_chans=1).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for x, _ in loader:
            model(x)
    return len(ds.samples) / (time.perf_counter() - start)


def store_rate(arch: str, store: ParticleStore, n: int) -> tuple[float, float]:
    model = build_classifier(arch, 3).to(memory_format=torch.channels_last).eval()
    predict_logits(model, np.asarray(store.images[:256]))  # warm-up
    start = time.perf_counter()
    for s in range(0, n, 4096):
        predict_logits(model, store.images[s : min(n, s + 4096)], batch_size=256)
    rate = n / (time.perf_counter() - start)
    flops = forward_flops(model, torch.zeros(256, 1, 64, 64).to(memory_format=torch.channels_last)) / 256
    return rate, flops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--baseline-n", type=int, default=10_000, help="images the (slow) baseline is timed on")
    ap.add_argument("--archs", default="resnet18,resnet50")
    args = ap.parse_args()
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak here: {peak:.0f} GFLOP/s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sim = simulate({"protein": args.n - 2 * (args.n // 100), "silicone_oil": args.n // 100, "air_bubble": args.n // 100}, seed=0)
        store = ParticleStore.write(tmp / "store", sim.particles, provenance_record("bench"))
        png = tmp / "png" / "unknown"
        png.mkdir(parents=True)
        for i in range(args.baseline_n):
            Image.fromarray(store.images[i]).save(png / f"{i:07d}.png", compress_level=1)
        for arch in args.archs.split(","):
            base = baseline_rate(arch, png.parent, args.baseline_n)
            rate, flops = store_rate(arch, store, args.n)
            gflops = rate * flops / 1e9
            rows.append({"model": arch, "path": f"baseline: ImageFolder PNG + DataLoader ({args.baseline_n:,} imgs)", "images_per_s": base})
            rows.append({
                "model": arch, "path": f"svpgen: store memmap, channels_last ({args.n:,} imgs)", "images_per_s": rate,
                "speedup": rate / base, "GFLOP/s": gflops, "pct_of_matmul_peak": 100 * gflops / peak,
                "minutes_for_500k": 500_000 / rate / 60,
            })
    report("bench_classify", rows, {"matmul_peak_gflops": peak})


if __name__ == "__main__":
    main()
