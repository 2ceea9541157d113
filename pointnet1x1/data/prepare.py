"""From a listing of files to one array of prepared shapes, on all cores, cached.

Each file becomes points the same way, in a worker, seeded by the file's path
relative to the dataset root (so the result depends neither on the order of the
files nor on the number of workers):

1. read: a mesh (OFF, OBJ, STL, PLY with faces) is sampled on its surface with
   ``keep = max(num_points, 2048)`` points and face normals; a cloud gives every
   finite point (:func:`pointnet1x1.io.read_points`);
2. turned from the files' up axis to the models' one (:func:`convert_up_axis`);
3. centred at its centroid and scaled so its farthest point is at radius 1,
   whatever the units (:func:`normalize_points`);
4. reduced: with ``sampling="random"`` a cloud with more than ``keep`` points keeps
   a seeded random subset of ``keep``; with ``sampling="fps"`` every shape is cut
   to ``num_points`` by farthest point sampling (first point seeded).

The split's array holds ``P`` points per shape: ``num_points`` with ``"fps"``;
with ``"random"``, ``P = max(num_points, min(keep, fewest points of a shape))``,
so clouds keep all their points up to ``keep`` and each access samples
``num_points`` of the ``P`` (a seeded subset when a shape has more). A shape with
fewer than ``num_points`` points (a **short** cloud) is filled to ``P`` by
repeating its own points (every point once, then seeded random repeats): a
PointNet max pool does not see repeats. Short files are listed
(``Prepared.short``, ``pointnet1x1 data info``).

A file that cannot be read does not stop the other workers: its one-line error is
collected (an exception other than ``ValueError``/``OSError``, a reader's bug, is
reported as "unexpected ..." the same way), and :class:`Prepared` lists it with the others (``bad``); the dataset
then refuses the split (:class:`BadFilesError`) unless asked to skip them.
"""

from __future__ import annotations

import os
import warnings
import zlib
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from pointnet1x1.data import cache as _cache
from pointnet1x1.data.listing import SplitListing
from pointnet1x1.data.transforms import farthest_point_sample, normalize_points

__all__ = [
    "KEEP_POINTS",
    "BadFilesError",
    "Prepared",
    "Recipe",
    "bad_files_message",
    "prepare_listing",
    "read_shape",
]

KEEP_POINTS = 2048  # points kept per shape when the source has more
MESH_EXTENSIONS = (".off", ".obj", ".stl", ".ply")
SAMPLINGS = ("random", "fps")
_SHOWN = 5  # bad files named in an error, then a count
_SHOWN_IN_HEADER = 3


