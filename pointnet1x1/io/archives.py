"""Zip archives from untrusted sources: checked member names, bounded inflation,
and an unpacking that is atomic and cleans up after runs that were killed.

- :func:`open_zip` opens an archive and refuses what would unpack badly or
  dangerously: absolute member names, ``..`` or ``.`` components, backslashes,
  empty components, the same name twice, a total declared size beyond the
  ratio limit of :mod:`pointnet1x1.io.limits`, and (``check_crc``) members
  whose CRC-32 fails. ``zipfile`` itself silently rewrites such names, so an
  archive with a top folder ``..`` used to "succeed" and unpack nothing.
- :func:`unpack_zip` extracts into a hidden temporary folder beside the target,
  named after the process (``.<name>.unpack-<pid>-<random>``), and renames it
  into place last; temporary folders of processes that no longer run are
  removed first, so a killed unpack leaves nothing behind for long.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from pointnet1x1.io.errors import InputFileError, display_path
from pointnet1x1.io.limits import human_bytes, ratio_problem

__all__ = ["clean_stale_unpacks", "member_problem", "open_zip", "unpack_zip"]

_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError)


def member_problem(name: str) -> str | None:
    """Why a member name cannot be unpacked safely, or None when it can."""
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if "\\" in name:
        return "holds a backslash"
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' component"
    if any(not p.isprintable() for p in parts):
        return "holds control characters"
    return None


def open_zip(
    path: str | os.PathLike[str], *, check_crc: bool = True
) -> zipfile.ZipFile:
    """Open a zip archive after checking every member (see the module).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InputFileError: Not a zip archive, an unsafe or duplicate member name, a
            declared size beyond the ratio limit, or a CRC-32 that fails.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"archive {display_path(path)} does not exist")
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as err:
        raise InputFileError(
            f"not a zip archive ({err}); delete it and download again", path
        ) from None
    try:
        _check_members(archive, path, check_crc)
    except BaseException:
        archive.close()
        raise
    return archive


def _check_members(archive: zipfile.ZipFile, path: Path, check_crc: bool) -> None:
    names = archive.namelist()
    seen: set[str] = set()
    for name in names:
        problem = member_problem(name)
        if problem is not None:
            raise InputFileError(
                f"member {name!r} {problem}; refusing to unpack this archive", path
            )
        key = name.rstrip("/")
        if key in seen:
            raise InputFileError(
                f"member {name!r} appears twice; refusing to unpack this archive", path
            )
        seen.add(key)
    total = sum(info.file_size for info in archive.infolist())
    problem = ratio_problem(total, path.stat().st_size, "the archive's members")
    if problem is not None:
        raise InputFileError(problem, path)
    if check_crc:
        try:
            bad = archive.testzip()
        except _ZIP_ERRORS as err:
            bad = f"? ({err})"
        if bad is not None:
            raise InputFileError(
                f"member {bad} fails its CRC check; delete the archive and download "
                "again",
                path,
            )


_UNPACK = re.compile(r"\.(?P<name>.+)\.unpack-(?P<pid>\d+)-[^/]*$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_unpacks(parent: Path, name: str) -> list[Path]:
    """Remove ``parent/.<name>.unpack-<pid>-*`` folders of processes that have
    ended (and ``.<name>.tmp-*`` of earlier versions); returns what went."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        match = _UNPACK.match(entry.name)
        legacy = entry.name.startswith(f".{name}.tmp-")
        stale = (
            match is not None
            and match["name"] == name
            and not _alive(int(match["pid"]))
        )
        if (stale or legacy) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def unpack_zip(
    archive: zipfile.ZipFile,
    target: Path,
    members: Iterable[str],
    *,
    strip: str | None = None,
    check: Callable[[Path], None] | None = None,
    progress: Callable[[Iterable[str]], Iterable[str]] = lambda names: names,
) -> Path:
    """Extract ``members`` of a checked archive to ``target``, atomically.

    Args:
        archive: An archive from :func:`open_zip`.
        target: The folder to create (must not exist).
        members: Names to extract.
        strip: A top folder of the names that ``target`` stands for (``None``:
            the names go inside ``target`` as they are).
        check: Called with the unpacked folder before it is renamed into place.
        progress: Wraps the names for a progress bar.

    Raises:
        OSError: Disk full, permissions: the temporary folder is removed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_unpacks(target.parent, target.name)
    needed = sum(archive.getinfo(n).file_size for n in members)
    free = shutil.disk_usage(target.parent).free
    if needed > free:
        raise OSError(
            f"{display_path(target.parent)}: unpacking needs {human_bytes(needed)} "
            f"but only {human_bytes(free)} are free"
        )
    tmp = Path(
        tempfile.mkdtemp(
            prefix=f".{target.name}.unpack-{os.getpid()}-", dir=target.parent
        )
    )
    try:
        base = tmp if strip is not None else tmp / target.name
        for name in progress(list(members)):
            archive.extract(name, base)
        unpacked = tmp / (strip if strip is not None else target.name)
        unpacked.mkdir(exist_ok=True)
        if check is not None:
            check(unpacked)
        os.replace(unpacked, target)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return target
