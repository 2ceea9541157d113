"""Self-describing, safe checkpoints.

A **model checkpoint** is one safetensors file: the weights, and in the header's
metadata a JSON document with everything needed to rebuild the model and run it
on a file (model name and constructor arguments, class names, preprocessing,
metrics, training config, library and torch versions). Loading it never unpickles
anything.

A **training state** (optimizer, RNG states, epoch, history, best epoch, and the
model's weights and metadata again) is a ``torch.save`` file of tensors and plain
containers, loaded with ``torch.load(weights_only=True)``; it is what ``--resume``
reads. :func:`load_model_checkpoint` accepts both, so any file that ``train``
writes can be given to ``classify`` and ``eval``.

Every file is recognised by its bytes first (:mod:`~pointnet1x1.engine.formats`);
anything else is refused with one line and never executed: a pickle, a
TorchScript archive, a file that is not a checkpoint, another format version.

The metadata document is :mod:`~pointnet1x1.engine.metadata`'s.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from pointnet1x1._atomic import atomic_write, atomic_write_bytes
from pointnet1x1.engine.formats import describe_kind, file_kind
from pointnet1x1.engine.metadata import (
    FORMAT_VERSION,
    CheckpointError,
    _check_metadata,
    _first_line,
    build_metadata,
    task_of,
)
from pointnet1x1.engine.preprocessing import Preprocessing, make_preprocessing
from pointnet1x1.engine.weights import (
    TensorSpec,
    build_on_meta,
    check_against_model,
    check_finite,
    read_safetensors_header,
    safetensors_length_problem,
    specs_of,
)

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "LoadedCheckpoint",
    "build_metadata",
    "load_model_checkpoint",
    "load_training_state",
    "make_preprocessing",
    "read_checkpoint_metadata",
    "save_model_checkpoint",
    "save_training_state",
    "task_of",
]

_META_KEY = "pointnet1x1"
TRAIN_STATE_FORMAT = "pointnet1x1.train_state"


class LoadedCheckpoint(NamedTuple):
    """A model rebuilt from a checkpoint, in eval mode, and the checkpoint's metadata."""

    model: nn.Module
    metadata: dict[str, Any]


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
    preprocessing: Preprocessing | Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata to a safetensors file, atomically.

    Args:
        path: Destination, conventionally ``*.safetensors``.
        model: The model (a ``DistributedDataParallel`` wrapper is unwrapped).
        model_name: Its registered name, for :func:`~pointnet1x1.models.create_model`.
        model_kwargs: The constructor arguments (JSON-serialisable).
        class_names: Class names, index ``i`` for logit ``i`` (part names for a
            part segmenter).
        preprocessing: A :class:`Preprocessing` (or its dict form).
        metrics: Optional figures to remember (validation/test accuracy...).
        extra: Optional more metadata (task, training config, data root...).

    Returns:
        The path written.
    """
    from safetensors.torch import save

    metadata = build_metadata(
        model_name=model_name, model_kwargs=model_kwargs, class_names=class_names,
        preprocessing=preprocessing, metrics=metrics, extra=extra,
    )  # fmt: skip
    header = {"format": "pt", _META_KEY: json.dumps(metadata)}
    return atomic_write_bytes(path, save(_cpu_state_dict(model), metadata=header))


def _open_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        best = path / "checkpoints" / "best.safetensors"
        if best.exists():  # a run folder: take its validation-best model
            return best
        # a user mistake (exit code 2), not a bad file
        raise IsADirectoryError(
            f"{path} is a folder, not a checkpoint file (nor a run folder with "
            "checkpoints/best.safetensors)"
        )
    return path


def _read_safetensors_meta(path: Path) -> tuple[dict[str, Any], dict[str, TensorSpec]]:
    """The checked metadata and the tensor specs of a safetensors checkpoint, from
    its header alone (bounded; see :mod:`~pointnet1x1.engine.weights`)."""
    header, specs = read_safetensors_header(path)
    raw = header.get(_META_KEY)
    if raw is None:
        raise CheckpointError(
            f"{path}: a safetensors file without pointnet1x1 metadata, not a "
            "pointnet1x1 checkpoint (convert it with `pointnet1x1 convert`)"
        )
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"its pointnet1x1 metadata is not valid JSON ({_first_line(err)})", path
        ) from None
    return _check_metadata(document, path), specs


def _read_tensors(path: Path, device: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{path}: unreadable safetensors checkpoint ({_first_line(err)})"
        ) from None


def _refusal(path: Path, kind: str) -> CheckpointError:
    if kind == "pickle":
        why = "refusing to unpickle it (it could run code)"
    elif kind == "torchscript":
        why = "TorchScript runs the archive's code when loaded, so it is never loaded"
    elif kind == "onnx":
        why = "use Classifier.from_onnx, or pass it to `pointnet1x1 classify`"
    elif (problem := safetensors_length_problem(path)) is not None:
        return CheckpointError(problem, path)
    else:
        why = "expected a .safetensors model checkpoint or a training state written by `pointnet1x1 train`"
    return CheckpointError(
        f"{path}: {describe_kind(kind)}, not a pointnet1x1 checkpoint; {why}"
    )


def load_training_state(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a training-state file with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: If the file is not a training state (a pickle that would
            run code is refused by ``weights_only`` and never executed).
    """
    path = _open_path(path)
    kind = file_kind(path)
    if kind != "torch":
        raise CheckpointError(
            f"{path}: {describe_kind(kind)}, not a pointnet1x1 training state"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure is "not loadable", one line
        raise CheckpointError(
            f"{path}: refused to load (only tensors and plain containers are "
            f"accepted, nothing is executed): {_first_line(err)[:200]}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(
            f"{path}: a torch file but not a pointnet1x1 training state"
        )
    try:
        meta = json.loads(state.get("metadata", "null"))
    except (TypeError, json.JSONDecodeError):
        meta = None
    _check_metadata(meta, path)
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
    kind = file_kind(path)
    if kind == "safetensors":
        return _read_safetensors_meta(path)[0]
    if kind == "torch":
        return json.loads(load_training_state(path)["metadata"])
    raise _refusal(path, kind)


def load_model_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint, load its weights, and put it in eval mode.

    Args:
        path: A model checkpoint (``.safetensors``), a training state, or a run
            folder (its ``checkpoints/best.safetensors`` is used).
        map_location: Device for the weights and the model.

    Nothing is allocated from the file's own numbers before they are checked:
    the safetensors header is read with bounded sizes, the metadata's values are
    type-checked, the tensor names and shapes are compared with the model the
    metadata describes (built on the ``meta`` device), and NaN or infinite
    weights are refused (:mod:`~pointnet1x1.engine.weights`).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If it is not a pointnet1x1 checkpoint, has another format
            version, wrongly typed metadata, a header that does not fit the file,
            weights that do not fit its model (naming the first tensor that
            differs) or non-finite weights (naming the tensor).
    """
    from pointnet1x1.models import create_model

    path = _open_path(path)
    kind = file_kind(path)
    if kind == "safetensors":
        meta, specs = _read_safetensors_meta(path)
    elif kind == "torch":
        state = load_training_state(path, map_location=map_location)
        meta, tensors = json.loads(state["metadata"]), state["model"]
        if not isinstance(tensors, dict) or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in tensors.items()
        ):
            raise CheckpointError("training state's model is not a state dict", path)
        specs = specs_of(tensors)
    else:
        raise _refusal(path, kind)
    name, kwargs = str(meta["model"]["name"]), meta["model"].get("kwargs", {})
    # names and shapes agree with the model the metadata describes (built on the
    # meta device, so no size the metadata claims is allocated) before any load
    check_against_model(specs, build_on_meta(name, kwargs, path), name, path)
    if kind == "safetensors":
        tensors = _read_tensors(path, str(torch.device(map_location)))
    check_finite(tensors, path)
    model = create_model(name, **kwargs)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        lines = str(err).strip().splitlines()
        detail = " ".join(line.strip() for line in lines[:2])[:300]
        raise CheckpointError(
            f"{path}: weights do not fit model {name!r}: {detail}"
        ) from None
    return LoadedCheckpoint(model.to(map_location).eval(), meta)
