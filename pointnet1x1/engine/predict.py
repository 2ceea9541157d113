"""Inference: :class:`Classifier` turns clouds, arrays or files into predictions.

A predictor is two parts composed, not a hierarchy of special cases: the
checkpoint's :class:`~pointnet1x1.engine.preprocessing.Preprocessing` and a backend
(:mod:`~pointnet1x1.engine.backends`: the eager model, its fast rewrite, or an ONNX
file); :class:`~pointnet1x1.engine.predictor.Predictor` holds what both predictors
share, :class:`~pointnet1x1.engine.segment.PartSegmenter` is the part-segmentation
twin, and :func:`load_predictor` picks the one a file calls for. Files are assumed
to be z up (:data:`~pointnet1x1.io.axes.FILE_UP_AXIS`: meshes and scans) unless
``input_up_axis`` says otherwise. Probabilities are calibrated: the logits are
divided by the checkpoint's temperature (fitted on the validation split at the
end of training, :func:`temperature_of`) before the softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from pointnet1x1.engine.backends import FastBackend, OnnxBackend
from pointnet1x1.engine.predictor import (
    PathLike,
    Predictor,
    _clouds,
    _few_threads,
    find_files,
    one_line,
    resolve_device,
)

__all__ = [
    "CALIBRATION_KEY",
    "Classifier",
    "Prediction",
    "Predictor",
    "find_files",
    "load_predictor",
    "resolve_device",
    "temperature_of",
]

# from this many clouds in one call on, the Classifier builds the fast PointNet
FAST_MIN_CLOUDS = 16
# where a checkpoint keeps its temperature: metadata["extra"][CALIBRATION_KEY]
CALIBRATION_KEY = "calibration"


def temperature_of(metadata: dict[str, Any]) -> float:
    """The softmax temperature a checkpoint's (or export's) metadata records.

    ``train`` stores it in ``extra["calibration"]["temperature"]``; metadata
    without one (checkpoints written before calibration) give 1.0, the plain
    softmax.

    Raises:
        ValueError: A recorded temperature that is not a positive number.
    """
    extra = metadata.get("extra")
    record = extra.get(CALIBRATION_KEY) if isinstance(extra, dict) else None
    if not isinstance(record, dict) or record.get("temperature") is None:
        return 1.0
    value = record["temperature"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"checkpoint calibration temperature must be a positive number, got {value!r}"
        )
    return float(value)


class Prediction(NamedTuple):
    """One cloud's prediction.

    Attributes:
        label: The most probable class name.
        probability: Its probability.
        class_index: Its class index.
        top_k: ``(label, probability)`` pairs, most probable first.
        path: The file the cloud came from, or ``None``.
    """

    label: str
    probability: float
    class_index: int
    top_k: list[tuple[str, float]]
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.path is None else {"path": self.path}
        out.update(
            label=self.label,
            probability=self.probability,
            class_index=self.class_index,
            top_k=[{"label": n, "probability": p} for n, p in self.top_k],
        )
        return out


class Classifier(Predictor):
    """Classify point clouds with a trained model and its preprocessing.

    Arguments are those of :class:`Predictor`, and ``temperature``: the logits
    are divided by it before the softmax (from a checkpoint or an export: the
    temperature fitted at the end of training, 1.0 when none is recorded).
    Batches of at least 16 clouds of a PointNet classifier run on its fast
    rewrite (same answers within 1e-4).

    Example:
        >>> clf = Classifier.from_checkpoint("runs/x/checkpoints/best.safetensors")
        >>> clf.predict(["chair.ply"])[0].label
    """

    task = "cls"

    def __init__(
        self,
        model: nn.Module | Any,
        class_names: Sequence[str],
        *,
        temperature: float = 1.0,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("model_name", None)  # accepted for older callers; the model says
        super().__init__(model, class_names, **kwargs)
        if isinstance(temperature, bool) or not float(temperature) > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.temperature = float(temperature)
        self._fast: FastBackend | None = None

    @classmethod
    def _build(cls, model: Any, meta: dict[str, Any], **kwargs: Any) -> Any:
        kwargs.setdefault("temperature", temperature_of(meta))
        return super()._build(model, meta, **kwargs)

    def backend_for(self, count: int) -> Any:
        """The backend that runs ``count`` clouds: the fast rewrite for many, else the
        predictor's own (building the fast one costs about a dozen eager clouds)."""
        if (
            count >= FAST_MIN_CLOUDS
            and self.model is not None
            and FastBackend.supports(self.model)
        ):
            if self._fast is None:
                self._fast = FastBackend(
                    self.model, device=self.device, precision=self.precision
                )
            return self._fast
        return self.backend

    @classmethod
    def pretrained(cls, name: str | None = None, **kwargs: Any) -> Classifier:
        """A pretrained model installed with the package (:mod:`pointnet1x1.weights`).

        Args:
            name: Its name (default ``"pointnet-modelnet40"``: the paper's PointNet
                trained on the whole ModelNet40; ``pointnet1x1 models`` lists them
                with their measured figures).
            **kwargs: Those of :meth:`from_checkpoint` (``device``, ``precision``,
                ``input_up_axis``...).
        """
        from pointnet1x1.weights import DEFAULT_PRETRAINED, pretrained_path

        return cls.from_checkpoint(
            pretrained_path(name or DEFAULT_PRETRAINED), **kwargs
        )  # type: ignore[no-any-return]

    def probabilities(self, logits: Tensor) -> Tensor:
        """Logits ``(B, K)`` -> ``softmax(logits / temperature)``: the one place
        where this happens."""
        return torch.softmax(logits.float() / self.temperature, dim=1)

    @torch.no_grad()
    def predict_proba(self, x: Any, *, batch_size: int = 32) -> np.ndarray:
        """Calibrated class probabilities ``(B, K)`` of every cloud (see
        :meth:`predict`): ``softmax(logits / self.temperature)``, the checkpoint's
        temperature (1.0 for a checkpoint without one: the plain softmax)."""
        clouds, names = _clouds(x)
        arrays = [
            self.preprocess(c, n or f"cloud {i}")
            for i, (c, n) in enumerate(zip(clouds, names, strict=True))
        ]
        return self.predict_proba_preprocessed(arrays, batch_size=batch_size)

    @torch.no_grad()
    def predict_proba_preprocessed(
        self, arrays: Sequence[np.ndarray], *, batch_size: int = 32
    ) -> np.ndarray:
        """Probabilities of clouds already preprocessed to ``(num_points, C)``."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        backend = self.backend_for(len(arrays))
        out = []
        with _few_threads(len(arrays) < FAST_MIN_CLOUDS and self.device.type == "cpu"):
            for start in range(0, len(arrays), batch_size):
                xb = self._to_device(np.stack(arrays[start : start + batch_size]))
                out.append(self.probabilities(backend(xb)).cpu().numpy())
        return (
            np.concatenate(out)
            if out
            else np.empty((0, len(self.class_names)), np.float32)
        )

    def predict(
        self, x: Any, *, top_k: int = 5, batch_size: int = 32
    ) -> list[Prediction]:
        """Predict the class of every cloud.

        Args:
            x: A ``(B, N, 3+F)`` array or tensor, one ``(N, 3+F)`` cloud, a list of
                clouds of different sizes, or file paths (any supported format).
            top_k: How many ``(label, probability)`` pairs to keep per cloud.
            batch_size: Clouds per forward pass.

        Returns:
            One :class:`Prediction` per cloud, in order.
        """
        if top_k <= 0:
            raise ValueError(f"top_k must be positive, got {top_k}")
        _, names = _clouds(x)
        return self.to_predictions(
            self.predict_proba(x, batch_size=batch_size), names, top_k
        )

    def classify_files(
        self, paths: Sequence[PathLike], *, top_k: int = 5, batch_size: int = 32
    ) -> tuple[list[Prediction], list[tuple[str, str]]]:
        """Classify files and folders (their supported files, recursively).

        Returns:
            The predictions of the readable files, in order, and ``(path,
            message)`` for each path that could not be read (one line each).
        """
        files, problems = find_files(paths)
        arrays, names = [], []
        for path in files:
            try:
                arrays.append(self.preprocess(path))
                names.append(str(path))
            except (ValueError, OSError) as err:  # PointCloudFileError is a ValueError
                problems.append((str(path), one_line(err)))
        probs = self.predict_proba_preprocessed(arrays, batch_size=batch_size)
        return self.to_predictions(probs, names, top_k), problems

    def to_predictions(
        self, probs: np.ndarray, names: Sequence[str | None], top_k: int = 5
    ) -> list[Prediction]:
        if top_k <= 0:
            raise ValueError(f"top_k must be positive, got {top_k}")
        k = min(top_k, len(self.class_names))
        preds = []
        for row, name in zip(probs, names, strict=True):
            order = np.argsort(-row, kind="stable")[:k]
            best = int(order[0])
            pairs = [(self.class_names[i], float(row[i])) for i in order]
            preds.append(
                Prediction(self.class_names[best], float(row[best]), best, pairs, name)
            )
        return preds

    def __repr__(self) -> str:
        prep = self.preprocessing
        return (
            f"Classifier(classes={len(self.class_names)}, num_points={prep.num_points}, "
            f"features={list(prep.features)}, up_axis={self.input_up_axis!r}->{prep.up_axis!r}, "
            f"backend={self.backend!r}, device={self.device}, precision={self.precision!r}, "
            f"temperature={self.temperature:.4g})"
        )


def load_predictor(path: PathLike, **kwargs: Any) -> Any:
    """The predictor a file calls for: a checkpoint, a run folder or an ONNX export of
    a classifier gives a :class:`Classifier`, of a part segmenter a ``PartSegmenter``.

    The file is recognised by its bytes; keyword arguments go to the predictor.
    """
    from pointnet1x1.engine.checkpoint import read_checkpoint_metadata, task_of
    from pointnet1x1.engine.formats import file_kind
    from pointnet1x1.engine.segment import PartSegmenter

    path = Path(path)
    if path.is_file() and file_kind(path) == "onnx":
        backend = OnnxBackend(path)
        cls: Any = (
            PartSegmenter if task_of(backend.metadata) == "partseg" else Classifier
        )
        kwargs.pop("device", None)
        return cls._build(backend, backend.metadata, **kwargs)
    cls = (
        PartSegmenter
        if task_of(read_checkpoint_metadata(path)) == "partseg"
        else Classifier
    )
    return cls.from_checkpoint(path, **kwargs)
