"""ModelNet40 / ModelNet10 as a torch ``Dataset``, from any of its three layouts.

The whole split is prepared once (OFF meshes surface-sampled, text files parsed),
cached (see :mod:`pointnet1x1.data.cache`), and held in memory as one array of
shape (S, P, 6) (``xyz`` + normals), normalised per shape (centroid at the
origin, farthest point at radius 1). Each access samples ``num_points`` of the
``P`` points (a fresh random subset for ``split="train"``, a fixed one per shape
for ``split="test"``), then applies ``transform``.

Axis convention: every layout comes out **y up**, as the published resampled and
HDF5 files are. The Princeton OFF meshes are z up and are mapped by
``(x, y, z) -> (x, z, y)`` when prepared: the exact map between the two published
forms (measured by Chamfer distance over all 48 signed axis permutations on the
seven shapes present in both in ``../shared/data``: ``(x, z, y)`` wins on every one
that is not mirror-symmetric). It swaps two axes (a reflection, not a rotation),
which is what makes prepared OFF meshes match ``modelnet40_normal_resampled``.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pointnet1x1.data import cache as _cache
from pointnet1x1.data.layouts import (
    MissingDataError,
    SplitListing,
    list_split,
    missing_message,
)
from pointnet1x1.data.transforms import normalize_points

__all__ = ["ModelNet", "load_split"]

# points kept per shape when the source has more (the published HDF5 size)
KEEP_POINTS = 2048
# Princeton OFF (z up) to the published y-up layouts: (x, y, z) -> (x, z, y)
Z_UP_TO_Y_UP = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32)


def _prepare_off(item: tuple[str, int], keep: int, seed: int) -> np.ndarray:
    from pointnet1x1.io import read_mesh, sample_surface

    path, _ = item
    mesh = read_mesh(path)
    # seeded by the file name, so a subset samples the same points as the whole
    rng = np.random.default_rng([seed, zlib.crc32(Path(path).name.encode())])
    points, normals = sample_surface(mesh.vertices, mesh.faces, keep, seed=rng)
    out = np.concatenate([points, normals], axis=1)
    return normalize_points(out @ np.kron(np.eye(2, dtype=np.float32), Z_UP_TO_Y_UP).T)


def _prepare_text(item: tuple[str, int], keep: int, num_points: int) -> np.ndarray:
    path, _ = item
    try:
        rows = np.loadtxt(path, delimiter=",", dtype=np.float32, max_rows=keep, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: not rows of 'x,y,z,nx,ny,nz': {err}") from None
    if rows.shape[1] != 6 or rows.shape[0] < num_points:
        raise ValueError(
            f"{path}: expected at least {num_points} rows of 6 values, got {rows.shape}"
        )
    # a file shorter than `keep` (but long enough) repeats its rows to fill the array;
    # normalised here, per shape, in the worker (the cache holds normalised arrays)
    return normalize_points(
        rows if rows.shape[0] == keep else np.resize(rows, (keep, 6))
    )


def _normalize_inplace(points: np.ndarray) -> np.ndarray:
    xyz = points[..., :3]
    xyz -= xyz.mean(axis=1, keepdims=True)
    radius = np.sqrt((xyz * xyz).sum(axis=2)).max(axis=1)  # (S,)
    radius[radius == 0] = 1.0
    xyz /= radius[:, None, None]
    return points


def _load_hdf5(listing: SplitListing) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    chunks, labels = [], []
    for path in listing.files:
        with h5py.File(path, "r") as f:
            if "data" not in f or "label" not in f:
                raise ValueError(
                    f"{path}: expected datasets 'data' and 'label', got {sorted(f)}"
                )
            data = np.asarray(f["data"], dtype=np.float32)
            if data.ndim != 3 or data.shape[2] != 3:
                raise ValueError(
                    f"{path}: 'data' must have shape (S, P, 3), got {data.shape}"
                )
            normals = (
                np.asarray(f["normal"], dtype=np.float32)
                if "normal" in f
                else np.full_like(data, np.nan)
            )
            label = np.asarray(f["label"]).reshape(-1).astype(np.int64)
            if label.shape[0] != data.shape[0]:
                raise ValueError(
                    f"{path}: {label.shape[0]} labels for {data.shape[0]} shapes"
                )
        chunks.append(np.concatenate([data, normals], axis=2))
        labels.append(label)
    if not chunks:
        raise ValueError(
            f"hdf5 dataset at {listing.root}: no {listing.split} files listed"
        )
    points, label = np.concatenate(chunks), np.concatenate(labels)
    if label.min() < 0 or label.max() >= len(listing.all_classes):
        raise ValueError(
            f"hdf5 dataset at {listing.root}: labels span [{label.min()}, {label.max()}] "
            f"but shape_names.txt names {len(listing.all_classes)} classes"
        )
    remap = np.full(len(listing.all_classes), -1, dtype=np.int64)
    for new, name in enumerate(listing.class_names):
        remap[listing.all_classes.index(name)] = new
    keep = remap[label] >= 0
    return points[keep], remap[label][keep]


def load_split(
    listing: SplitListing,
    *,
    num_points: int = 1024,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Prepare (or read from the cache) one listed split, normalised, y up.

    Returns:
        ``(points, labels)``: float32 (S, P, 6) with ``P >= num_points`` (normals
        are NaN where the source has none) and int64 (S,).
    """
    if listing.layout == "hdf5":
        points, labels = _load_hdf5(listing)
        points = _normalize_inplace(points)
    else:
        keep = max(num_points, KEEP_POINTS)
        setting = {"layout": listing.layout, "split": listing.split, "points": keep}
        if listing.layout == "off":
            setting["seed"] = seed
            worker: Callable[..., np.ndarray] = partial(
                _prepare_off, keep=keep, seed=seed
            )
        else:
            worker = partial(_prepare_text, keep=keep, num_points=num_points)
        sources = _cache.sources_digest(listing.files)
        folder = _cache.cache_folder(listing.root, cache_dir)
        cached = _cache.load_cached(folder, setting, sources)
        if cached is not None:
            points = cached
        else:
            points = np.empty((len(listing.files), keep, 6), dtype=np.float32)
            items = [(str(p), i) for i, p in enumerate(listing.files)]
            desc = f"{listing.layout} {listing.split}"
            _cache.parallel_map(
                worker, items, points, workers=workers, desc=desc, progress=progress
            )
            _cache.save_cached(folder, setting, sources, points)
        labels = np.asarray(listing.labels, dtype=np.int64)
    if points.shape[1] < num_points:
        raise ValueError(
            f"{listing.root}: shapes hold {points.shape[1]} points, fewer than num_points={num_points}"
        )
    return points, labels


