"""What a model file is, told from its bytes before any loader touches it.

Loaders differ in what they may do with a hostile file: safetensors and
``torch.load(weights_only=True)`` read tensors only, onnxruntime parses a
protobuf graph, but ``torch.jit.load`` runs the archive's TorchScript code (its
``__setstate__`` methods) while loading, and a plain pickle runs whatever it
names. So every file a user hands in is sniffed here first, and each loader is
called only on the kind it is for; TorchScript archives and plain pickles are
never loaded from a user's path.

Kinds (:func:`file_kind`):
    ``"safetensors"``  8-byte header length, then a JSON header
    ``"torch"``        a ``torch.save`` zip archive (``data.pkl``, no code)
    ``"torchscript"``  a zip archive with TorchScript code (``constants.pkl``, ``code/``)
    ``"zip"``          any other zip archive (or one whose directory is broken)
    ``"onnx"``         an ONNX ``ModelProto`` (protobuf, field 1 ``ir_version`` first)
    ``"pickle"``       a plain pickle (protocol 2+)
    ``"unknown"``      anything else (empty, text, ...)
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "describe_kind", "file_kind", "read_zip_json"]

KINDS = ("safetensors", "torch", "torchscript", "zip", "onnx", "pickle", "unknown")
_MAX_MEMBERS = 100_000  # a zip directory larger than this is not one of ours
_MAX_JSON = 16 * 2**20  # largest metadata document read out of an archive

_DESCRIPTIONS = {
    "safetensors": "a safetensors file",
    "torch": "a torch.save archive",
    "torchscript": "a TorchScript archive",
    "zip": "a zip archive that is neither a torch.save nor a TorchScript file",
    "onnx": "an ONNX model",
    "pickle": "a plain pickle",
    "unknown": "not a model file (neither safetensors, torch.save, TorchScript nor ONNX)",
}


def describe_kind(kind: str) -> str:
    """A few words for error messages (``"a TorchScript archive"``)."""
    return _DESCRIPTIONS.get(kind, kind)


def file_kind(path: str | os.PathLike[str]) -> str:
    """The kind of the file at ``path`` (see the module docstring), from its bytes.

    Raises:
        FileNotFoundError: If ``path`` is not a regular file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"not a file: {path}")
    with open(path, "rb") as f:
        head = f.read(16)
    size = path.stat().st_size
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n <= size - 8:
            return "safetensors"
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(path)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if _looks_like_onnx(head):
        return "onnx"
    return "unknown"


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return "zip"
    if len(infos) > _MAX_MEMBERS:
        return "zip"
    names = [i.filename for i in infos]
    # as torch's own test (_is_torchscript_zip): TorchScript archives hold constants
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "torch"
    return "zip"


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _looks_like_onnx(head: bytes) -> bool:
    """A ModelProto starts with ``ir_version`` (field 1, varint), then another field."""
    if head[:1] != b"\x08":
        return False
    parsed = _varint(head, 1)
    if parsed is None:
        return False
    version, pos = parsed
    if not 1 <= version <= 100 or pos >= len(head):
        return False
    field, wire = head[pos] >> 3, head[pos] & 7
    return 1 < field <= 30 and wire in (0, 2)


def read_zip_json(path: str | os.PathLike[str], suffix: str) -> Any:
    """The JSON document stored as the member ending in ``suffix``, or ``None``.

    Reads the member's bytes with :mod:`zipfile` only (nothing is unpickled or
    run); a member larger than 16 MiB or not valid JSON is a ``ValueError``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if i.filename.endswith(suffix)]
            if not infos:
                return None
            if infos[0].file_size > _MAX_JSON:
                raise ValueError(
                    f"{path}: {infos[0].filename} is {infos[0].file_size} bytes, "
                    f"more than the {_MAX_JSON} a metadata document may have"
                )
            raw = archive.read(infos[0])
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: unreadable zip archive ({err})") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: {suffix} is not valid JSON ({err})") from None
