"""Claim: svpgen's default fp32 inference runs ≥ 1.5× a plain timm + torchvision
ImageFolder/DataLoader baseline (default settings) on this CPU, near its fp32 matmul peak;
int8 (torch or onnxruntime) several times faster. Every path in one run: eager at batch 256
and 128, oneDNN Graph, the default (which, from 16,384 images, times the paths once and
keeps the fastest), onnxruntime fp32 and int8 from ``svpgen export-onnx``, torch int8, and
bf16 autocast (``--bf16``). The paths (baseline included) are timed in interleaved
rounds and the median kept, so a slow spell of a shared VM lands on all of them alike; the
spread column is (max − min) / median over the rounds. With ``--model`` and ``--eval``, the
macro AUPRC at 1000:1:1 of a trained model in fp32, int8 and bf16.

    python benchmarks/bench_classify.py --n 8000 --baseline-n 4000 --archs resnet18
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import timm
import torch
from common import forward_flops, matmul_peak_gflops, report
from PIL import Image
from tqdm import tqdm

from svpgen.classify.models import (
    batched_outputs,
    build_classifier,
    fold_batchnorm,
    quantize_int8,
    to_input,
)
from svpgen.data.store import ParticleStore, provenance_record
from svpgen.simulate import simulate


def baseline_path(arch: str, png_root: Path, n: int) -> Callable[[], None]:
    """timm model + torchvision ImageFolder of PNGs + DataLoader, default settings: a
    function that classifies the first ``n`` PNGs once."""
    from torchvision import datasets, transforms

    ds = datasets.ImageFolder(
        str(png_root), transform=transforms.Compose([transforms.Grayscale(), transforms.ToTensor()])
    )
    ds.samples = ds.samples[:n]
    loader = torch.utils.data.DataLoader(ds, batch_size=256)
    model = timm.create_model(arch, num_classes=3, in_chans=1).eval()

    def run() -> None:
        with torch.no_grad():
            for x, _ in loader:
                model(x)

    return run


def _untrained(arch: str, tmp: Path) -> Path:
    """An untrained classifier saved as svpgen saves one (the speed does not depend on the
    weights)."""
    from svpgen.classify.classifier import Classifier
    from svpgen.classify.config import ClassifierConfig

    cfg = ClassifierConfig(arch=arch)
    path = tmp / f"model_{arch}"
    Classifier(
        build_classifier(arch, 3), ["protein", "silicone_oil", "air_bubble"], cfg
    ).save_pretrained(path)
    return path


def svpgen_paths(arch: str, store: ParticleStore, n: int, tmp: Path) -> dict[str, Callable]:
    """Every svpgen inference path as a function that classifies the first ``n`` store
    images once (each warmed up here); the default path's function returns the fp32 path
    it picked."""
    from svpgen.classify.classifier import Classifier
    from svpgen.classify.models import INFERENCE_BATCH, inference_path, onednn_graph
    from svpgen.classify.onnx import OnnxClassifier, export_onnx

    images = store.images[:n]
    model = fold_batchnorm(build_classifier(arch, 3)).to(memory_format=torch.channels_last).eval()
    example = to_input(torch.from_numpy(np.array(images[:INFERENCE_BATCH]))).contiguous(
        memory_format=torch.channels_last
    )
    graph = onednn_graph(model, example)
    int8 = quantize_int8(model, to_input(torch.from_numpy(np.array(images[:512]))))

    bf16 = inference_path(model, "bf16", example)
    saved = _untrained(arch, tmp)

    def default() -> str:
        clf = Classifier.from_pretrained(saved, "cpu")
        clf.prepare_inference(n)  # the probe counts: it is what `svpgen classify` pays
        clf.predict_proba(images)
        return clf._fast[0] if clf._fast else "eager"

    paths: dict[str, Callable] = {
        "eager b256": lambda: batched_outputs(model, images, batch_size=256),
        f"eager b{INFERENCE_BATCH}": lambda: batched_outputs(
            model, images, batch_size=INFERENCE_BATCH
        ),
        "onednn-graph": lambda: batched_outputs(graph, images, batch_size=INFERENCE_BATCH),
        "default": default,
        "bf16": lambda: batched_outputs(bf16, images, batch_size=INFERENCE_BATCH),
        "int8": lambda: batched_outputs(int8, images),
    }
    for name, quantized in (("onnxruntime fp32", False), ("onnxruntime int8", True)):
        onnx_path = export_onnx(
            saved,
            tmp / f"{arch}_{quantized}.onnx",
            int8=quantized,
            calibration=np.asarray(images[:512]),
        )
        session = OnnxClassifier(onnx_path)
        paths[name] = lambda session=session: session.predict_proba(images)
    warm = np.asarray(images[:INFERENCE_BATCH])
    batched_outputs(model, warm), batched_outputs(graph, warm), batched_outputs(int8, warm)
    return paths


def interleaved_rates(paths: dict[str, tuple[Callable, int]], rounds: int) -> dict[str, dict]:
    """Images per second of each path — (function, images it classifies) — timed in
    ``rounds`` interleaved rounds (every path once per round), so that a slow spell of a
    shared machine lands on all paths alike: the median rate, the spread (max − min over
    the median) and the last value a path's function returned."""
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    returned: dict[str, object] = {}
    for _ in tqdm(range(rounds), desc="rounds", unit="round"):
        for name, (fn, _n) in paths.items():
            start = time.perf_counter()
            returned[name] = fn()
            seconds[name].append(time.perf_counter() - start)
    out = {}
    for name, (_fn, n) in paths.items():
        rates = n / np.array(seconds[name])
        out[name] = {
            "rate": float(np.median(rates)),
            "spread": float((rates.max() - rates.min()) / np.median(rates)),
            "returned": returned[name],
        }
    return out


