"""Prepared-array cache and the parallel preparation that fills it.

A prepared split is one ``.npy`` file plus a ``.json`` manifest beside it, both
written atomically (temp file in the same folder, then ``os.replace``); the array
is written first and the manifest last, so a manifest always describes a complete
array. The manifest records the sources (count, total size in bytes, a hash of
their names, sizes and modification times), the setting (layout, split, points
per shape, sampling, seed, axes) and the library version, plus what the
preparation found (files that could not be read, clouds with too few points); a
cache whose manifest is missing or differs, or whose array does not have the
recorded shape, is stale and rebuilt, never read half-written.

The cache lives in ``cache_dir`` when given, else ``<root>/.pointnet1x1_cache``
when the dataset root is writable, else a per-user folder
(``$POINTNET1X1_CACHE``, ``$XDG_CACHE_HOME/pointnet1x1`` or
``~/.cache/pointnet1x1``) under a name derived from the root's absolute path. A
root whose permission bits forbid writing counts as read-only even for root.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pointnet1x1 import __version__
from pointnet1x1._atomic import atomic_write, atomic_write_bytes

__all__ = [
    "cache_folder",
    "load_cached",
    "parallel_map",
    "save_cached",
    "user_cache_dir",
]

# bump when the content of prepared arrays changes for the same manifest
CACHE_FORMAT = 3


def user_cache_dir() -> Path:
    """The per-user cache folder of pointnet1x1."""
    env = os.environ.get("POINTNET1X1_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pointnet1x1"


def _writable(folder: Path) -> bool:
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(
        folder, os.W_OK
    )


def cache_folder(root: Path, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where prepared arrays of the dataset at ``root`` go (created on demand)."""
    if cache_dir is not None:
        folder = Path(cache_dir).expanduser()
    else:
        folder = root / ".pointnet1x1_cache"
        if not (folder.is_dir() and _writable(folder)) and not _writable(root):
            digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
            folder = user_cache_dir() / "prepared" / f"{root.resolve().name}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sources_digest(files: Sequence[Path]) -> dict[str, Any]:
    """Count and total size (bytes) of the source files, and a hash of their names,
    sizes and modification times (a file rewritten in place makes the cache stale)."""
    names = hashlib.sha1()
    stamps = hashlib.sha1()
    total = 0
    for f in files:
        st = f.stat()
        total += st.st_size
        names.update(os.fsencode(f) + b"\n")
        stamps.update(b"%d %d\n" % (st.st_size, st.st_mtime_ns))
    return {
        "count": len(files),
        "bytes": total,
        "names_sha1": names.hexdigest(),
        "stat_sha1": stamps.hexdigest(),
    }


def _key(setting: dict[str, Any]) -> str:
    text = json.dumps(setting, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _manifest(
    setting: dict[str, Any],
    sources: dict[str, Any],
    shape: tuple[int, ...],
    found: dict[str, Any],
) -> dict[str, Any]:
    return {
        "setting": setting,
        "sources": sources,
        "shape": list(shape),
        "found": found,
        "format": CACHE_FORMAT,
        "version": __version__,
    }


def load_cached(
    folder: Path, setting: dict[str, Any], sources: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The cached array for ``setting`` and ``sources`` and what its preparation
    found (``found`` of :func:`save_cached`), or None if absent or stale."""
    stem = folder / f"{setting.get('split', 'data')}-{_key(setting)}"
    try:
        manifest = json.loads(stem.with_suffix(".json").read_text())
        found = manifest["found"]
        expected = _manifest(setting, sources, tuple(manifest["shape"]), found)
        if manifest != expected or not isinstance(found, dict):
            return None
        array = np.load(stem.with_suffix(".npy"), allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if list(array.shape) != manifest["shape"]:
        return None
    return array, found


def save_cached(
    folder: Path,
    setting: dict[str, Any],
    sources: dict[str, Any],
    array: np.ndarray,
    found: dict[str, Any] | None = None,
) -> Path:
    """Write ``array`` and its manifest atomically; returns the array's path.

    ``found`` is JSON-able information about the preparation (files that could not
    be read, ...), given back by :func:`load_cached`.
    """
    stem = folder / f"{setting.get('split', 'data')}-{_key(setting)}"
    manifest = _manifest(setting, sources, array.shape, found or {})
    stem.with_suffix(".json").unlink(missing_ok=True)
    atomic_write(
        stem.with_suffix(".npy"), lambda f: np.save(f, array, allow_pickle=False)
    )
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    atomic_write_bytes(stem.with_suffix(".json"), text)
    return stem.with_suffix(".npy")


def num_workers() -> int:
    """Worker processes for preparation: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def parallel_map(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    workers: int | None = None,
    desc: str = "preparing",
    progress: bool = True,
    threads: bool = False,
) -> list[Any]:
    """``[fn(item) for item in items]`` on all cores, with a tqdm progress bar.

    Processes by default (``fn`` must be a picklable top-level function or a
    ``functools.partial`` of one); ``threads=True`` uses a thread pool instead,
    which only helps where ``fn`` releases the GIL. The bar shows on a terminal
    only. Small jobs run in-process.
    """
    from tqdm.auto import tqdm

    workers = num_workers() if workers is None else workers
    bar = tqdm(
        total=len(items),
        desc=desc,
        unit="file",
        disable=not progress or None,
        leave=False,
    )
    results: list[Any] = []
    try:
        if workers <= 1 or len(items) < 8:
            for item in items:
                results.append(fn(item))
                bar.update()
            return results
        chunk = max(1, min(64, len(items) // (workers * 8)))
        pool = (
            ThreadPoolExecutor(workers)
            if threads
            else ProcessPoolExecutor(workers, mp_context=_context())
        )
        with pool:
            for result in pool.map(fn, items, chunksize=chunk):
                results.append(result)
                bar.update()
        return results
    finally:
        bar.close()


def _context():
    import multiprocessing

    # fork starts workers in milliseconds and shares the imported modules; where it
    # is unavailable (macOS/Windows default), spawn is the safe choice.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")
