"""Claims: fast samplers cut generation time by orders of magnitude (ddpm-1000 vs
ddim-50 vs dpmpp-20 on the same trained model), and training throughput of the paper and
quick U-Nets in fp32 (default) vs the best CPU setting found (channels_last), with
achieved GFLOP/s as a fraction of this CPU's measured matmul peak.

    python benchmarks/bench_diffusion.py --model runs/demo/diffusion/silicone_oil --n 256
"""

from __future__ import annotations

import argparse
import time

import torch
from common import forward_flops, matmul_peak_gflops, report

from svpgen.diffusion.config import PRESETS as DIFFUSION_PRESETS
from svpgen.diffusion.generator import Generator
from svpgen.diffusion.unet import UNet


def train_rate(unet_cfg, batch: int, channels_last: bool, steps: int = 3) -> tuple[float, float]:
    model = UNet(unet_cfg)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    x = torch.randn(batch, 1, 64, 64).to(memory_format=fmt)
    t = torch.randint(0, 1000, (batch,))
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        loss = (model(x, t) - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    rate = steps * batch / (time.perf_counter() - start)
    fwd = forward_flops(model, (x[:1], t[:1]))
    return rate, 3 * fwd  # forward + backward ≈ 3× forward


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--model",
        required=True,
        help="a trained diffusion model directory (e.g. from the quick study)",
    )
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--samplers", default="dpmpp-20,ddim-50,ddpm-1000")
    args = ap.parse_args()
    peak = matmul_peak_gflops()
    rows = []
    generator = Generator.from_pretrained(args.model, "cpu")
    for spec in args.samplers.split(","):
        name, steps = spec.split("-")
        start = time.perf_counter()
        generator.sample(args.n, name, int(steps), seed=0, batch_size=128, progress=True)
        sec = time.perf_counter() - start
        rows.append(
            {
                "what": f"generate {args.n} images, {spec} (quick model)",
                "seconds": sec,
                "rate": args.n * int(steps) / sec,
                "unit": "img-steps/s",
            }
        )
    for label, preset, batch in (("paper U-Net", "paper", 8), ("quick U-Net", "quick", 32)):
        cfg = DIFFUSION_PRESETS[preset].unet
        for cl in (False, True):
            rate, flops = train_rate(cfg, batch, cl)
            gflops = rate * flops / 1e9
            rows.append(
                {
                    "what": f"train {label} (batch {batch}) fp32"
                    + (" + channels_last" if cl else " (default)"),
                    "rate": rate,
                    "unit": "img/s",
                    "GFLOP/s": gflops,
                    "pct_of_matmul_peak": 100 * gflops / peak,
                }
            )
    # bf16 autocast on this CPU (no native bf16): one step is enough to see the slowdown
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rate, _ = train_rate(DIFFUSION_PRESETS["quick"].unet, 32, True, steps=1)
    rows.append(
        {
            "what": "train quick U-Net (batch 32) bf16 autocast + channels_last",
            "rate": rate,
            "unit": "img/s",
        }
    )
    report("bench_diffusion", rows, {"matmul_peak_gflops": peak})


if __name__ == "__main__":
    main()
