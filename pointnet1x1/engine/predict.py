"""Inference: :class:`Classifier` turns clouds, arrays or files into predictions.

The preprocessing is the checkpoint's, never re-typed by the user: select the
input features (xyz, or xyz + normals), sample ``num_points`` points (seeded),
centre at the centroid and scale the farthest point to radius 1.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from pointnet1x1.engine.checkpoint import make_preprocessing

PathLike = str | os.PathLike[str]
# from this many clouds in one call on, the Classifier builds the fast PointNet
FAST_MIN_CLOUDS = 16


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


def inference_model(model: nn.Module, model_name: str, precision: str = "fp32") -> Any:
    """The fastest equivalent of ``model.eval()`` for inference.

    PointNet classifiers go through :func:`pointnet1x1.models.fast.optimize_for_inference`
    when it is available (same logits within 1e-4); otherwise the eval-mode model,
    under bf16 autocast for ``precision="bf16"``.
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    from pointnet1x1.models import PointNetClassifier

    model = model.eval()
    if isinstance(model, PointNetClassifier) and model_name != "onnx":
        try:
            from pointnet1x1.models.fast import optimize_for_inference
        except ImportError:
            pass
        else:
            return optimize_for_inference(model, precision=precision)
    return plain_model(model, precision)


def plain_model(model: nn.Module, precision: str = "fp32") -> Any:
    """The eval-mode model, under bf16 autocast for ``precision="bf16"``."""
    model = model.eval()
    if precision == "bf16":
        return _Autocast(model)
    return model


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


