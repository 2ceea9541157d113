"""Opening input files safely.

Every reader opens its file through :func:`open_input` or :func:`read_input`:

- the path must name a regular file once symlinks are followed: a directory, a
  FIFO (named pipe), a socket, a character or block device (a symlink to
  ``/dev/zero``) is refused before a byte is read;
- the file is opened with ``O_NONBLOCK`` and checked again with ``fstat`` on the
  open descriptor, so a FIFO swapped in after the check cannot hang the reader;
- a file above :attr:`~pointnet1x1.io.limits.Limits.max_file_bytes` is refused,
  and no more than that is read, even from files whose size the system does not
  report (``/proc``).

Walking folders for such files is :mod:`pointnet1x1.io.walk`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO

from pointnet1x1.io.cloud import PathLike, PointCloudFileError
from pointnet1x1.io.errors import display_path
from pointnet1x1.io.limits import check_file_size, get_limits

__all__ = ["check_file", "open_input", "read_input"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _kind(mode: int) -> str | None:
    """None for a regular file, else what the file is."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _not_regular(path: Path, kind: str, what: str) -> PointCloudFileError:
    link = ""
    if path.is_symlink():
        link = f" (a symlink to {display_path(os.readlink(path))})"
    if kind == "a directory":
        return PointCloudFileError(f"is a directory{link}, expected {what}", path)
    return PointCloudFileError(
        f"is {kind}{link}, not a regular file; expected {what}", path
    )


def _stat(path: Path) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            target = display_path(os.readlink(path))
            raise FileNotFoundError(
                f"{display_path(path)}: broken symlink to {target}"
            ) from None
        raise FileNotFoundError(f"{display_path(path)}: no such file") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise PointCloudFileError("is a symlink loop", path) from None
        raise


def check_file(path: PathLike, what: str = "a point-cloud file") -> Path:
    """Return ``path`` as a Path after checking that it is an existing regular file
    no larger than the file limit.

    Raises:
        FileNotFoundError: ``path`` (or its symlink's target) does not exist.
        PointCloudFileError: A directory, FIFO, socket, device, symlink loop, or
            a file above the size limit.
    """
    path = Path(path)
    info = _stat(path)
    kind = _kind(info.st_mode)
    if kind is not None:
        raise _not_regular(path, kind, what)
    _check_size(path, info.st_size)
    return path


def _check_size(path: Path, size: int) -> None:
    try:
        check_file_size(size)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None


def open_input(path: PathLike, what: str = "a point-cloud file") -> IO[bytes]:
    """Open a regular file for reading, safely (see the module); the caller closes it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PointCloudFileError: Not a regular file, or above the size limit.
        PermissionError: The file cannot be read.
    """
    path = check_file(path, what)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        if err.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket swapped in
            raise _not_regular(path, "a socket", what) from None
        raise
    try:
        info = os.fstat(fd)
        kind = _kind(info.st_mode)
        if kind is not None:  # replaced between the stat and the open
            raise _not_regular(path, kind, what)
        _check_size(path, info.st_size)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path: PathLike, what: str = "a point-cloud file") -> bytes:
    """The bytes of a regular file, at most ``max_file_bytes`` of them."""
    path = Path(path)
    limit = get_limits().max_file_bytes
    with open_input(path, what) as file:
        size = os.fstat(file.fileno()).st_size
        parts = [file.read(size)] if size else []
        total = sum(map(len, parts))
        while block := file.read(min(1 << 20, limit + 1 - total)):
            parts.append(block)  # a file that grew, or /proc-like sizes of 0
            total += len(block)
            if total > limit:
                _check_size(path, total)
    return parts[0] if len(parts) == 1 else b"".join(parts)
