"""Backends: what runs a network on a batch of preprocessed clouds for a predictor.

A predictor (:class:`~pointnet1x1.engine.predict.Classifier`,
:class:`~pointnet1x1.engine.segment.PartSegmenter`) owns the preprocessing and
turns logits into answers; a backend only maps channels-first clouds to logits:

- :class:`EagerBackend`: the PyTorch model in eval mode (bf16 autocast on request);
- :class:`FastBackend`: :func:`pointnet1x1.models.fast.optimize_for_inference` of a
  PointNet classifier (same logits within 1e-4 in fp32, several times faster);
- :class:`OnnxBackend`: an exported ONNX file run by onnxruntime, recognised by
  its bytes first (:mod:`~pointnet1x1.engine.formats`): a TorchScript archive or
  any other zip is refused before a loader touches it.

Shape:
    ``backend(x, category=None)``: ``x`` ``(B, C, N)`` float32 on the backend's
    device, ``category`` ``(B,)`` for part segmenters; returns float32 logits
    ``(B, K)`` or ``(B, P, N)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pointnet1x1.engine.formats import describe_kind, file_kind

__all__ = [
    "PRECISIONS",
    "EagerBackend",
    "FastBackend",
    "OnnxBackend",
    "check_precision",
]

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    return precision


class EagerBackend:
    """The model itself, in eval mode, under bf16 autocast for ``precision="bf16"``."""

    name = "eager"

    def __init__(
        self,
        model: nn.Module,
        *,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.precision = check_precision(precision)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, x: Tensor, category: Tensor | None = None) -> Tensor:
        args = (x,) if category is None else (x, category)
        if self.precision == "bf16":
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self.model(*args).float()
        return self.model(*args).float()

    def __repr__(self) -> str:
        return (
            f"EagerBackend({type(self.model).__name__}, precision={self.precision!r})"
        )


class FastBackend:
    """The fast inference rewrite of a PointNet classifier (built once, then reused)."""

    name = "fast"

    def __init__(
        self,
        model: nn.Module,
        *,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
    ) -> None:
        from pointnet1x1.models.fast import optimize_for_inference

        self.precision = check_precision(precision)
        self.device = torch.device(device)
        model = model.to(self.device).eval()
        self.net = optimize_for_inference(model, precision=precision)  # type: ignore[arg-type]

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """Whether :func:`optimize_for_inference` reproduces ``model``."""
        from pointnet1x1.models import PointNetClassifier

        return isinstance(model, PointNetClassifier) and not 3 < model.in_channels < 6

    @torch.no_grad()
    def __call__(self, x: Tensor, category: Tensor | None = None) -> Tensor:
        return self.net(x).float()

    def __repr__(self) -> str:
        return f"FastBackend(precision={self.precision!r})"


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ValueError(
            "running ONNX files needs onnxruntime: pip install 'pointnet1x1[onnx]'"
        ) from None
    return onnxruntime


class OnnxBackend:
    """An exported ONNX model run by onnxruntime on the CPU.

    Args:
        path: An ``.onnx`` file written by ``pointnet1x1 export``; its
            ``metadata`` (class names, preprocessing, model) is read from the file.

    Raises:
        FileNotFoundError: If ``path`` is missing.
        ValueError: If the file is not an ONNX model (checked from its bytes
            before onnxruntime reads it) or lacks pointnet1x1 metadata.
    """

    name = "onnx"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        kind = file_kind(self.path)
        if kind != "onnx":
            raise ValueError(f"{self.path}: {describe_kind(kind)}, not an ONNX model")
        ort = _require_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
            custom = self.session.get_modelmeta().custom_metadata_map
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
            text = str(err).strip()
            first = (text.splitlines()[0] if text else type(err).__name__)[:200]
            raise ValueError(
                f"{self.path}: not a loadable ONNX model ({first})"
            ) from None
        if "pointnet1x1" not in custom:
            raise ValueError(f"{self.path}: an ONNX model without pointnet1x1 metadata")
        try:
            self.metadata: dict[str, Any] = json.loads(custom["pointnet1x1"])
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{self.path}: unreadable pointnet1x1 metadata ({err})"
            ) from None
        if not isinstance(self.metadata, dict):
            raise ValueError(f"{self.path}: pointnet1x1 metadata is not a JSON object")
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.device = torch.device("cpu")

    def __call__(self, x: Tensor, category: Tensor | None = None) -> Tensor:
        feed = {self.inputs[0]: x.detach().cpu().float().contiguous().numpy()}
        if category is not None and len(self.inputs) > 1:
            feed[self.inputs[1]] = category.detach().cpu().long().numpy()
        return torch.from_numpy(self.session.run(None, feed)[0]).float()

    def __repr__(self) -> str:
        return f"OnnxBackend({str(self.path)!r})"
