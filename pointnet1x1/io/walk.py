"""Walking folders of any shape for point-cloud files, safely.

:func:`iter_files` walks a folder for files of some extensions: regular files
only, each real folder once (symlink loops end, with a note), unreadable folders
and special files reported instead of raised, hidden files and folders skipped
with a note, no recursion (any depth). :func:`collect_files` does the same for a
mix of files and folders given by a user (``classify a.ply scans/``), each file
once. Everything that lists files for reading (datasets of a user's own folders,
``classify``) uses these.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from pointnet1x1.io.cloud import PathLike, PointCloudFileError
from pointnet1x1.io.errors import display_path
from pointnet1x1.io.files import _kind, _stat

__all__ = ["FileList", "Skipped", "collect_files", "iter_files"]


class Skipped(NamedTuple):
    """A path a folder walk did not yield, and why.

    Attributes:
        path: The file or folder.
        reason: One line saying why (``"hidden file, skipped"``).
        problem: True when something the user may have wanted was not read (an
            unreadable folder, a FIFO named ``scan.ply``, a broken link); False
            for notes (hidden files, a second link to a folder already walked).
    """

    path: Path
    reason: str
    problem: bool

    def __str__(self) -> str:
        return f"{display_path(self.path)}: {self.reason}"


def _warn(skipped: Skipped) -> None:
    if skipped.problem:
        warnings.warn(str(skipped), stacklevel=3)


def _normalise(extensions: Iterable[str]) -> tuple[str, ...]:
    return tuple(
        e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions
    )


def iter_files(
    root: PathLike,
    extensions: Iterable[str],
    *,
    report: Callable[[Skipped], None] | None = None,
    include_hidden: bool = False,
) -> Iterator[Path]:
    """Yield the regular files under ``root`` whose names end with ``extensions``.

    Files come sorted by path (depth first, names sorted in each folder).
    Symlinks are followed, each real folder is walked once (a symlink loop or a
    second link to a folder ends there, with a note). Nothing raises for what is
    inside: unreadable folders, broken links, special files with a matching name
    (a FIFO ``scan.ply``, a folder ``x.ply`` is walked as a folder) and hidden
    entries (names starting with ``.``) go to ``report``.

    Args:
        root: The folder to walk (a regular file is yielded as itself).
        extensions: Suffixes to keep, case-insensitive (``".ply"`` or ``"ply"``).
        report: Called with a :class:`Skipped` for each path not yielded; the
            default warns about problems and ignores notes.
        include_hidden: Walk hidden folders and yield hidden files too.

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """
    yield from _walk(
        Path(root), _normalise(extensions), report or _warn, include_hidden, {}
    )


def _walk(
    root: Path,
    exts: tuple[str, ...],
    tell: Callable[[Skipped], None],
    include_hidden: bool,
    seen: dict[tuple[int, int], Path],
) -> Iterator[Path]:
    """iter_files with the folders already walked in ``seen``."""
    info = _stat(root)
    if stat.S_ISREG(info.st_mode):
        yield root
        return
    if not stat.S_ISDIR(info.st_mode):
        tell(Skipped(root, f"is {_kind(info.st_mode)}, not a folder", True))
        return
    key = (info.st_dev, info.st_ino)
    if key in seen:
        tell(
            Skipped(
                root, f"the same folder as {display_path(seen[key])}, skipped", False
            )
        )
        return
    seen[key] = root
    stack: list[Iterator[os.DirEntry[str]]] = []
    entries = _list(root, tell)
    if entries is not None:
        stack.append(entries)
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path = Path(entry.path)
        hidden = entry.name.startswith(".") and not include_hidden
        wanted = entry.name.lower().endswith(exts)
        try:
            info = entry.stat()  # follows symlinks
        except OSError as err:
            if wanted and not hidden:
                why = "symlink loop" if err.errno == errno.ELOOP else "broken symlink"
                tell(Skipped(path, f"{why}, skipped", True))
            continue
        if stat.S_ISDIR(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if hidden:
                tell(Skipped(path, "hidden folder, skipped", False))
            elif key in seen:
                first = display_path(seen[key])
                tell(
                    Skipped(
                        path, f"the same folder as {first} (a symlink), skipped", False
                    )
                )
            else:
                seen[key] = path
                entries = _list(path, tell)
                if entries is not None:
                    stack.append(entries)
        elif wanted and hidden:
            tell(Skipped(path, "hidden file, skipped", False))
        elif wanted and not stat.S_ISREG(info.st_mode):
            tell(
                Skipped(
                    path, f"is {_kind(info.st_mode)}, not a regular file, skipped", True
                )
            )
        elif wanted:
            yield path


def _list(
    folder: Path, tell: Callable[[Skipped], None]
) -> Iterator[os.DirEntry[str]] | None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as err:
        tell(
            Skipped(folder, f"cannot read this folder ({err.strerror}), skipped", True)
        )
        return None
    return iter(entries)


class FileList(NamedTuple):
    """What :func:`collect_files` found: files to read, problems, notes."""

    files: list[Path]
    problems: list[Skipped]
    notes: list[Skipped]


def collect_files(
    paths: Sequence[PathLike], extensions: Iterable[str] | None = None
) -> FileList:
    """Expand files and folders given by a user into the files to read.

    A file named directly is kept whatever its extension (its reader says if it
    is not supported) unless it is missing or not a regular file; a folder is
    walked with :func:`iter_files` for ``extensions`` (default: every format
    :func:`~pointnet1x1.io.read_points` reads), and one with no such file is a
    problem.
    """
    if extensions is None:
        from pointnet1x1.io.api import SUPPORTED_EXTENSIONS

        extensions = SUPPORTED_EXTENSIONS
    exts = _normalise(extensions)
    out = FileList([], [], [])
    folders: dict[tuple[int, int], Path] = {}
    files: dict[tuple[int, int], Path] = {}

    def add(path: Path, info: os.stat_result) -> None:
        key = (info.st_dev, info.st_ino)
        if key in files:
            first = display_path(files[key])
            out.notes.append(Skipped(path, f"the same file as {first}, skipped", False))
        else:
            files[key] = path
            out.files.append(path)

    for raw in paths:
        path = Path(raw)
        try:
            info = _stat(path)
        except (OSError, PointCloudFileError) as err:
            reason = "no such file or folder"
            if isinstance(err, PointCloudFileError):
                reason = err.problem
            elif path.is_symlink():
                reason = f"broken symlink to {display_path(os.readlink(path))}"
            out.problems.append(Skipped(path, reason, True))
            continue
        if stat.S_ISDIR(info.st_mode):
            count = len(out.notes)
            yielded = 0
            for found in _walk(path, exts, lambda s: _sort(out, s), False, folders):
                add(found, os.stat(found))
                yielded += 1
            walked_before = any(
                "the same folder" in n.reason for n in out.notes[count:]
            )
            if not yielded and not walked_before:
                out.problems.append(
                    Skipped(
                        path,
                        f"no supported point-cloud files in this folder ({', '.join(exts)})",
                        True,
                    )
                )
        elif stat.S_ISREG(info.st_mode):
            add(path, info)
        else:
            kind = _kind(info.st_mode)
            out.problems.append(Skipped(path, f"is {kind}, not a regular file", True))
    return out


def _sort(out: FileList, skipped: Skipped) -> None:
    (out.problems if skipped.problem else out.notes).append(skipped)