def reduced_precision_auprc(model_dir: Path, eval_store: Path, prevalence: dict) -> dict:
    """Macro AUPRC of fp32, int8 and bf16 inference of one trained model on a labelled
    store."""
    from svpgen.classify.classifier import Classifier
    from svpgen.evaluate.metrics import classification_metrics, prevalence_weights

    store = ParticleStore(eval_store)
    truth = "true_label" if "true_label" in store.table else "label"
    out = {}
    for name in ("fp32", "int8", "bf16"):
        clf = Classifier.from_pretrained(model_dir, "cpu")
        if name == "int8":
            clf.quantize(store.images)
        if name == "bf16":
            clf.inference = "bf16"
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
        help="a trained classifier for the int8 / bf16 accuracy check (e.g. the demo's Real-4 run)",
    )
    ap.add_argument(
        "--eval", type=Path, help="its labelled evaluation store (e.g. runs/demo/data/eval)"
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved timing rounds (the median is kept)"
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
            paths = {
                "baseline": (baseline_path(arch, png.parent, args.baseline_n), args.baseline_n)
            }
            paths |= {k: (fn, args.n) for k, fn in svpgen_paths(arch, store, args.n, tmp).items()}
            timed = interleaved_rates(paths, args.rounds)
            base = timed["baseline"]["rate"]
            model = fold_batchnorm(build_classifier(arch, 3)).to(memory_format=torch.channels_last)
            flops = (
                forward_flops(
                    model.eval(), torch.zeros(256, 1, 64, 64).to(memory_format=torch.channels_last)
                )
                / 256
            )
            rows.append(
                {
                    "model": arch,
                    "path": "baseline: timm + ImageFolder PNG + DataLoader "
                    f"({args.baseline_n:,} imgs)",
                    "images_per_s": base,
                    "spread": timed["baseline"]["spread"],
                }
            )
            described = {
                "eager b256": "svpgen fp32 eager: store memmap, channels_last, BN folded, "
                "batch 256",
                "eager b128": "svpgen fp32 eager, batch 128",
                "onednn-graph": "svpgen fp32 oneDNN Graph (TorchScript, fused), batch 128",
                "default": "svpgen fp32 default (paths timed once from 16,384 images; "
                f"here {timed['default']['returned']})",
                "onnxruntime fp32": "onnxruntime fp32 (svpgen export-onnx)",
                "int8": "svpgen --int8 (torch static PTQ, x86)",
                "onnxruntime int8": "onnxruntime int8 (export-onnx --int8, QDQ)",
                "bf16": "svpgen --bf16 (bf16 autocast), batch 128",
            }
            for key, text in described.items():
                rate = timed[key]["rate"]
                row = {
                    "model": arch,
                    "path": f"{text} ({args.n:,} imgs)",
                    "images_per_s": rate,
                    "spread": timed[key]["spread"],
                    "speedup": rate / base,
                    "minutes_for_500k": 500_000 / rate / 60,
                }
                if key.startswith(("eager", "onednn", "default")):
                    row["GFLOP/s"] = rate * flops / 1e9
                    row["pct_of_matmul_peak"] = 100 * row["GFLOP/s"] / peak
                rows.append(row)
    extra = {
        "matmul_peak_gflops": peak,
        "note": "GFLOP/s counts direct-convolution FLOPs; oneDNN's convolution algorithms "
        "need fewer, so >100% of the MKL matmul probe is possible",
    }
    if args.model and args.eval:
        auprc = reduced_precision_auprc(
            args.model, args.eval, {"protein": 1000, "silicone_oil": 1, "air_bubble": 1}
        )
        extra["macro_auprc_at_1000_1_1"] = auprc
        print(
            f"macro AUPRC at 1000:1:1 — fp32 {auprc['fp32']:.4f}, int8 {auprc['int8']:.4f} (Δ "
            f"{100 * (auprc['int8'] - auprc['fp32']):+.2f} points), bf16 "
            f"{auprc['bf16']:.4f} (Δ {100 * (auprc['bf16'] - auprc['fp32']):+.2f} points)"
        )
    report("bench_classify", rows, extra)


if __name__ == "__main__":
    main()
