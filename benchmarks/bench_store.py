"""Claim: the ParticleStore reads training batches ≥ 20× faster than decoding the same
images from PNG files with Pillow; and how fast `svpgen import` reads a folder tree.

    python benchmarks/bench_store.py --n 100000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import Timer, report
from PIL import Image

from svpgen.data.importers import import_source
from svpgen.data.store import ParticleStore
from svpgen.simulate import simulate
from svpgen.simulate.writers import write_folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sim = simulate(
            {"protein": n // 2, "silicone_oil": n // 4, "air_bubble": n - n // 2 - n // 4},
            seed=0,
            keep_native=True,
        )
        write_folder(sim, tmp / "tree")
        with Timer() as t_import:
            store, _ = import_source(tmp / "tree", tmp / "store")
        with Timer() as t_open:
            store = ParticleStore(tmp / "store")
        order = np.random.default_rng(0).permutation(n)

        with Timer() as t_store:
            for start in range(0, n, args.batch):
                idx = np.sort(order[start : start + args.batch])
                batch = np.asarray(store.images[idx])
        assert batch.shape[1:] == (64, 64)

        # baseline: the same 64×64 images as PNG files, decoded with Pillow per batch
        png_dir = tmp / "png"
        png_dir.mkdir()
        for i in range(n):
            Image.fromarray(store.images[i]).save(png_dir / f"{i}.png", compress_level=1)
        with Timer() as t_png:
            for start in range(0, n, args.batch):
                batch = np.stack(
                    [
                        np.asarray(Image.open(png_dir / f"{i}.png"))
                        for i in order[start : start + args.batch]
                    ]
                )

    rows = [
        {
            "operation": f"svpgen import (folder tree of {n:,} native-size PNGs)",
            "seconds": t_import.seconds,
            "images_per_s": n / t_import.seconds,
        },
        {
            "operation": "open store (memmap + parquet)",
            "seconds": t_open.seconds,
            "images_per_s": n / t_open.seconds,
        },
        {
            "operation": f"read shuffled batches of {args.batch} from the store",
            "seconds": t_store.seconds,
            "images_per_s": n / t_store.seconds,
        },
        {
            "operation": "baseline: decode shuffled batches of 64×64 PNGs with Pillow",
            "seconds": t_png.seconds,
            "images_per_s": n / t_png.seconds,
        },
    ]
    speedup = t_png.seconds / t_store.seconds
    print(f"store read speed-up over PNG decoding: {speedup:.0f}× (claim: ≥ 20×)")
    report(
        "bench_store", rows, {"n": n, "speedup_read_vs_png": speedup, "claim_met": speedup >= 20}
    )


if __name__ == "__main__":
    main()
