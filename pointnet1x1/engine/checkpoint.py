"""Self-describing, safe checkpoints.

A **model checkpoint** is one safetensors file: the weights, and in the header's
metadata a JSON document with everything needed to rebuild the model and classify
a file with it (model name and constructor arguments, class names, preprocessing,
metrics, training config, library and torch versions). Loading it never unpickles
anything.

A **training state** (optimizer, schedule, RNG states, epoch, best metric, and the
model's weights and metadata again) is a ``torch.save`` file of tensors and plain
containers, loaded with ``torch.load(weights_only=True)``; it is what ``--resume``
reads. :func:`load_model_checkpoint` accepts both, so any file that ``train``
writes can be given to ``classify`` and ``eval``.

Anything else is refused with one line and never executed: a pickle that would run
code, a file that is not a checkpoint, a checkpoint of another format version.

Metadata layout (``metadata["..."]``)::

    format: "pointnet1x1.checkpoint"     format_version: 1
    model: {"name": "pointnet", "kwargs": {...}}
    class_names: ["airplane", ...]
    preprocessing: {"num_points": 1024, "normalize": "center_unit_sphere",
                    "features": ["xyz"] | ["xyz", "normals"], "in_channels": 3,
                    "up_axis": "y", "sampling": "random"}
    metrics: {...}      extra: {...} (training config, data root, classes, task)
    versions: {"pointnet1x1": ..., "torch": ..., "python": ...}
"""

from __future__ import annotations

import io
import json
import os
import platform
import struct
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from pointnet1x1._atomic import atomic_write, atomic_write_bytes

FORMAT_NAME = "pointnet1x1.checkpoint"
FORMAT_VERSION = 1
TRAIN_STATE_FORMAT = "pointnet1x1.train_state"
_META_KEY = "pointnet1x1"
_NORMALIZE = "center_unit_sphere"
_PREPROCESSING_KEYS = ("num_points", "normalize", "features", "in_channels")


class CheckpointError(ValueError):
    """A file that is not a usable pointnet1x1 checkpoint (one-line message)."""


class LoadedCheckpoint(NamedTuple):
    """A model rebuilt from a checkpoint, in eval mode, and the checkpoint's metadata."""

    model: nn.Module
    metadata: dict[str, Any]


def make_preprocessing(
    num_points: int,
    *,
    use_normals: bool = False,
    up_axis: str = "y",
    sampling: str = "random",
    extra_channels: int = 0,
) -> dict[str, Any]:
    """The ``preprocessing`` entry of a checkpoint's metadata.

    Args:
        num_points: Points per cloud fed to the model.
        use_normals: Whether the input features are xyz plus unit normals.
        up_axis: The data's up axis (``"y"`` for ModelNet), used for rotations.
        sampling: How clouds are reduced to ``num_points`` (``"random"``/``"fps"``).
        extra_channels: Further per-point features after xyz (and normals).
    """
    if num_points <= 0:
        raise ValueError(f"num_points must be positive, got {num_points}")
    features = ["xyz", "normals"] if use_normals else ["xyz"]
    return {
        "num_points": int(num_points),
        "normalize": _NORMALIZE,
        "features": features,
        "in_channels": 3 * len(features) + int(extra_channels),
        "up_axis": up_axis,
        "sampling": sampling,
    }


def _versions() -> dict[str, str]:
    from pointnet1x1 import __version__

    return {
        "pointnet1x1": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON now, so a bad value fails at save time."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in checkpoint metadata")


def build_metadata(
    *,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    class_names: Sequence[str],
    preprocessing: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata document stored with a checkpoint (see the module docstring)."""
    missing = [k for k in _PREPROCESSING_KEYS if k not in preprocessing]
    if missing:
        raise ValueError(
            f"preprocessing lacks {missing}; build it with make_preprocessing()"
        )
    return _jsonable(
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model": {"name": model_name, "kwargs": dict(model_kwargs)},
            "class_names": [str(c) for c in class_names],
            "preprocessing": dict(preprocessing),
            "metrics": dict(metrics or {}),
            "extra": dict(extra or {}),
            "versions": _versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )


def _cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    module = getattr(module, "_orig_mod", module)  # unwrap torch.compile
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_model_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    class_names: Sequence[str],
    preprocessing: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata to a safetensors file, atomically.

    Args:
        path: Destination, conventionally ``*.safetensors``.
        model: The model (a ``DistributedDataParallel`` wrapper is unwrapped).
        model_name: Its registered name, for :func:`~pointnet1x1.models.create_model`.
        model_kwargs: The constructor arguments (JSON-serialisable).
        class_names: Class names, index ``i`` for logit ``i``.
        preprocessing: From :func:`make_preprocessing`.
        metrics: Optional figures to remember (validation/test accuracy...).
        extra: Optional more metadata (training config, data root, task...).

    Returns:
        The path written.
    """
    from safetensors.torch import save

    metadata = build_metadata(
        model_name=model_name,
        model_kwargs=model_kwargs,
        class_names=class_names,
        preprocessing=preprocessing,
        metrics=metrics,
        extra=extra,
    )
    header = {"format": "pt", _META_KEY: json.dumps(metadata)}
    return atomic_write_bytes(path, save(_cpu_state_dict(model), metadata=header))


def _kind(path: Path) -> str:
    """``"safetensors"``, ``"zip"`` (torch.save), ``"pickle"`` or ``"unknown"``."""
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if len(head) == 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n <= size - 8:
            return "safetensors"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def _check_metadata(meta: Any, path: Path) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path}: not a pointnet1x1 checkpoint (no pointnet1x1 metadata)"
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        written = meta.get("versions", {}).get("pointnet1x1", "unknown")
        newer = isinstance(version, int) and version > FORMAT_VERSION
        fix = "upgrade pointnet1x1" if newer else "re-export it with a matching version"
        raise CheckpointError(
            f"{path}: checkpoint format version {version} (written by pointnet1x1 "
            f"{written}) but this pointnet1x1 reads version {FORMAT_VERSION}; {fix}"
        )
    for key in ("model", "class_names", "preprocessing"):
        if key not in meta:
            raise CheckpointError(f"{path}: checkpoint metadata lacks {key!r}")
    missing = [k for k in _PREPROCESSING_KEYS if k not in meta["preprocessing"]]
    if missing:
        raise CheckpointError(f"{path}: checkpoint preprocessing lacks {missing}")
    return meta


