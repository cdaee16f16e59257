"""timm ResNet-18 / ResNet-50 for 1-channel 64×64 particle crops.

Stem: the paper kept the standard ImageNet stem (7×7 stride-2 conv + max-pool), which
reduces a 64×64 crop to 16×16 before the first residual stage; that is the default here.
``stem="small"`` swaps in a 3×3 stride-1 conv and drops the max-pool, keeping 64×64 detail
at ~16× the compute. Pretrained weights come only from a local file (nothing is
downloaded); timm sums the RGB stem filters into the single gray channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn

from svpgen.classify.config import ARCHS, ClassifierConfig
from svpgen.errors import SvpgenError

DEFAULT_INPUT = ClassifierConfig()  # the input scaling svpgen's own classifiers use
# CPU inference: the batch that ran ResNet-18 at 64×64 fastest on 2 cores (eager and oneDNN
# Graph alike; bench_classify), the fp32 paths the default picks between, and every path
INFERENCE_BATCH = 128
FP32_PATHS = ("eager", "eager-nchw", "onednn-graph")
INFERENCE_PATHS = (*FP32_PATHS, "bf16")


def build_classifier(
    arch: str,
    num_classes: int,
    stem: str = "standard",
    pretrained: str | Path | None = None,
    in_chans: int = 1,
) -> nn.Module:
    """A timm ResNet with ``in_chans`` input channels (1: gray) and ``num_classes`` outputs."""
    if arch not in ARCHS:
        raise SvpgenError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")
    kwargs = dict(num_classes=num_classes, in_chans=in_chans)
    if pretrained:
        path = Path(pretrained)
        if not path.is_file():
            raise SvpgenError(f"--pretrained {path}: no such weights file")
        model = timm.create_model(
            arch, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs
        )
    else:
        model = timm.create_model(arch, pretrained=False, **kwargs)
    if stem == "small":
        model.conv1 = nn.Conv2d(
            in_chans, model.conv1.out_channels, 3, stride=1, padding=1, bias=False
        )
        model.maxpool = nn.Identity()
    elif stem != "standard":
        raise SvpgenError(f"unknown stem {stem!r} (use standard or small)")
    return model


def to_input(images_uint8: torch.Tensor, spec: ClassifierConfig = DEFAULT_INPUT) -> torch.Tensor:
    """uint8 N×S×S → float N×C×S×S: scaled to [0, 1], repeated to ``spec.in_chans``
    channels, normalised by ``spec.input_mean`` / ``spec.input_std``."""
    x = images_uint8.unsqueeze(1).float().div_(255.0)
    if spec.in_chans > 1:
        x = x.repeat(1, spec.in_chans, 1, 1)
    mean = torch.tensor(spec.input_mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(spec.input_std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(mean).div_(std)


@torch.inference_mode()
def batched_outputs(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int = 256,
    device: str = "cpu",
    features: bool = False,
    spec: ClassifierConfig = DEFAULT_INPUT,
) -> np.ndarray:
    """Logits (or, with ``features``, penultimate features) for uint8 N×S×S images,
    batched and channels_last, with ``spec``'s input scaling; the network is put in eval mode."""
    model.eval()
    outs = []
    for start in range(0, len(images), batch_size):
        x = to_input(
            torch.from_numpy(np.array(images[start : start + batch_size])), spec
        )  # a writable copy of the batch
        x = x.to(device, memory_format=torch.channels_last)
        outs.append((penultimate(model, x) if features else model(x)).float().cpu())
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), np.float32)


