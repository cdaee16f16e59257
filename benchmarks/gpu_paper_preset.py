"""GPU check (run when a GPU is lent): how long does the `paper` preset take on it?

Times training steps of the paper's U-Net (35.7 M parameters, ε-objective, L1, batch 32 as
in the paper, and 64/128) in fp32 vs bf16 autocast, with and without channels_last and
torch.compile, then projects 1000 epochs × 1000 images per class (the paper: ~20 h on an
A6000; goal ≤ 1 h). Then times sampling on a paper-size model: the paper's DDPM-1000 vs the
20-step DPM-Solver++ (network evaluations and seconds per 1,000 images). Data live on the
GPU, no per-step host sync; fused AdamW; TF32 and cudnn.benchmark on.

    python benchmarks/gpu_paper_preset.py --steps 30
"""

from __future__ import annotations

import argparse
import time

import torch
from common import report

from svpgen.diffusion.config import DiffusionConfig
from svpgen.diffusion.sample import sample_images
from svpgen.diffusion.schedule import training_batch, training_scheduler
from svpgen.diffusion.unet import UNet


def time_training(
    cfg: DiffusionConfig, batch: int, bf16: bool, channels_last: bool, compile_: bool, steps: int
) -> float:
    """Images per second over ``steps`` training steps (after warm-up)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = UNet(cfg.unet).cuda().to(memory_format=fmt)
    net = torch.compile(model, mode="max-autotune-no-cudagraphs") if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=True)
    ddpm = training_scheduler(cfg.schedule)
    images = (torch.rand(1000, 1, 64, 64) * 2 - 1).cuda()
    g = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(0, len(images), (batch,), generator=g).cuda()
        x_in, t, target, _ = training_batch(cfg.schedule, images[idx].cpu(), g, ddpm)
        x_in, t, target = (
            x_in.cuda(non_blocking=True).contiguous(memory_format=fmt),
            t.cuda(),
            target.cuda(),
        )
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = (net(x_in, t) - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5 if compile_ else 3):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--sample-n", type=int, default=256)
    args = ap.parse_args()
    assert torch.cuda.is_available(), "this benchmark needs a GPU"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    cfg = DiffusionConfig.from_preset("paper")
    images_per_class = cfg.epochs * (cfg.max_images or 1000)
    rows = []
    for batch, bf16, cl, comp in (
        (32, False, False, False),
        (32, True, False, False),
        (32, True, True, False),
        (32, True, True, True),
        (64, True, True, False),
        (128, True, True, False),
        (128, True, True, True),
    ):
        try:
            rate = time_training(cfg, batch, bf16, cl, comp, args.steps)
        except Exception as err:  # e.g. a compile failure: record it and go on
            rows.append(
                {
                    "what": f"train batch {batch} bf16={bf16} channels_last={cl} compile={comp}",
                    "error": str(err)[:80],
                }
            )
            continue
        rows.append(
            {
                "what": f"train batch {batch} bf16={bf16} channels_last={cl} compile={comp}",
                "img/s": rate,
                "hours per class (1000 epochs × 1000 images)": images_per_class / rate / 3600,
            }
        )
    model = UNet(cfg.unet).cuda().eval()
    for sampler, steps in (("ddpm", None), ("dpmpp", 20)):
        torch.cuda.synchronize()
        start = time.perf_counter()
        sample_images(
            model, cfg, args.sample_n, sampler, steps, batch_size=args.sample_n, device="cuda"
        )
        torch.cuda.synchronize()
        sec = time.perf_counter() - start
        nfe = cfg.schedule.timesteps if steps is None else steps
        rows.append(
            {
                "what": f"sample {args.sample_n} images {sampler}-{nfe}",
                "seconds": sec,
                "network evaluations": nfe,
                "seconds per 1,000 images": sec / args.sample_n * 1000,
            }
        )
    report("gpu_paper_preset", rows, {"device": torch.cuda.get_device_name()})


if __name__ == "__main__":
    main()
