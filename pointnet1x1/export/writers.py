"""Write a classifier as ONNX or TorchScript with its metadata; read the metadata back.

What a deployment needs besides the weights travels inside the file: ONNX
``metadata_props`` ``class_names``, ``preprocessing``, ``up_axis`` (the model's:
inputs must be converted to it) and ``pointnet1x1`` (the whole checkpoint
metadata, JSON); TorchScript the extra file ``pointnet1x1.json``. Each export runs
the parity check (:mod:`.parity`) on the exported bytes before the file is
written, atomically: a model that disagrees leaves no file.

Shape:
    The exported model takes points ``(B, 3+F, N)`` float32, channels-first, with
    dynamic ``B`` and ``N``, and returns logits ``(B, K)``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pointnet1x1._atomic import atomic_write_bytes
from pointnet1x1.engine.formats import describe_kind, file_kind, read_zip_json
from pointnet1x1.engine.preprocessing import Preprocessing, make_preprocessing
from pointnet1x1.export.parity import (
    DEFAULT_TOLERANCE,
    ParityResult,
    _compare,
    _example,
    _export_copy,
    _first_line,
    _in_channels,
    _onnx_session,
    _require,
)

__all__ = [
    "DEFAULT_OPSET",
    "export_checkpoint",
    "export_onnx",
    "export_torchscript",
    "read_onnx_metadata",
    "read_torchscript_metadata",
]

DEFAULT_OPSET = 18
_EXAMPLE_SHAPE = (2, 128)  # (B, N) used while exporting; parity uses others
_TS_EXTRA = "pointnet1x1.json"
_FORMATS = ("onnx", "torchscript")


def _metadata(metadata: Mapping[str, Any] | None, in_channels: int) -> dict[str, Any]:
    meta = json.loads(json.dumps(dict(metadata or {}), default=_json))  # a copy
    if "preprocessing" in meta:
        prep = Preprocessing.from_dict(meta["preprocessing"])
    else:  # the defaults of training
        normals = in_channels >= 6
        extra = in_channels - (6 if normals else 3)
        prep = make_preprocessing(1024, use_normals=normals, extra_channels=extra)
    if prep.in_channels != in_channels:
        raise ValueError(
            f"metadata preprocessing has in_channels={prep.in_channels} but the "
            f"model takes {in_channels}"
        )
    meta["preprocessing"] = prep.to_dict()
    meta.setdefault("class_names", [])
    return meta


def _json(obj: Any) -> Any:
    if isinstance(obj, Preprocessing):
        return obj.to_dict()
    raise TypeError(f"cannot store {type(obj).__name__} in export metadata")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' progress lines, deprecations and optional-op notes."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    in_channels: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityResult | None:
    """Export a classifier to one self-contained ONNX file.

    Args:
        model: A classifier taking ``(B, in_channels, N)`` and returning logits.
        path: Destination ``.onnx`` file (written atomically, weights inside).
        in_channels: Input channels (default ``model.in_channels``).
        metadata: Checkpoint metadata (class names, preprocessing...) to embed.
        opset: ONNX opset version.
        check: Run :func:`check_parity` on the written file.
        tolerance: Largest accepted absolute logit difference.

    Returns:
        The :class:`ParityResult`, or ``None`` when ``check`` is false.

    Raises:
        ParityError: If the exported model disagrees (the file is removed).
    """
    _require("onnx", "onnxscript", "onnxruntime" if check else "onnx")
    import onnx

    channels = _in_channels(model, in_channels)
    meta = _metadata(metadata, channels)
    wrapped = _export_copy(model)
    example = _example(_EXAMPLE_SHAPE[0], channels, _EXAMPLE_SHAPE[1], seed=1)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("num_points")}
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                wrapped,
                (example,),
                dynamo=True,
                input_names=["points"],
                output_names=["logits"],
                dynamic_shapes={"points": dims},
                opset_version=opset,
                verbose=False,
            )
    except Exception as err:  # noqa: BLE001 - exporter errors are many types
        name = type(getattr(wrapped, "model", wrapped)).__name__
        raise ValueError(
            f"torch.onnx could not export {name} with dynamic batch and point "
            f"axes: {type(err).__name__}: {_first_line(err)}"
        ) from None
    assert program is not None  # dynamo=True always returns the program
    proto = program.model_proto
    props = {
        "class_names": json.dumps(meta["class_names"]),
        "preprocessing": json.dumps(meta["preprocessing"]),
        "up_axis": meta["preprocessing"]["up_axis"],
        "pointnet1x1": json.dumps(meta),
        "input": f"points float32 (batch, {channels}, num_points), channels-first",
        "output": "logits float32 (batch, num_classes)",
    }
    onnx.helper.set_model_props(proto, props)
    proto.producer_name = "pointnet1x1"
    data = proto.SerializeToString()
    result = None
    if check:  # before writing: a model that disagrees leaves no file
        session = _onnx_session(data, str(path))
        result = _compare(
            model, "onnx", session, channels, tolerance=tolerance, name=str(path)
        )
    atomic_write_bytes(path, data)
    return result


def export_torchscript(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    in_channels: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityResult | None:
    """Export a classifier to a TorchScript file (traced, eval mode).

    The metadata is stored as the extra file ``pointnet1x1.json``; read it back
    with :func:`read_torchscript_metadata`. Arguments are as for
    :func:`export_onnx`.
    """
    channels = _in_channels(model, in_channels)
    meta = _metadata(metadata, channels)
    wrapped = _export_copy(model)
    example = _example(_EXAMPLE_SHAPE[0], channels, _EXAMPLE_SHAPE[1], seed=1)
    buffer = io.BytesIO()
    with _quiet_exporter(), torch.no_grad():
        traced = torch.jit.trace(wrapped, (example,), check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={_TS_EXTRA: json.dumps(meta)})
    result = None
    if check:  # on our own bytes, in memory: a file from a path is never jit-loaded
        with _quiet_exporter():
            loaded = torch.jit.load(io.BytesIO(buffer.getvalue()), map_location="cpu")
        result = _compare(
            model,
            "torchscript",
            loaded.eval(),
            channels,
            tolerance=tolerance,
            name=str(path),
        )
    atomic_write_bytes(path, buffer.getvalue())
    return result


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The pointnet1x1 metadata embedded in an exported ONNX file."""
    _require("onnx")
    import onnx

    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf raises its own types
        raise ValueError(f"{path}: not an ONNX file ({type(err).__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "pointnet1x1" not in props:
        raise ValueError(f"{path}: ONNX file without pointnet1x1 metadata")
    return json.loads(props["pointnet1x1"])


def read_torchscript_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The pointnet1x1 metadata embedded in an exported TorchScript file.

    Read out of the zip archive as bytes: the archive is not loaded (loading
    TorchScript runs its code), and a file that is not a TorchScript archive is
    refused with one line before anything is read.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"TorchScript model not found: {path}")
    kind = file_kind(path)
    if kind != "torchscript":
        raise ValueError(f"{path}: {describe_kind(kind)}, not a TorchScript archive")
    meta = read_zip_json(path, f"/extra/{_TS_EXTRA}")
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: TorchScript file without pointnet1x1 metadata")
    return meta


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: str = "onnx",
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityResult:
    """Load a checkpoint and export its model with its metadata (parity checked)."""
    from pointnet1x1.engine.checkpoint import load_model_checkpoint, task_of

    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    model, meta = load_model_checkpoint(checkpoint)
    if task_of(meta) != "cls":
        raise ValueError(
            f"{checkpoint}: a {task_of(meta)} checkpoint; export writes classifiers "
            "(points in, logits out) only"
        )
    channels = int(meta["preprocessing"]["in_channels"])
    if format == "onnx":
        result = export_onnx(
            model,
            out,
            in_channels=channels,
            metadata=meta,
            opset=opset,
            tolerance=tolerance,
        )
    else:
        result = export_torchscript(
            model, out, in_channels=channels, metadata=meta, tolerance=tolerance
        )
    assert result is not None
    return result
