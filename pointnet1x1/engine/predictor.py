"""What both predictors share: a backend, the checkpoint's preprocessing, their inputs.

:class:`Predictor` is the base of :class:`~pointnet1x1.engine.predict.Classifier`
and :class:`~pointnet1x1.engine.segment.PartSegmenter`: it holds a backend
(:mod:`~pointnet1x1.engine.backends`) and the checkpoint's
:class:`~pointnet1x1.engine.preprocessing.Preprocessing`, builds itself from a
checkpoint or an ONNX export, and turns any input (files, arrays, tensors) into
model inputs; the subclasses only say what the logits mean.

Shape:
    Inputs are clouds ``(N, 3+F)`` points-major (files, arrays, tensors), or a batch
    ``(B, N, 3+F)``; the backend gets ``(B, in_channels, num_points)``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from pointnet1x1.engine.backends import EagerBackend, OnnxBackend, check_precision
from pointnet1x1.engine.preprocessing import Preprocessing
from pointnet1x1.io.axes import FILE_UP_AXIS, check_up_axis

__all__ = ["Predictor", "find_files", "read_cloud", "resolve_device"]

PathLike = str | os.PathLike[str]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; refuse CUDA without CUDA."""
    if isinstance(device, torch.device):
        return device
    from pointnet1x1.engine.config import check_device

    check_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} requested but CUDA is not available "
            f"(torch {torch.__version__}); use --device cpu"
        )
    return torch.device(device)


@contextlib.contextmanager
def _few_threads(active: bool) -> Iterator[None]:
    """One CPU thread while a few clouds run: their layers are too small to split,
    and waiting for a second thread costs far more on a busy machine."""
    if not active:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _clouds(x: Any) -> tuple[list[Any], list[str | None]]:
    """The clouds of a predictor's input and the file name of each (or None)."""
    if isinstance(x, (str, os.PathLike)):
        return [x], [str(x)]
    if (torch.is_tensor(x) or isinstance(x, np.ndarray)) and x.ndim == 3:
        return list(x), [None] * len(x)
    if (torch.is_tensor(x) or isinstance(x, np.ndarray)) and x.ndim == 2:
        return [x], [None]
    if isinstance(x, (list, tuple)):
        names = [str(c) if isinstance(c, (str, os.PathLike)) else None for c in x]
        return list(x), names
    raise ValueError(
        "expected a (B, N, 3+F) array or tensor, a list of (N_i, 3+F) clouds, "
        f"or file paths, got {type(x).__name__}"
    )


def one_line(err: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_cloud(
    cloud: Any, name: str = "cloud"
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(points (N, 3+F), normals (N, 3) or None, name)`` of a file, array or tensor."""
    if isinstance(cloud, (str, os.PathLike)):
        from pointnet1x1.io import read_points

        pc = read_points(cloud)
        return np.asarray(pc.points, np.float32), pc.normals, str(cloud)
    points = (
        cloud.detach().cpu().numpy() if torch.is_tensor(cloud) else np.asarray(cloud)
    )
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(
            f"{name}: expected points of shape (N, 3+F), got {points.shape}"
        )
    return points.astype(np.float32, copy=False), None, name


class Predictor:
    """What both predictors share: a backend, the preprocessing and its inputs.

    Args:
        model: A trained model (run eagerly, or by its fast rewrite where one
            exists), or a backend (e.g. :class:`~pointnet1x1.engine.backends.OnnxBackend`).
        class_names: The names of the model's outputs (classes, or parts).
        preprocessing: The checkpoint's (a :class:`Preprocessing` or its dict).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``... (torch models).
        precision: ``"fp32"`` or ``"bf16"`` (faster on CPUs with bf16 support).
        seed: Seeds the point sampling, so a file always gives the same answer.
        input_up_axis: The up axis of the clouds you pass (default ``"z"``: meshes
            and scans); they are converted to the model's (``preprocessing.up_axis``).
    """

    task: ClassVar[str]

    def __init__(
        self,
        model: nn.Module | Any,
        class_names: Sequence[str],
        *,
        preprocessing: Preprocessing | dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        seed: int = 0,
        input_up_axis: str = FILE_UP_AXIS,
    ) -> None:
        self.input_up_axis = check_up_axis(input_up_axis, "input_up_axis")
        self.precision = check_precision(precision)
        self.preprocessing = Preprocessing.from_dict(preprocessing or Preprocessing())
        self.class_names = list(class_names)
        self.seed = seed
        self.metadata: dict[str, Any] = {}  # the checkpoint's, with from_checkpoint
        if isinstance(model, nn.Module):
            self.device = resolve_device(device)
            self.model: nn.Module | None = model.to(self.device).eval()
            self.backend: Any = EagerBackend(
                model, device=self.device, precision=precision
            )
        else:
            self.model, self.backend = None, model
            self.device = getattr(model, "device", torch.device("cpu"))

    @classmethod
    def from_checkpoint(
        cls, path: PathLike, *, device: str | torch.device = "auto", **kwargs: Any
    ) -> Any:
        """Load a checkpoint written by ``train`` (or a run folder: its best model).

        Keyword arguments are the constructor's (``precision``, ``seed``,
        ``input_up_axis``).
        """
        from pointnet1x1.engine.checkpoint import (
            CheckpointError,
            load_model_checkpoint,
            task_of,
        )

        dev = resolve_device(device)
        loaded = load_model_checkpoint(path, map_location=dev)
        task = task_of(loaded.metadata)
        if task != cls.task:
            other = "PartSegmenter" if task == "partseg" else "Classifier"
            raise CheckpointError(
                f"{path}: a {task} checkpoint; load it with {other}.from_checkpoint "
                f"(or pointnet1x1.engine.load_predictor)"
            )
        return cls._build(loaded.model, loaded.metadata, device=dev, **kwargs)

    @classmethod
    def from_onnx(cls, path: PathLike, **kwargs: Any) -> Any:
        """A predictor running an exported ONNX file; names and preprocessing come from it."""
        backend = OnnxBackend(path)
        return cls._build(backend, backend.metadata, **kwargs)

    @classmethod
    def _build(cls, model: Any, meta: dict[str, Any], **kwargs: Any) -> Any:
        out = cls(
            model, meta["class_names"], preprocessing=meta["preprocessing"], **kwargs
        )
        out.metadata = meta
        return out

    def preprocess(self, cloud: Any, name: str = "cloud") -> np.ndarray:
        """One cloud ``(N, C)`` (array, tensor or file) -> ``(num_points, in_channels)``."""
        points, normals, name = read_cloud(cloud, name)
        return self.preprocessing.prepare(
            points, normals, input_up_axis=self.input_up_axis, seed=self.seed, name=name
        )

    def _to_device(self, arrays: np.ndarray) -> Tensor:
        return (
            torch.from_numpy(arrays).to(self.device).transpose(1, 2).contiguous()
        )  # (B, C, N)


def find_files(paths: Sequence[PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders (recursively, supported extensions) into files.

    Returns:
        ``(files, problems)`` where ``problems`` are ``(path, message)`` pairs.
    """
    from pointnet1x1.io import SUPPORTED_EXTENSIONS

    exts = tuple(
        e.lower() if e.startswith(".") else f".{e.lower()}"
        for e in SUPPORTED_EXTENSIONS
    )
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.name.lower().endswith(exts)
            )
            if not found:
                problems.append(
                    (
                        str(path),
                        f"no supported point-cloud files in this folder ({', '.join(exts)})",
                    )
                )
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append((str(path), "no such file or folder"))
    return files, problems