class ModelNet(Dataset):
    """ModelNet40 (or ModelNet10) from the Princeton OFF, resampled or HDF5 layout.

    Args:
        root: Dataset root; the layout is detected (see :mod:`.layouts`).
        split: ``"train"`` or ``"test"``.
        classes: Optional subset of class names; labels are ``0..k-1`` in its order.
        num_points: Points per returned sample.
        use_normals: Return ``(N, 6)`` (``xyz`` + normals) instead of ``(N, 3)``.
        transform: Called as ``transform(points, rng)`` (a
            :class:`~pointnet1x1.data.transforms.Transform`) or ``transform(points)``.
        modelnet10: Use the ten ModelNet10 classes.
        seed: Seeds the OFF surface sampling and the per-access sampling.
        cache_dir: Where prepared arrays go (default: beside the data, or a user
            cache folder when the data is read-only).
        progress: Show a progress bar while preparing.

    Raises:
        MissingDataError: Files named by the split lists are absent (a ValueError).

    Shape:
        ``self[i]`` is ``(points, label)``: float32 (num_points, 3 + 3 * use_normals)
        and an int.
    """

    up_axis = "y"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        classes: Sequence[str] | None = None,
        num_points: int = 1024,
        use_normals: bool = False,
        transform: Callable[..., np.ndarray] | None = None,
        modelnet10: bool = False,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
    ) -> None:
        if num_points <= 0:
            raise ValueError(f"num_points must be positive, got {num_points}")
        listing = list_split(root, split, classes=classes, modelnet10=modelnet10)
        if listing.missing:
            message = missing_message(
                root, split, classes=classes, modelnet10=modelnet10
            )
            raise MissingDataError(message)
        self.root, self.split, self.layout = Path(root), split, listing.layout
        self.source_up_axis = listing.up_axis
        self.class_names = list(listing.class_names)
        self.num_points, self.use_normals, self.transform = (
            num_points,
            use_normals,
            transform,
        )
        self.seed = seed
        self.in_channels = 6 if use_normals else 3
        points, self.labels = load_split(
            listing,
            num_points=num_points,
            seed=seed,
            cache_dir=cache_dir,
            progress=progress,
        )
        if use_normals and np.isnan(points[..., 3:]).any():
            raise ValueError(
                f"use_normals=True but the {self.layout} files at {root} hold no normals"
            )
        self.points = np.ascontiguousarray(points[..., : self.in_channels])
        if len(self.labels) == 0:
            raise ValueError(
                f"{self.layout} dataset at {root}: the {split} split is empty"
            )
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def _generator(self) -> np.random.Generator:
        # one stream per process and DataLoader worker seed, so workers differ
        info = torch.utils.data.get_worker_info()
        key = (os.getpid(), info.seed if info is not None else -1)
        if self._rng is None or key != self._rng_key:
            extra = [] if info is None else [info.seed % 2**63]
            self._rng, self._rng_key = (
                np.random.default_rng([self.seed, 1, *extra]),
                key,
            )
        return self._rng

    def sample_indices(
        self, index: int, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Which of the P stored points sample ``index`` returns."""
        total = self.points.shape[1]
        if self.split == "test" or rng is None:
            return np.sort(
                np.random.default_rng([self.seed, 2, index]).permutation(total)[
                    : self.num_points
                ]
            )
        return rng.choice(total, self.num_points, replace=False)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index = index % len(self)
        rng = self._generator()
        points = self.points[index, self.sample_indices(index, rng)]
        if self.transform is not None:
            from pointnet1x1.data.transforms import Transform

            if isinstance(self.transform, Transform):
                points = self.transform(points, rng)
            else:
                points = self.transform(points)
        return np.asarray(points, dtype=np.float32), int(self.labels[index])

    def __repr__(self) -> str:
        return (
            f"ModelNet(root={str(self.root)!r}, split={self.split!r}, layout={self.layout!r}, "
            f"classes={self.num_classes}, samples={len(self)}, num_points={self.num_points}, "
            f"in_channels={self.in_channels})"
        )
