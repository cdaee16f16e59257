"""The classifier as one ONNX file, for the instrument's PC: uint8 N×64×64 crops in,
class probabilities out — the input scaling, the network (BatchNorm folded) and a
logit adjustment inside — with a dynamic batch. ``svpgen export-onnx`` writes it
(``torch.onnx``, optionally int8 by onnxruntime's static quantization, calibrated on
unlabelled crops); :class:`OnnxClassifier` runs it on onnxruntime without importing torch.
The file's metadata carries the class names and the model's svpgen config.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from svpgen.errors import SvpgenError

INPUT, OUTPUT = "images", "probabilities"
OPSET = 18
_CLASSES_KEY, _CONFIG_KEY = "svpgen_classes", "svpgen_config"


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise SvpgenError("ONNX inference needs onnxruntime: pip install 'svpgen[onnx]'") from None
    return onnxruntime


def export_onnx(
    model_dir: str | Path,
    out: str | Path,
    *,
    int8: bool = False,
    calibration: np.ndarray | None = None,
) -> Path:
    """Write ``model_dir``'s CNN classifier as ONNX to ``out`` (atomically); ``int8``
    quantizes it statically, calibrated on ``calibration`` (uint8 N×64×64, no labels)."""
    import torch
    from torch import nn

    from svpgen.atomic import atomic_path
    from svpgen.classify.classifier import Classifier
    from svpgen.classify.models import fold_batchnorm

    clf = Classifier.from_pretrained(model_dir, "cpu")
    cfg = clf.config
    offset = np.zeros(len(clf.classes)) if clf.logit_offset is None else clf.logit_offset

    class Deployed(nn.Module):
        """uint8 crops → probabilities, as :meth:`Classifier.predict_proba` computes them."""

        def __init__(self):
            super().__init__()
            self.net = fold_batchnorm(clf.model.cpu().float()).eval()
            shape = (1, -1, 1, 1)
            self.register_buffer("mean", torch.tensor(cfg.input_mean).view(shape).float())
            self.register_buffer("std", torch.tensor(cfg.input_std).view(shape).float())
            self.register_buffer("offset", torch.tensor(offset, dtype=torch.float32).view(1, -1))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = images.unsqueeze(1).float() / 255.0
            if cfg.in_chans > 1:
                x = x.expand(-1, cfg.in_chans, -1, -1)
            mean, std, offset = self.mean, self.std, self.offset
            assert isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor)
            return torch.softmax(self.net((x - mean) / std) + offset, dim=1)

    out = Path(out)
    if int8 and (calibration is None or len(calibration) == 0):
        raise SvpgenError("--int8 needs calibration images (--calibration STORE)")
    with atomic_path(out) as tmp:
        float_path = tmp.with_name(tmp.name + ".fp32.onnx") if int8 else tmp
        example = torch.zeros((2, 64, 64), dtype=torch.uint8)
        torch.onnx.export(
            Deployed().eval(),
            (example,),
            str(float_path),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={"images": {0: torch.export.Dim("n", min=1)}},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
        if int8 and calibration is not None:
            _quantize(float_path, tmp, calibration)
            float_path.unlink()
        _write_metadata(
            tmp, clf.classes, {"classifier": cfg.to_dict(), "int8": int8, **clf.metadata}
        )
    return out


def _quantize(float_path: Path, out: Path, calibration: np.ndarray) -> None:
    """onnxruntime's static QDQ int8 quantization (after its recommended pre-processing:
    shape inference and graph optimisation), calibrated on up to 512 crops."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    idx = np.linspace(0, len(calibration) - 1, min(512, len(calibration))).round().astype(int)
    batches = [np.ascontiguousarray(calibration[idx[i : i + 64]]) for i in range(0, len(idx), 64)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    prepared = float_path.with_name(float_path.name + ".pre.onnx")
    quant_pre_process(str(float_path), str(prepared))
    quantize_static(
        str(prepared),
        str(out),
        Reader(),
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    prepared.unlink()


def _write_metadata(path: Path, classes: list[str], config: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    for key, value in ((_CLASSES_KEY, classes), (_CONFIG_KEY, config)):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value, default=str)
    onnx.save(model, str(path))


class OnnxClassifier:
    """An exported classifier on onnxruntime: ``predict_proba(uint8 N×64×64)`` → N×C,
    ``classes`` from the file's metadata; no torch."""

    def __init__(self, path: str | Path, threads: int | None = None):
        ort = _onnxruntime()
        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own types for a bad file
            raise SvpgenError(
                f"{self.path}: not a loadable ONNX model ({str(err)[:120]})"
            ) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if _CLASSES_KEY not in meta:
            raise SvpgenError(f"{self.path}: not an svpgen classifier export (no class names)")
        self.classes: list[str] = json.loads(meta[_CLASSES_KEY])
        self.config: dict = json.loads(meta.get(_CONFIG_KEY, "{}"))

    def predict_proba(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """Class probabilities N×C (float64), columns in ``classes`` order."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (64, 64):
            raise SvpgenError(
                f"ONNX classifier input must be uint8 N×64×64 (got {images.dtype} {images.shape})"
            )
        out = np.empty((len(images), len(self.classes)))
        for start in range(0, len(images), batch_size):
            batch = np.ascontiguousarray(images[start : start + batch_size])
            out[start : start + len(batch)] = self.session.run([OUTPUT], {INPUT: batch})[0]
        return out

    def prepare_inference(self, n_images: int) -> None:
        """Nothing to settle (the interface every svpgen model shares)."""

    def predict_proba_table(self, images: np.ndarray, table=None) -> np.ndarray:
        """:meth:`predict_proba` under the interface every svpgen model shares."""
        return self.predict_proba(images)

    def __repr__(self) -> str:
        return f"OnnxClassifier({str(self.path)!r}, classes={self.classes})"
