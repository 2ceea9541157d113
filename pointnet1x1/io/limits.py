"""The resource limits of every reader: largest file, largest declared
allocation, largest decompression ratio.

A file's header declares sizes (points, vertices, an uncompressed length, an
array shape, a zip member's size) that a hostile or corrupt file can set to
anything: a 160-byte PCD can claim 4 GB of points. The readers never allocate
from such a number before checking it here, against what the file can hold.

Defaults, and why:

- ``max_file_bytes`` = 4 GiB (``POINTNET1X1_MAX_FILE_BYTES``): readers hold a file
  in memory while they parse it; 4 GiB is about 300M float32 xyz points, a
  thousand times the largest ModelNet mesh and more than a scan tile, and still
  parses on a 16 GiB machine.
- ``max_alloc_bytes`` = 4 GiB (``POINTNET1X1_MAX_ALLOC_BYTES``): the largest array
  made from a declared size (a decompressed PCD body, an NPZ member, a LAS/E57
  point buffer); as large as the largest file, so any file that may be read fits.
- ``max_ratio`` = 200 (``POINTNET1X1_MAX_RATIO``): decompressed over compressed
  bytes. Point data compresses 1-4x (LZF, deflate, LAZ), mesh text 5-10x, an
  archive's constant arrays more; a deflate bomb reaches 1032x. Outputs under
  1 MiB are never refused for their ratio.

Raise a limit for one block with ``with pointnet1x1.io.limits.override(
max_file_bytes=16 << 30): ...``, for the process with :func:`set_limits`, or for a command with
the environment variable (bytes, optionally with a ``K``/``M``/``G``/``T``
suffix, powers of 1024: ``POINTNET1X1_MAX_FILE_BYTES=16G``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pointnet1x1.io.cloud import PointCloudFileError

__all__ = [
    "Limits",
    "check_allocation",
    "check_inflation",
    "ratio_problem",
    "get_limits",
    "override",
    "set_limits",
]

GiB = 1 << 30
RATIO_FLOOR = 1 << 20  # outputs this small are never refused for their ratio
_ENV = {
    "max_file_bytes": "POINTNET1X1_MAX_FILE_BYTES",
    "max_alloc_bytes": "POINTNET1X1_MAX_ALLOC_BYTES",
    "max_ratio": "POINTNET1X1_MAX_RATIO",
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """Resource limits of the readers (see the module for the defaults' reasons).

    Attributes:
        max_file_bytes: Largest file a reader opens.
        max_alloc_bytes: Largest buffer made from a size declared in a file.
        max_ratio: Largest decompressed / compressed size ratio.
    """

    max_file_bytes: int = 4 * GiB
    max_alloc_bytes: int = 4 * GiB
    max_ratio: float = 200.0

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_alloc_bytes", "max_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"limit {name} must be a number, got {value!r}")
            if not value > 0:
                raise ValueError(f"limit {name} must be positive, got {value!r}")


_override: contextvars.ContextVar[Limits | None] = contextvars.ContextVar(
    "pointnet1x1_limits", default=None
)
_process: Limits | None = None


def _parse_env(name: str, text: str, is_ratio: bool) -> float:
    if is_ratio:
        try:
            return float(text)
        except ValueError:
            pass
    else:
        match = _SIZE.fullmatch(text)
        if match:
            unit = match.group(2).upper()
            scale = 1024 ** ("KMGT".index(unit) + 1) if unit else 1
            return int(float(match.group(1)) * scale)
    example = "200" if is_ratio else "8G or 8589934592"
    raise ValueError(
        f"environment variable {name}={text!r} is not a valid limit (e.g. {example})"
    )


def _from_env() -> Limits:
    values: dict[str, float] = {}
    for field, var in _ENV.items():
        text = os.environ.get(var)
        if text:
            values[field] = _parse_env(var, text, field == "max_ratio")
    return Limits(**values)  # type: ignore[arg-type]


def get_limits() -> Limits:
    """The limits in force: an :func:`override` block, else :func:`set_limits`, else
    the environment variables, else the defaults."""
    active = _override.get()
    if active is not None:
        return active
    return _process if _process is not None else _from_env()


def set_limits(**changes: Any) -> Limits:
    """Change the limits for the whole process (keyword names of :class:`Limits`);
    ``set_limits()`` with no argument goes back to the environment and defaults."""
    global _process
    _process = dataclasses.replace(_from_env(), **changes) if changes else None
    return get_limits()


@contextlib.contextmanager
def override(**changes: Any) -> Iterator[Limits]:
    """Use other limits inside a ``with`` block (this thread / task only).

    Example:
        ``with override(max_file_bytes=16 << 30): cloud = read_points("big.ply")``
    """
    token = _override.set(dataclasses.replace(get_limits(), **changes))
    try:
        yield get_limits()
    finally:
        _override.reset(token)


def human_bytes(size: float) -> str:
    """``1536`` -> ``'1.5 KiB'``: sizes in messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _hint(field: str) -> str:
    return (
        f"raise the limit with {_ENV[field]}=... or "
        f"pointnet1x1.io.limits.override({field}=...) if the file is genuine"
    )


def check_file_size(size: int, what: str = "file") -> None:
    """Refuse a file larger than ``max_file_bytes`` (PointCloudFileError, no path)."""
    limit = get_limits().max_file_bytes
    if size > limit:
        raise PointCloudFileError(
            f"{what} is {human_bytes(size)}, larger than the readers' limit of "
            f"{human_bytes(limit)}; {_hint('max_file_bytes')}"
        )


def check_allocation(nbytes: int, what: str) -> None:
    """Refuse a buffer of ``nbytes`` declared by a file above ``max_alloc_bytes``."""
    limit = get_limits().max_alloc_bytes
    if nbytes < 0:
        raise PointCloudFileError(f"{what}: negative size {nbytes} declared")
    if nbytes > limit:
        raise PointCloudFileError(
            f"{what} would need {human_bytes(nbytes)}, above the limit of "
            f"{human_bytes(limit)} for one array; {_hint('max_alloc_bytes')}"
        )


def ratio_problem(nbytes: int, compressed: int, what: str) -> str | None:
    """Why ``nbytes`` decoded from ``compressed`` bytes exceed the ratio limit, or
    None when they do not (outputs under 1 MiB always pass)."""
    ratio = get_limits().max_ratio
    if nbytes > RATIO_FLOOR and nbytes > ratio * max(compressed, 0):
        return (
            f"{what}: {human_bytes(nbytes)} declared from {compressed} compressed "
            f"bytes, a ratio above the limit of {ratio:g} (corrupt header or a "
            f"decompression bomb); {_hint('max_ratio')}"
        )
    return None


def check_inflation(nbytes: int, compressed: int, what: str) -> None:
    """Refuse ``nbytes`` decoded from ``compressed`` bytes beyond the ratio limit
    (or above ``max_alloc_bytes``); outputs under 1 MiB always pass the ratio."""
    check_allocation(nbytes, what)
    problem = ratio_problem(nbytes, compressed, what)
    if problem is not None:
        raise PointCloudFileError(problem)