class _Autocast:
    """Call a model under bf16 autocast on its device; return float32 logits."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.model(x).float()


def _select_features(
    points: np.ndarray, normals: np.ndarray | None, prep: dict[str, Any], name: str
) -> np.ndarray:
    in_channels = int(prep["in_channels"])
    if "normals" in prep["features"]:
        if normals is None:
            raise ValueError(
                f"{name}: the model needs normals (xyz + normals) but the cloud has none"
            )
        points = np.concatenate([points[:, :3], normals], axis=1)
    if points.shape[1] < in_channels:
        raise ValueError(
            f"{name}: the model needs {in_channels} channels per point, got {points.shape[1]}"
        )
    return points[:, :in_channels]


def _z_up_to_y_up(points: np.ndarray) -> np.ndarray:
    """``(x, y, z) -> (x, z, -y)`` on xyz and normals (as the datasets turn OFF files)."""
    out = points.copy()
    for start in (0, 3) if points.shape[1] >= 6 else (0,):
        out[:, start + 1] = points[:, start + 2]
        out[:, start + 2] = -points[:, start + 1]
    return out


class Classifier:
    """Classify point clouds with a trained model and its preprocessing.

    Args:
        model: Maps ``(B, C, N)`` to logits ``(B, K)``.
        class_names: K class names.
        preprocessing: The checkpoint's ``preprocessing`` entry (default: 1024 xyz
            points, see :func:`~pointnet1x1.engine.checkpoint.make_preprocessing`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        precision: ``"fp32"`` or ``"bf16"`` (faster on CPUs with bf16 support).
        model_name: Registered name, used to pick the fast inference path.
        seed: Seeds the point sampling, so a file always gives the same answer.
        input_up_axis: The up axis of the clouds you pass: ``"y"`` (the
            library's convention, the default) or ``"z"`` (e.g. Princeton
            ModelNet OFF files, most scans); ``"z"`` clouds are turned to y up.

    Example:
        >>> clf = Classifier.from_checkpoint("runs/x/checkpoints/best.safetensors")
        >>> clf.predict(["chair.ply"])[0].label
    """

    def __init__(
        self,
        model: nn.Module,
        class_names: Sequence[str],
        *,
        preprocessing: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        model_name: str = "pointnet",
        seed: int = 0,
        input_up_axis: str = "y",
    ) -> None:
        if input_up_axis not in ("y", "z"):
            raise ValueError(f"input_up_axis must be 'y' or 'z', got {input_up_axis!r}")
        self.input_up_axis = input_up_axis
        self.metadata: dict[str, Any] = {}  # the checkpoint's, with from_checkpoint
        self.device = resolve_device(device)
        self.class_names = list(class_names)
        self.preprocessing = dict(preprocessing or make_preprocessing(1024))
        self.precision = precision
        self.seed = seed
        self.model = model.to(self.device).eval()
        self.model_name = model_name
        self._plain = plain_model(self.model, precision)
        self._fast: Any = None  # built on the first call with enough clouds

    @classmethod
    def from_checkpoint(
        cls,
        path: PathLike,
        *,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        input_up_axis: str = "y",
    ) -> Classifier:
        """Load a checkpoint written by ``train`` (or a run folder: its best model)."""
        from pointnet1x1.engine.checkpoint import load_model_checkpoint

        dev = resolve_device(device)
        loaded = load_model_checkpoint(path, map_location=dev)
        meta = loaded.metadata
        clf = cls(
            loaded.model,
            meta["class_names"],
            preprocessing=meta["preprocessing"],
            device=dev,
            precision=precision,
            model_name=meta["model"]["name"],
            input_up_axis=input_up_axis,
        )
        clf.metadata = meta
        return clf

    # -- preprocessing -------------------------------------------------------
    def preprocess(self, cloud: Any, name: str = "cloud") -> np.ndarray:
        """One cloud ``(N, C)`` (array, tensor or file) -> ``(num_points, in_channels)``."""
        from pointnet1x1.data.transforms import normalize_points, sample_points

        prep = self.preprocessing
        if isinstance(cloud, (str, os.PathLike)):
            from pointnet1x1.io import read_points

            name = str(cloud)
            pc = read_points(cloud)
            normals = pc.normals
            points = pc.points
        else:
            points = (
                cloud.detach().cpu().numpy()
                if torch.is_tensor(cloud)
                else np.asarray(cloud)
            )
            if points.ndim != 2 or points.shape[1] < 3:
                raise ValueError(
                    f"{name}: expected points of shape (N, 3+F), got {points.shape}"
                )
            normals = points[:, 3:6] if points.shape[1] >= 6 else None
        points = _select_features(np.asarray(points, np.float32), normals, prep, name)
        if self.input_up_axis == "z" and prep.get("up_axis", "y") == "y":
            points = _z_up_to_y_up(points)
        if not np.isfinite(points).all():
            points = points[np.isfinite(points).all(axis=1)]
        if points.shape[0] == 0:
            raise ValueError(f"{name}: no finite points")
        method = prep.get("sampling", "random")
        if method == "fps" and points.shape[0] < prep["num_points"]:
            method = "random"
        # as the datasets do: normalise the whole cloud, then sample from it
        return sample_points(
            normalize_points(points), int(prep["num_points"]), self.seed, method
        )

    def _batch_inputs(self, x: Any) -> tuple[list[Any], list[str | None]]:
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

    # -- inference -----------------------------------------------------------
    @torch.no_grad()
    def predict_proba(self, x: Any, *, batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``(B, K)`` of every cloud (see :meth:`predict`)."""
        clouds, names = self._batch_inputs(x)
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
        net = self._network(len(arrays))
        out = []
        with _few_threads(len(arrays) < FAST_MIN_CLOUDS and self.device.type == "cpu"):
            for start in range(0, len(arrays), batch_size):
                chunk = np.stack(arrays[start : start + batch_size])  # (B, N, C)
                xb = (
                    torch.from_numpy(chunk).to(self.device).transpose(1, 2).contiguous()
                )
                out.append(torch.softmax(net(xb).float(), dim=1).cpu().numpy())
        return (
            np.concatenate(out)
            if out
            else np.empty((0, len(self.class_names)), np.float32)
        )

    def _network(self, count: int) -> Any:
        """The fast inference model for many clouds; the plain one for a few.

        Building the fast PointNet (folded and pre-packed weights) costs about as
        much as running the plain model on a dozen clouds, so one file is
        classified without it (both agree within 1e-4).
        """
        if self._fast is None and count >= FAST_MIN_CLOUDS:
            self._fast = inference_model(self.model, self.model_name, self.precision)
        return self._fast if self._fast is not None else self._plain

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
        _, names = self._batch_inputs(x)
        return self.to_predictions(
            self.predict_proba(x, batch_size=batch_size), names, top_k
        )

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
            f"Classifier(classes={len(self.class_names)}, num_points={prep['num_points']}, "
            f"features={prep['features']}, device={self.device}, precision={self.precision!r})"
        )


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