def penultimate(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled features before the classification head (the particle encoder's output)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d into the convolution before it (inference only),
    keeping the module structure (``forward_features`` etc. still work)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for module in list(model.modules()):
        children = dict(module.named_children())
        for name, child in children.items():
            if not isinstance(child, nn.BatchNorm2d):
                continue
            if isinstance(module, nn.Sequential):
                conv_name = str(int(name) - 1) if name.isdigit() and int(name) > 0 else None
            else:
                conv_name = "conv" + name[2:] if name.startswith("bn") else None
            conv = children.get(conv_name)
            if isinstance(conv, nn.Conv2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, child))
                setattr(module, name, nn.Identity())
    return model


def onednn_graph(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The (BatchNorm-folded, channels_last) model traced and frozen by TorchScript with
    oneDNN Graph fusion on, so convolutions run fused with their bias, ReLU and residual
    add (the partitions compile during the first two calls, here). TorchScript is
    deprecated in favour of torch.compile, which on 2 cores took 30 s to compile this
    model for a smaller gain; it works in the pinned torch 2.14.1."""
    import warnings

    previous = torch._C._jit_llga_enabled()
    torch.jit.enable_onednn_fusion(True)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            traced = torch.jit.freeze(torch.jit.trace(model.eval(), example, check_trace=False))
            for _ in range(2):
                traced(example)
    finally:
        torch.jit.enable_onednn_fusion(previous)
    return traced


class _Contiguous(nn.Module):
    """A model run in NCHW layout whatever layout its input arrives in (on some CPUs
    oneDNN's NCHW kernels beat channels_last for this network)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous())


class _Bfloat16(nn.Module):
    """A model run under bf16 autocast (convolutions and matmuls in bf16, float32 out):
    on CPUs with native bf16 (AVX-512 BF16, AMX) faster than fp32, on others slower
    (bench_classify measures both, and the macro AUPRC each gives)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.net(x).float()


def inference_path(model: nn.Module, name: str, example: torch.Tensor) -> nn.Module:
    """The (BatchNorm-folded, channels_last) ``model`` prepared for one of the inference
    paths of :data:`INFERENCE_PATHS` (the fp32 ones, and bf16 autocast)."""
    import copy

    if name == "eager":
        return model.eval()
    if name == "eager-nchw":
        return _Contiguous(copy.deepcopy(model).to(memory_format=torch.contiguous_format))
    if name == "onednn-graph":
        return onednn_graph(model, example)
    if name == "bf16":
        return _Bfloat16(model)
    raise SvpgenError(f"unknown inference path {name!r}; choose from {', '.join(INFERENCE_PATHS)}")


def fastest_fp32(model: nn.Module, example: torch.Tensor) -> tuple[str, nn.Module, dict]:
    """The fastest of the fp32 paths (:data:`FP32_PATHS`) for ``model`` on this machine,
    timed on ``example`` (a batch of scaled, channels_last input): (name, module,
    images per second of each path). The paths are timed in interleaved rounds and
    compared by their median, so a slow spell of a shared machine hits them alike."""
    import time

    candidates = {}
    for name in FP32_PATHS:
        try:
            candidates[name] = inference_path(model, name, example)
        except Exception:  # e.g. a torch build without oneDNN Graph: the other paths remain
            continue
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    with torch.inference_mode():
        for module in candidates.values():
            module(example)
        for _ in range(3):
            for name, module in candidates.items():
                start = time.perf_counter()
                module(example)
                seconds[name].append(time.perf_counter() - start)
    rates = {name: len(example) / float(np.median(t)) for name, t in seconds.items()}
    best = max(rates, key=rates.get)
    return best, candidates[best], rates


def quantize_int8(model: nn.Module, calibration: torch.Tensor) -> nn.Module:
    """Post-training static int8 quantization for CPU inference (x86 backend, ~3.6× fp32
    for ResNet-18 here). Uses torch.ao's FX graph mode, which torch flags as deprecated in
    favour of torchao's pt2e flow but which works in the pinned torch 2.14.1.
    ``calibration``: a representative float input batch (N×C×S×S, already scaled)."""
    import warnings

    try:
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    except ImportError:  # pragma: no cover - a future torch without torch.ao.quantization
        raise SvpgenError(
            "int8 inference needs torch.ao.quantization, which this torch no longer has"
        ) from None
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(model.eval(), get_default_qconfig_mapping("x86"), (calibration[:2],))
        with torch.inference_mode():
            for batch in calibration.split(128):
                prepared(batch)
        return convert_fx(prepared)
