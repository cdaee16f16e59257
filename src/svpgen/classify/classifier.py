"""A trained particle classifier as one object, in the scikit-learn manner:
``predict_proba`` / ``predict`` / ``embed`` on uint8 N×64×64 images, ``classes``, and
``from_pretrained`` / ``save_pretrained`` for the artefact (``model.safetensors`` +
``config.json``)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from svpgen.checkpoint import read_artefact, save_artefact
from svpgen.classify.config import ClassifierConfig
from svpgen.classify.models import (
    INFERENCE_BATCH,
    batched_outputs,
    build_classifier,
    fastest_fp32,
    fold_batchnorm,
    inference_path,
    quantize_int8,
    to_input,
)
from svpgen.data.preprocess import IMAGE_SIZE
from svpgen.device import resolve_device
from svpgen.errors import SvpgenError

KIND = "svpgen-classifier"
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE)
PROBE_IMAGES = 16_384  # below this many images, timing the fp32 paths costs more than it saves


def check_images(images: np.ndarray) -> np.ndarray:
    """The classifier's input contract: uint8 N×64×64 (what ``svpgen import`` produces)."""
    images = np.asarray(images)  # a memmap stays mapped: no copy
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise SvpgenError(
            f"classifier input must be uint8 N×{IMAGE_SIZE}×{IMAGE_SIZE} (got {images.dtype} "
            f"{images.shape}); use svpgen import first"
        )
    return images


