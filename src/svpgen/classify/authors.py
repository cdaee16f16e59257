"""The paper authors' released classifiers (Ozbulak et al. 2025, on request, CC BY-NC-SA
4.0) as svpgen :class:`Classifier` artefacts.

Their model is ``timm.create_model('resnet18', pretrained=True, num_classes=3)`` — three
input channels, the standard stem — saved as ``{'model': state_dict}``, classes in the
order protein, silicone oil, air bubble. svpgen feeds it the gray crop repeated to three
channels. **Their input normalisation is not published**: the import defaults to timm's
ImageNet mean/std (what ``timm.data.resolve_data_config`` gives a pretrained ResNet-18);
pass the right values when you know them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from svpgen.checkpoint import read_torch_state
from svpgen.classify.classifier import Classifier
from svpgen.classify.config import ClassifierConfig
from svpgen.classify.models import build_classifier
from svpgen.data.classes import PRIMARY_CLASSES
from svpgen.errors import SvpgenError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _arch_of(state: dict[str, torch.Tensor]) -> str:
    """resnet18 (basic blocks) or resnet50 (bottlenecks with a conv3)."""
    return "resnet50" if any(k.endswith("conv3.weight") for k in state) else "resnet18"


def import_authors_classifier(
    file: str | Path,
    out: str | Path,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    classes: tuple[str, ...] = PRIMARY_CLASSES,
) -> Classifier:
    """Convert the authors' classifier ``.pth`` into a Classifier artefact at ``out``."""
    state = read_torch_state(file)
    arch = _arch_of(state)
    if "fc.weight" not in state:
        raise SvpgenError(f"{file}: no 'fc.weight' tensor; not a timm ResNet classifier")
    num_classes, in_chans = (
        state["fc.weight"].shape[0],
        state.get("conv1.weight", torch.empty(0, 3)).shape[1],
    )
    if num_classes != len(classes):
        raise SvpgenError(
            f"{file}: the classifier has {num_classes} outputs, expected {len(classes)} "
            f"({', '.join(classes)})"
        )
    config = ClassifierConfig(
        arch=arch, in_chans=in_chans, input_mean=tuple(mean), input_std=tuple(std), epochs=1
    )
    model = build_classifier(arch, num_classes, config.stem, in_chans=in_chans)
    expected = model.state_dict()
    for key, value in state.items():
        if key not in expected:
            raise SvpgenError(f"{file}: tensor {key!r} has no place in a timm {arch}")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise SvpgenError(
                f"{file}: tensor {key!r} has shape {tuple(value.shape)}, timm {arch} expects "
                f"{tuple(expected[key].shape)}"
            )
    missing = [k for k in expected if k not in state]
    if missing:
        raise SvpgenError(f"{file}: {len(missing)} {arch} tensor(s) missing, first {missing[0]!r}")
    model.load_state_dict(state)
    metadata = {
        "imported_from": str(Path(file).resolve()),
        "origin": "Ozbulak et al. 2025, released model (CC BY-NC-SA 4.0)",
        "input_normalisation": "assumed (the authors' is not published)",
    }
    clf = Classifier(model, list(classes), config, metadata)
    clf.save_pretrained(out)
    clf.path = Path(out)
    return clf