class BadFilesError(ValueError):
    """Files of a dataset cannot be read; ``bad`` lists ``(path, problem)``."""

    def __init__(self, message: str, bad: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.bad = bad


@dataclass(frozen=True)
class Recipe:
    """How every file of a split becomes stored points (recorded in the cache)."""

    num_points: int  # points per sample the dataset returns
    sampling: str = "random"  # "random" or "fps" (see the module docstring)
    normals: bool = False  # keep normals as channels 3:6
    seed: int = 0  # with each file's relative path, seeds its sampling
    source_up_axis: str = "z"  # the files' up axis
    up_axis: str = "z"  # the up axis of the prepared points (the models')
    reader: str = "file"  # "file" (read_points) or "resampled" (x,y,z,nx,ny,nz rows)

    @property
    def keep(self) -> int:
        return max(self.num_points, KEEP_POINTS)


def file_rng(seed: int, rel: str, stream: int = 0) -> np.random.Generator:
    """The generator of one file: from the seed and its relative path only."""
    return np.random.default_rng([seed, zlib.crc32(rel.encode()), stream])


def _read_cloud(path: Path, rel: str, recipe: Recipe):
    from pointnet1x1.io import read_mesh, read_points, sample_surface

    if recipe.reader == "resampled":
        try:
            rows = np.loadtxt(
                path, delimiter=",", dtype=np.float32, max_rows=recipe.keep, ndmin=2
            )
        except ValueError as err:
            raise ValueError(f"not rows of 'x,y,z,nx,ny,nz': {err}") from None
        if rows.shape[1] != 6 or rows.shape[0] == 0:
            raise ValueError(f"expected rows of 6 values, got shape {rows.shape}")
        return rows[:, :3], rows[:, 3:]
    if path.suffix.lower() in MESH_EXTENSIONS:
        mesh = read_mesh(path)
        if len(mesh.faces):
            rng = file_rng(recipe.seed, rel)
            return sample_surface(mesh.vertices, mesh.faces, recipe.keep, seed=rng)
        # a PLY or OBJ without faces is a cloud: read it again with its attributes
    cloud = read_points(path)
    return cloud.points, cloud.normals


def read_shape(path: Path, rel: str, recipe: Recipe) -> np.ndarray:
    """One file as prepared points ``(n, 3 [+ 3])`` (steps 1-4 of the module doc).

    Raises:
        ValueError: The file cannot be read (or lacks the normals asked for).
        OSError: The file cannot be opened.
    """
    from pointnet1x1.io.axes import convert_up_axis

    points, normals = _read_cloud(path, rel, recipe)
    if recipe.normals:
        if normals is None:
            raise ValueError("holds no normals, which use_normals=True needs")
        points = np.concatenate([points, normals], axis=1)
    points = np.asarray(points, dtype=np.float32)
    if recipe.source_up_axis != recipe.up_axis:
        points = convert_up_axis(
            points, recipe.source_up_axis, recipe.up_axis, triples=1 + recipe.normals
        )
    points = normalize_points(points)
    n = len(points)
    # a separate stream from the surface sampling's (created only when needed)
    if recipe.sampling == "fps" and n > recipe.num_points:
        rng = file_rng(recipe.seed, rel, 2)
        points = points[np.sort(farthest_point_sample(points, recipe.num_points, rng))]
    elif n > recipe.keep:
        rng = file_rng(recipe.seed, rel, 2)
        points = points[np.sort(rng.choice(n, recipe.keep, replace=False))]
    return points


def _worker(item: tuple[str, str], recipe: Recipe) -> np.ndarray | str:
    path, rel = item
    try:
        return read_shape(Path(path), rel, recipe)
    except Exception as err:  # any failure on one file is reported, never raised
        text = " ".join(str(err).split()) or type(err).__name__
        if not isinstance(err, (ValueError, OSError)):  # a reader's bug, not the file's
            text = f"unexpected {type(err).__name__} while reading: {text}"
        prefix = f"{path}: "
        return text[len(prefix) :] if text.startswith(prefix) else text


@dataclass
class Prepared:
    """A prepared split: the shapes that could be read, and what was found.

    Attributes:
        points: float32 ``(S, P, C)``, normalised, in the models' up axis.
        labels: int64 ``(S,)``.
        files: The relative path of each of the ``S`` shapes.
        bad: ``(relative path, problem)`` of each file that could not be read.
        short: Relative paths of the shapes with fewer than ``num_points`` points.
    """

    points: np.ndarray
    labels: np.ndarray
    files: list[str]
    bad: list[tuple[str, str]] = field(default_factory=list)
    short: list[str] = field(default_factory=list)


def bad_files_message(bad: list[tuple[str, str]], total: int, root: Path) -> str:
    """A header line (naming a few), then one line per bad file (a few, then a count).

    The header alone names the files, for callers that print one line.
    """
    named = ", ".join(rel for rel, _ in bad[:_SHOWN_IN_HEADER])
    more = (
        f" and {len(bad) - _SHOWN_IN_HEADER} more"
        if len(bad) > _SHOWN_IN_HEADER
        else ""
    )
    lines = [
        f"{len(bad)} of {total} files under {root} cannot be read ({named}{more}); "
        "fix or remove them, or pass skip_bad=True (CLI: --skip-bad) to prepare "
        "without them:"
    ]
    lines += [f"  {rel}: {problem}" for rel, problem in bad[:_SHOWN]]
    if len(bad) > _SHOWN:
        lines.append(f"  ... and {len(bad) - _SHOWN} more")
    return "\n".join(lines)


def _stack(
    results: list[np.ndarray], rels: list[str], recipe: Recipe
) -> tuple[np.ndarray, list[str]]:
    counts = [len(r) for r in results]
    if recipe.sampling == "fps":
        size = recipe.num_points
    else:
        size = max(recipe.num_points, min([recipe.keep, *counts]))
    channels = 6 if recipe.normals else 3
    out = np.empty((len(results), size, channels), dtype=np.float32)
    short = []
    for i, (points, rel) in enumerate(zip(results, rels, strict=True)):
        n = len(points)
        if n == size:
            out[i] = points
            continue
        rng = file_rng(recipe.seed, rel, 1)
        if n > size:
            out[i] = points[np.sort(rng.choice(n, size, replace=False))]
        else:
            out[i] = points[
                np.concatenate([np.arange(n), rng.integers(n, size=size - n)])
            ]
        if n < recipe.num_points:
            short.append(rel)
    return out, short


def prepare_listing(
    listing: SplitListing,
    recipe: Recipe,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    workers: int | None = None,
    threads: bool = False,
) -> Prepared:
    """Prepare (or read from the cache) the files of ``listing``.

    Files that cannot be read are listed in ``Prepared.bad`` (the others are
    prepared and cached all the same); the caller decides whether to refuse.
    """
    if recipe.sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be 'random' or 'fps', got {recipe.sampling!r}")
    rels = [listing.relative(p) for p in listing.files]
    setting = {"layout": listing.layout, "split": listing.split, **asdict(recipe)}
    sources = _cache.sources_digest(listing.files)
    try:
        folder: Path | None = _cache.cache_folder(listing.root, cache_dir)
    except OSError as err:  # e.g. a read-only home: prepare all the same, uncached
        warnings.warn(f"no cache for {listing.root}: {err}", stacklevel=2)
        folder = None
    cached = None if folder is None else _cache.load_cached(folder, setting, sources)
    if cached is not None:
        points, found = cached
        bad = [(str(r), str(p)) for r, p in found.get("bad", [])]
        short = [str(r) for r in found.get("short", [])]
    else:
        items = [(str(p), r) for p, r in zip(listing.files, rels, strict=True)]
        results = _cache.parallel_map(
            partial(_worker, recipe=recipe), items, workers=workers,
            desc=f"{listing.layout} {listing.split}", progress=progress, threads=threads,
        )  # fmt: skip
        bad = [(r, res) for r, res in zip(rels, results, strict=True) if isinstance(res, str)]  # fmt: skip
        good = [res for res in results if not isinstance(res, str)]
        good_rels = [r for r, res in zip(rels, results, strict=True) if not isinstance(res, str)]  # fmt: skip
        if good:
            points, short = _stack(good, good_rels, recipe)
        else:
            points, short = np.empty((0, recipe.num_points, 3 + 3 * recipe.normals), np.float32), []  # fmt: skip
        try:
            if folder is not None:
                found = {"bad": bad, "short": short}
                _cache.save_cached(folder, setting, sources, points, found)
        except OSError as err:  # the work is not lost: it is returned uncached
            warnings.warn(f"could not cache {listing.root} in {folder}: {err}", stacklevel=2)  # fmt: skip
    bad_set = {r for r, _ in bad}
    keep = [i for i, r in enumerate(rels) if r not in bad_set]
    labels = np.asarray(listing.labels, dtype=np.int64)[keep]
    if len(keep) != len(points):
        raise RuntimeError(f"{folder}: {len(points)} prepared shapes, expected {len(keep)}")  # fmt: skip
    return Prepared(points, labels, [rels[i] for i in keep], bad, short)