def _open_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        best = path / "checkpoints" / "best.safetensors"
        if best.exists():  # a run folder: take its validation-best model
            return best
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    return path


def _read_safetensors(
    path: Path, device: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            header = f.metadata() or {}
            raw = header.get(_META_KEY)
            if raw is None:
                raise CheckpointError(
                    f"{path}: a safetensors file without pointnet1x1 metadata, "
                    "not a pointnet1x1 checkpoint (convert it with `pointnet1x1 convert`)"
                )
            meta = _check_metadata(json.loads(raw), path)
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, json.JSONDecodeError, OSError) as err:
        first = (
            str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        )
        raise CheckpointError(
            f"{path}: unreadable safetensors checkpoint ({first})"
        ) from None
    return meta, tensors


def load_training_state(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a training-state file with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: If the file is not a training state (a pickle that would
            run code is refused by ``weights_only`` and never executed).
    """
    path = _open_path(path)
    if _kind(path) != "zip":
        raise CheckpointError(f"{path}: not a pointnet1x1 training state")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure is "not loadable", one line
        first = (
            str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        )
        raise CheckpointError(
            f"{path}: refused to load (only tensors and plain containers are "
            f"accepted, nothing is executed): {first[:200]}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(
            f"{path}: a torch file but not a pointnet1x1 training state"
        )
    _check_metadata(json.loads(state.get("metadata", "null")), path)
    return state


def save_training_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write a training state (tensors and plain containers only), atomically.

    ``state`` must hold ``"metadata"`` (the model checkpoint's metadata as a dict)
    and ``"model"`` (a state dict); the rest is free (optimizer, epoch, RNG...).
    """
    payload = dict(state)
    payload["format"] = TRAIN_STATE_FORMAT
    if isinstance(payload.get("metadata"), dict):
        payload["metadata"] = json.dumps(payload["metadata"])
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a model checkpoint or training state, without building the model."""
    path = _open_path(path)
    kind = _kind(path)
    if kind == "safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                raw = (f.metadata() or {}).get(_META_KEY)
        except (SafetensorError, OSError) as err:
            raise CheckpointError(
                f"{path}: unreadable safetensors checkpoint ({err})"
            ) from None
        if raw is None:
            raise CheckpointError(
                f"{path}: safetensors file without pointnet1x1 metadata"
            )
        return _check_metadata(json.loads(raw), path)
    if kind == "zip":
        return json.loads(load_training_state(path)["metadata"])
    raise _refusal(path, kind)


def _refusal(path: Path, kind: str) -> CheckpointError:
    if kind == "pickle":
        return CheckpointError(
            f"{path}: a plain pickle, not a pointnet1x1 checkpoint; refusing to unpickle "
            "it (it could run code)"
        )
    return CheckpointError(
        f"{path}: not a pointnet1x1 checkpoint (expected a .safetensors model "
        "checkpoint or a training state written by `pointnet1x1 train`)"
    )


def load_model_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint, load its weights, and put it in eval mode.

    Args:
        path: A model checkpoint (``.safetensors``), a training state, or a run
            folder (its ``checkpoints/best.safetensors`` is used).
        map_location: Device for the weights and the model.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If it is not a pointnet1x1 checkpoint, has another format
            version, or its weights do not fit its model.
    """
    from pointnet1x1.models import create_model

    path = _open_path(path)
    kind = _kind(path)
    device = str(torch.device(map_location))
    if kind == "safetensors":
        meta, tensors = _read_safetensors(path, device)
    elif kind == "zip":
        state = load_training_state(path, map_location=map_location)
        meta, tensors = json.loads(state["metadata"]), state["model"]
    else:
        raise _refusal(path, kind)
    name, kwargs = meta["model"]["name"], meta["model"].get("kwargs", {})
    try:
        model = create_model(name, **kwargs)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: cannot rebuild model {name!r}: {err}") from None
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:2])[:300]
        raise CheckpointError(
            f"{path}: weights do not fit model {name!r}: {detail}"
        ) from None
    return LoadedCheckpoint(model.to(map_location).eval(), meta)
