"""Shared by the benchmark scripts: timing, a printed table, a JSON record."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def report(name: str, rows: list[dict], extra: dict | None = None) -> Path:
    """Print rows as an aligned table and write them to
    benchmarks/results/<name>.<machine>.json (one record per benchmark and CPU kind, so
    runs on different machines sit side by side)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return str(v)

    widths = {c: max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols}
    print(" | ".join(c.ljust(widths[c]) for c in cols))
    print("-+-".join("-" * widths[c] for c in cols))
    for r in rows:
        print(" | ".join(fmt(r.get(c, "")).ljust(widths[c]) for c in cols))
    RESULTS.mkdir(exist_ok=True)
    here = machine()
    out = RESULTS / f"{name}.{machine_slug(here)}.json"
    record = {
        "benchmark": name,
        "machine": here,
        "measured": time.strftime("%Y-%m-%d"),
        "command": "python " + " ".join([os.path.relpath(sys.argv[0]), *sys.argv[1:]]),
        "rows": rows,
        **(extra or {}),
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"\nwritten {out}")
    return out


def machine() -> dict:
    """What a result was measured on: CPU model and vector extensions, cores, platform."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("unknown", ""):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    vector = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return {
        "cpu": model,
        "vector": vector,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
    }


def machine_slug(m: dict) -> str:
    """A file-name tag for a CPU kind: vendor, family and widest vector unit
    (``amd-epyc-avx512``, ``intel-xeon-avx2``)."""
    words = [w for w in m["cpu"].lower().replace("(r)", "").replace("(tm)", "").split()]
    family = "-".join(w for w in words[:2] if w.isalnum()) or "cpu"
    vector = "avx512" if "avx512f" in m["vector"] else "avx2" if "avx2" in m["vector"] else "sse"
    return f"{family}-{vector}"


def matmul_peak_gflops(sizes: tuple[int, ...] = (1024, 2048, 3072), repeats: int = 6) -> float:
    """This CPU's best measured fp32 matmul throughput (GFLOP/s), torch's default threads:
    the best of several square sizes after a warm-up (one size alone under-reads)."""
    import torch

    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(2):
            torch.mm(a, b)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def forward_flops(model, example) -> int:
    """FLOPs of one forward pass, counted by torch.utils.flop_counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(*example) if isinstance(example, tuple) else model(example)
    return counter.get_total_flops()
