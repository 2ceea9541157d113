"""The metadata document of a checkpoint: what it holds, and its checks.

Layout (``metadata["..."]``)::

    format: "pointnet1x1.checkpoint"     format_version: 1
    model: {"name": "pointnet", "kwargs": {...}}
    class_names: ["airplane", ...]       (part names for part segmenters)
    preprocessing: Preprocessing.to_dict(): {"num_points": 1024, "features":
        ["xyz"], "in_channels": 3, "normalize": "center_unit_sphere",
        "sampling": "random", "up_axis": "z"}  (no up_axis: written y up)
    metrics: {...}      extra: {"task": "cls" | "partseg", "data": ..., "config": ...}
    versions: {"pointnet1x1": ..., "torch": ..., "python": ...}

A checkpoint alone is enough to rebuild the model and run it on a file; the same
document travels inside ONNX and TorchScript exports.
"""

from __future__ import annotations

import json
import os
import platform
import time
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pointnet1x1.engine.preprocessing import Preprocessing
from pointnet1x1.io.errors import InputFileError, check_value

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "build_metadata",
    "task_of",
]

FORMAT_NAME = "pointnet1x1.checkpoint"
FORMAT_VERSION = 1
_META_KEY = "pointnet1x1"


class CheckpointError(InputFileError):
    """A file that is not a usable pointnet1x1 checkpoint (one-line message).

    An :class:`~pointnet1x1.io.errors.InputFileError`: the CLI prints its one line
    and exits with status 1. Give ``path`` to have the (escaped) file name
    prefixed, or a message that already names the file.
    """


def _versions() -> dict[str, str]:
    import torch

    from pointnet1x1 import __version__

    return {
        "pointnet1x1": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Preprocessing):
        return obj.to_dict()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in checkpoint metadata")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


def build_metadata(
    *,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    class_names: Sequence[str],
    preprocessing: Preprocessing | Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata document stored with a checkpoint (see the module docstring)."""
    prep = Preprocessing.from_dict(preprocessing)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name, "kwargs": dict(model_kwargs)},
        "class_names": [str(c) for c in class_names],
        "preprocessing": prep.to_dict(),
        "metrics": dict(metrics or {}),
        "extra": dict(extra or {}),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # round-trip through JSON now, so a bad value fails at save time
    return json.loads(json.dumps(document, default=_json_default))


def _check_metadata(meta: Any, path: Path) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path}: not a pointnet1x1 checkpoint (no pointnet1x1 metadata)"
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        versions = meta.get("versions")
        written = (
            versions.get("pointnet1x1", "unknown")
            if isinstance(versions, dict)
            else "unknown"
        )
        newer = isinstance(version, int) and version > FORMAT_VERSION
        fix = "upgrade pointnet1x1" if newer else "re-export it with a matching version"
        raise CheckpointError(
            f"{path}: checkpoint format version {version} (written by pointnet1x1 "
            f"{written}) but this pointnet1x1 reads version {FORMAT_VERSION}; {fix}"
        )
    for key in ("model", "class_names", "preprocessing"):
        if key not in meta:
            raise CheckpointError(f"{path}: checkpoint metadata lacks {key!r}")
    _check_types(meta, path)
    try:
        Preprocessing.from_dict(meta["preprocessing"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: checkpoint {_first_line(err)}") from None
    return meta


# metadata entries and their types; "extra" entries are checked when present
_TYPES: dict[str, Any] = {
    "model": dict[str, Any], "class_names": list[str], "preprocessing": dict[str, Any],
    "metrics": dict[str, Any], "extra": dict[str, Any], "versions": dict[str, Any],
}  # fmt: skip
_MODEL_TYPES: dict[str, Any] = {"name": str, "kwargs": dict[str, Any]}
_EXTRA_TYPES: dict[str, Any] = {
    "task": str, "config": dict[str, Any], "category_names": list[str],
    "seg_classes": dict[str, list[int]],
}  # fmt: skip


def _check_types(meta: dict[str, Any], path: Path) -> None:
    """Every known entry has its type (``check_value``); the training config's
    values have their :class:`~pointnet1x1.engine.config.TrainConfig` types."""
    checks: list[tuple[Any, Any, str]] = [
        (meta[k], t, k) for k, t in _TYPES.items() if k in meta
    ]
    model, extra = meta.get("model"), meta.get("extra")
    if isinstance(model, dict):
        if "name" not in model:
            raise CheckpointError(f"{path}: checkpoint metadata model lacks 'name'")
        checks += [
            (model[k], t, f"model {k}") for k, t in _MODEL_TYPES.items() if k in model
        ]
    if isinstance(extra, dict):
        checks += [
            (extra[k], t, f"extra {k}") for k, t in _EXTRA_TYPES.items() if k in extra
        ]
        config = extra.get("config")
        if isinstance(config, dict):
            from pointnet1x1.engine.config import TrainConfig

            hints = typing.get_type_hints(TrainConfig)
            checks += [
                (v, hints[k], f"extra config {k}")
                for k, v in config.items()
                if k in hints
            ]
    try:
        for value, annotation, name in checks:
            check_value(value, annotation, name)
    except ValueError as err:
        raise CheckpointError(f"checkpoint metadata: {err}", path) from None
    if not meta["class_names"]:
        raise CheckpointError("checkpoint metadata: class_names is empty", path)


def task_of(metadata: Mapping[str, Any]) -> str:
    """The task of a checkpoint's model: recorded, else its registry entry's, else cls."""
    extra = metadata.get("extra")
    if isinstance(extra, Mapping) and isinstance(extra.get("task"), str):
        return str(extra["task"])
    from pointnet1x1.models import model_info

    try:
        return model_info(str(metadata.get("model", {}).get("name"))).task
    except ValueError:
        return "cls"
