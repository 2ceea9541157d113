"""Checks of stored weights before they reach a model: header, names, shapes, values.

A checkpoint is untrusted input. Its safetensors header declares a length and,
per tensor, a dtype, a shape and a byte range; its metadata declares the model
(name and constructor arguments) the tensors are for. None of these is believed
until checked, in this order, so that nothing large is allocated from a number
the file made up:

1. :func:`read_safetensors_header`: the 8-byte little-endian header length fits
   the file (and the limits of :mod:`pointnet1x1.io.limits`), the header is a
   JSON object, every tensor's dtype is known and its byte range lies inside the
   file and matches its dtype and shape;
2. :func:`check_against_model`: the model the metadata names is built on the
   ``meta`` device (no memory), and the stored tensor names, shapes and dtype
   kinds must be exactly its state dict's, else one line names the first tensor
   that differs;
3. :func:`check_finite`: after loading, no floating tensor holds NaN or infinity.

Every refusal is a :class:`~pointnet1x1.engine.metadata.CheckpointError` (an
:class:`~pointnet1x1.io.errors.InputFileError`: one line, exit code 1).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pointnet1x1.engine.metadata import CheckpointError

__all__ = [
    "TensorSpec",
    "build_on_meta",
    "check_against_model",
    "check_finite",
    "read_safetensors_header",
    "safetensors_length_problem",
    "specs_of",
]

# safetensors' own bound on the header (its Rust reader refuses larger ones)
MAX_HEADER_BYTES = 100_000_000
# dtype -> (bytes per element, kind); kinds must agree with the model's tensors
_DTYPES: dict[str, tuple[int, str]] = {
    "BOOL": (1, "bool"), "U8": (1, "int"), "I8": (1, "int"), "I16": (2, "int"),
    "U16": (2, "int"), "I32": (4, "int"), "U32": (4, "int"), "I64": (8, "int"),
    "U64": (8, "int"), "F8_E4M3": (1, "float"), "F8_E5M2": (1, "float"),
    "F16": (2, "float"), "BF16": (2, "float"), "F32": (4, "float"),
    "F64": (8, "float"),
}  # fmt: skip


class TensorSpec(NamedTuple):
    """What a stored tensor claims to be: its dtype kind and shape."""

    kind: str  # "float", "int" or "bool"
    shape: tuple[int, ...]


def _shape_text(shape: tuple[int, ...]) -> str:
    return (
        "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    )


def safetensors_length_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a file that starts like a safetensors file (a length, then ``{``) is
    not one: its declared header length exceeds the file; None otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = os.stat(path).st_size
    except OSError:
        return None
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (n,) = struct.unpack("<Q", head[:8])
    if n > size - 8:
        return (
            f"safetensors header length {n} bytes is larger than the file "
            f"({size} bytes): a truncated or corrupt checkpoint"
        )
    return None


def _tensor_spec(name: str, entry: Any, body: int, path: Path) -> TensorSpec:
    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"safetensors header: tensor {name!r} {problem}", path)

    if not isinstance(entry, dict):
        raise bad(f"is described by {type(entry).__name__}, not an object")
    dtype, shape, offsets = (entry.get(k) for k in ("dtype", "shape", "data_offsets"))
    if dtype not in _DTYPES:
        raise bad(f"has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise bad(f"has an invalid shape {shape!r}")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= body
    ):
        raise bad(f"has data offsets {offsets!r} outside the file's {body} data bytes")
    itemsize, kind = _DTYPES[str(dtype)]
    need = math.prod(shape) * itemsize
    if offsets[1] - offsets[0] != need:
        raise bad(
            f"of dtype {dtype} and shape {_shape_text(tuple(shape))} needs {need} "
            f"bytes but its data offsets span {offsets[1] - offsets[0]}"
        )
    return TensorSpec(kind, tuple(shape))


def read_safetensors_header(
    path: str | os.PathLike[str],
) -> tuple[dict[str, str], dict[str, TensorSpec]]:
    """The ``__metadata__`` strings and the tensor specs of a safetensors file,
    every size checked against the file before anything is allocated.

    Raises:
        CheckpointError: The header does not fit the file or the limits, is not
            a JSON object, or describes a tensor that the file cannot hold.
    """
    from pointnet1x1.io.limits import get_limits, human_bytes

    path = Path(path)
    size = path.stat().st_size
    limits = get_limits()
    if size > limits.max_file_bytes:
        raise CheckpointError(
            f"file is {human_bytes(size)}, above the limit of "
            f"{human_bytes(limits.max_file_bytes)} (raise POINTNET1X1_MAX_FILE_BYTES "
            "if it is genuine)",
            path,
        )
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError("too short for a safetensors file", path)
        (n,) = struct.unpack("<Q", head)
        problem = safetensors_length_problem(path)
        if problem is not None:
            raise CheckpointError(problem, path)
        if n > min(MAX_HEADER_BYTES, limits.max_alloc_bytes):
            raise CheckpointError(
                f"safetensors header of {human_bytes(n)} is larger than the "
                f"{human_bytes(MAX_HEADER_BYTES)} a header may have",
                path,
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"safetensors header is not valid JSON ({err.__class__.__name__}: "
            f"{str(err)[:120]})",
            path,
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(
            f"safetensors header is {type(header).__name__}, not a JSON object", path
        )
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        raise CheckpointError(
            "safetensors __metadata__ must map strings to strings", path
        )
    body = size - 8 - n
    specs = {str(k): _tensor_spec(str(k), v, body, path) for k, v in header.items()}
    return meta, specs


def build_on_meta(name: str, kwargs: Mapping[str, Any], path: Path) -> Any:
    """The model the metadata names, built on the ``meta`` device: its parameter
    shapes without their memory, whatever sizes the metadata claims."""
    import torch

    from pointnet1x1.models import create_model

    try:
        with torch.device("meta"):
            return create_model(name, **kwargs)
    except Exception as err:  # noqa: BLE001 - any failure is "cannot rebuild", one line
        text = str(err).strip().splitlines()
        detail = text[0][:300] if text else type(err).__name__
        raise CheckpointError(
            f"cannot rebuild model {name!r}: {detail}", path
        ) from None


def specs_of(tensors: Mapping[str, Any]) -> dict[str, TensorSpec]:
    """The :class:`TensorSpec` of loaded tensors (a state dict)."""
    out = {}
    for key, t in tensors.items():
        kind = (
            "bool"
            if str(t.dtype) == "torch.bool"
            else ("float" if t.dtype.is_floating_point else "int")
        )
        out[str(key)] = TensorSpec(kind, tuple(t.shape))
    return out


def check_against_model(
    stored: Mapping[str, TensorSpec], model: Any, name: str, path: Path
) -> None:
    """Refuse stored tensors whose names, shapes or dtype kinds are not exactly
    those of ``model``'s state dict; the message names the first that differs."""
    expected = specs_of(model.state_dict())

    def misfit(problem: str) -> CheckpointError:
        return CheckpointError(
            f"weights do not fit model {name!r} built from the metadata: {problem}",
            path,
        )

    for key, want in expected.items():
        got = stored.get(key)
        if got is None:
            raise misfit(f"tensor {key!r} (shape {_shape_text(want.shape)}) is missing")
        if got.shape != want.shape:
            raise misfit(
                f"tensor {key!r} has shape {_shape_text(got.shape)}, the model's is "
                f"{_shape_text(want.shape)}"
            )
        if got.kind != want.kind:
            raise misfit(f"tensor {key!r} holds {got.kind}s, the model's {want.kind}s")
    extra = [k for k in stored if k not in expected]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise misfit(f"tensor {extra[0]!r}{more} is not part of the model")


def check_finite(tensors: Mapping[str, Any], path: Path) -> None:
    """Refuse a floating tensor holding NaN or infinity, naming it."""
    import torch

    for key, t in tensors.items():
        if t.dtype.is_floating_point and t.numel():
            finite = torch.isfinite(t)
            if not bool(finite.all()):
                bad = int((~finite).sum())
                raise CheckpointError(
                    f"tensor {key!r} holds {bad} NaN or infinite value(s) of "
                    f"{t.numel()}: a corrupt checkpoint or a diverged run",
                    path,
                )