class Classifier:
    """A trained classifier: ``predict_proba(uint8 N×64×64) → float N×C`` (rows sum to 1).

    ``model`` is the trained network as trained (what :meth:`save_pretrained` writes);
    inference runs on a copy with BatchNorm folded into the convolutions (+2–5% img/s),
    or on an int8 copy after :meth:`quantize`. A logit-adjusted model (``deploy_prior``
    in its metadata) adds log(deployment prior) − log(training prior) to its logits.
    """

    def __init__(
        self,
        model: nn.Module,
        classes: list[str],
        config: ClassifierConfig,
        metadata: dict | None = None,
        device: str = "cpu",
    ):
        self.model = model.to(device).eval()
        self.classes: list[str] = list(classes)
        self.config, self.device = config, device
        self.metadata: dict = dict(metadata or {})
        self.path: Path | None = None
        self._fp32: nn.Module | None = None
        self._int8: nn.Module | None = None
        # "auto": on the CPU, the fp32 paths timed once on a large input, the fastest kept;
        # or one path of INFERENCE_PATHS by name ("bf16": bf16 autocast, never picked by auto)
        self.inference: str = "auto"
        self._fast: tuple[str, nn.Module] | None = None
        self.inference_rates: dict[str, float] = {}
        deploy, train = self.metadata.get("deploy_prior"), self.metadata.get("train_prior")
        self.logit_offset = (
            None if deploy is None else np.log(np.asarray(deploy)) - np.log(np.asarray(train))
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto") -> "Classifier":
        """Load a classifier directory written by :meth:`save_pretrained`."""
        path = Path(path)
        info, weights = read_artefact(path, KIND, "classifier")
        config = ClassifierConfig.from_dict(info["classifier"])
        model = build_classifier(
            config.arch, len(info["classes"]), config.stem, in_chans=config.in_chans
        )
        model.load_state_dict(weights)
        metadata = {k: v for k, v in info.items() if k not in ("kind", "classes", "classifier")}
        clf = cls(model, info["classes"], config, metadata, resolve_device(device))
        clf.path = path
        return clf

    load = from_pretrained

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` (weights first, atomically)."""
        from svpgen import __version__

        config = {
            "kind": KIND,
            "classes": self.classes,
            "classifier": self.config.to_dict(),
            "package_version": __version__,
            **{k: v for k, v in self.metadata.items() if k != "package_version"},
        }
        save_artefact(Path(path), self.model.state_dict(), config)
        return Path(path)

    def prepare_inference(self, n_images: int) -> None:
        """Settle the inference path for an input of ``n_images`` before it is classified
        in chunks (the fp32 paths are timed once, for inputs of ≥ :data:`PROBE_IMAGES`)."""
        self._inference_model(n_images)

    def _inference_model(self, n_images: int = 0) -> nn.Module:
        """int8 after :meth:`quantize`; else the path ``inference`` names — for ``"auto"``,
        fp32, on the CPU and for an input of ≥ :data:`PROBE_IMAGES` the fp32 path timed
        fastest here (once)."""
        if self._int8 is not None:
            return self._int8
        eager = self._fp32_model()
        wanted = self.inference
        if wanted == "auto":
            large = self.device == "cpu" and n_images >= PROBE_IMAGES
            wanted = "probe" if large or self._fast is not None else "eager"
        if wanted == "eager":
            return eager
        if self._fast is None or (wanted != "probe" and self._fast[0] != wanted):
            example = to_input(
                torch.zeros((INFERENCE_BATCH, *IMAGE_SHAPE), dtype=torch.uint8), self.config
            ).contiguous(memory_format=torch.channels_last)
            if wanted == "probe":
                name, module, self.inference_rates = fastest_fp32(eager, example)
            else:
                name, module = wanted, inference_path(eager, wanted, example)
            self._fast = (name, module)
        return self._fast[1]

    def _fp32_model(self) -> nn.Module:
        if self._fp32 is None:
            self._fp32 = (
                fold_batchnorm(copy.deepcopy(self.model))
                .to(self.device)
                .to(memory_format=torch.channels_last)
                .eval()
            )
        return self._fp32

    def quantize(self, calibration_images: np.ndarray, n: int = 512) -> "Classifier":
        """Switch inference to int8, calibrated on up to ``n`` evenly spaced images (no labels)."""
        images = check_images(calibration_images)
        idx = np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int)
        x = to_input(torch.from_numpy(np.array(images[idx])), self.config)
        self._int8 = quantize_int8(copy.deepcopy(self._fp32_model()).cpu(), x)
        return self

    def predict_logits(self, images: np.ndarray, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """Logits N×C (with the logit adjustment when the model carries one)."""
        model = self._inference_model(len(images))
        device = "cpu" if model is self._int8 else self.device
        logits = batched_outputs(model, check_images(images), batch_size, device, spec=self.config)
        return logits if self.logit_offset is None else logits + self.logit_offset

    def predict_proba(self, images: np.ndarray, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """Class probabilities N×C (float64), rows sum to 1, columns in ``classes`` order."""
        return torch.softmax(
            torch.from_numpy(self.predict_logits(images, batch_size)).double(), 1
        ).numpy()

    def predict(self, images: np.ndarray, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """The most probable class name per image."""
        return np.asarray(self.classes, dtype=object)[
            self.predict_proba(images, batch_size).argmax(1)
        ]

    def predict_proba_table(
        self, images: np.ndarray, table=None, batch_size: int = INFERENCE_BATCH
    ) -> np.ndarray:
        """:meth:`predict_proba` under the interface every svpgen model shares (the CNN
        reads the crops only; a morphology baseline also reads the table rows)."""
        return self.predict_proba(images, batch_size)

    def embed(self, images: np.ndarray, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """Penultimate-layer features N×d (float64): the particle encoder's feature space."""
        return batched_outputs(
            self._fp32_model(), check_images(images), batch_size, self.device, True, self.config
        ).astype(np.float64)

    def __repr__(self) -> str:
        path = str(self.path) if self.path else None
        return f"Classifier({self.config.arch}, classes={self.classes}, path={path!r})"


def load_model(path: str | Path, device: str = "auto"):
    """Any trained svpgen classifier directory: the CNN (:class:`Classifier`) or a morphology
    baseline (:class:`~svpgen.classify.baselines.MorphologyModel`)."""
    from svpgen.classify.baselines import MorphologyModel, is_baseline

    if is_baseline(path):
        return MorphologyModel.from_pretrained(path)
    return Classifier.from_pretrained(path, device)
