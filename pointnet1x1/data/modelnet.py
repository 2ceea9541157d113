"""ModelNet40 / ModelNet10 as a torch ``Dataset``, from any of its layouts.

Folders of files (Princeton's OFF meshes, the whole-ModelNet40 npy tree, the
ModelNet10 PCD test split, any other format or tree) are read exactly as
:class:`~pointnet1x1.data.folder.FolderDataset` reads them; ModelNet adds the
two published layouts that are not one file per shape in a class folder:
``modelnet40_normal_resampled`` (text files with official lists, read through
the same preparation and cache) and ``modelnet40_ply_hdf5_2048`` (read directly).

Axis convention: every layout comes out in ``MODEL_UP_AXIS`` (**z up**), the
convention of the Princeton meshes; the y-up resampled and HDF5 files are turned
by :func:`~pointnet1x1.io.axes.convert_up_axis` (the y/z swap measured between
the two published forms: ``tests/data/test_modelnet.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pointnet1x1.data.folder import FolderDataset
from pointnet1x1.data.layouts import find_layout, list_split, missing_message
from pointnet1x1.data.listing import MissingDataError, SplitListing
from pointnet1x1.data.prepare import (
    KEEP_POINTS,
    BadFilesError,
    Prepared,
    Recipe,
    bad_files_message,
    prepare_listing,
)
from pointnet1x1.io.axes import MODEL_UP_AXIS, convert_up_axis

__all__ = ["KEEP_POINTS", "ModelNet", "load_split"]


def _normalize_inplace(points: np.ndarray) -> np.ndarray:
    xyz = points[..., :3]
    xyz -= xyz.mean(axis=1, keepdims=True)
    radius = np.sqrt((xyz * xyz).sum(axis=2)).max(axis=1)  # (S,)
    radius[radius == 0] = 1.0
    xyz /= radius[:, None, None]
    return points


def _load_hdf5(listing: SplitListing, normals: bool) -> tuple[np.ndarray, np.ndarray]:
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
            if normals and "normal" not in f:
                raise ValueError(
                    f"use_normals=True but the hdf5 files at {listing.root} hold no "
                    f"normals ({path.name} has no 'normal' dataset)"
                )
            if normals:
                data = np.concatenate(
                    [data, np.asarray(f["normal"], dtype=np.float32)], axis=2
                )
            label = np.asarray(f["label"]).reshape(-1).astype(np.int64)
            if label.shape[0] != data.shape[0]:
                raise ValueError(
                    f"{path}: {label.shape[0]} labels for {data.shape[0]} shapes"
                )
        chunks.append(data)
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
    points = convert_up_axis(
        points[keep], listing.up_axis, MODEL_UP_AXIS, triples=1 + normals
    )
    return _normalize_inplace(points), remap[label][keep]


def load_split(
    listing: SplitListing,
    *,
    num_points: int = 1024,
    use_normals: bool = False,
    sampling: str = "random",
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Prepared:
    """Prepare (or read from the cache) one listed split of any layout, z up."""
    if listing.layout == "hdf5":
        points, labels = _load_hdf5(listing, use_normals)
        return Prepared(points, labels, [])
    reader = "resampled" if listing.layout == "resampled" else "file"
    recipe = Recipe(num_points, sampling, use_normals, seed, listing.up_axis,
                    MODEL_UP_AXIS, reader)  # fmt: skip
    return prepare_listing(
        listing, recipe, cache_dir=cache_dir, progress=progress, workers=workers
    )


class ModelNet(FolderDataset):
    """ModelNet40 (or ModelNet10) in any layout: folders of files, resampled, HDF5.

    The arguments are those of :class:`FolderDataset`; for the resampled and HDF5
    layouts, whose split is the official one and whose files are y up,
    ``test_fraction`` is ignored and ``manifest`` / ``source_up_axis`` must be None.

    Raises:
        MissingDataError: Files named by the split lists are absent (a ValueError).
        BadFilesError: Files cannot be read and ``skip_bad`` is off.

    Shape:
        ``self[i]`` is ``(points, label)``: float32 (num_points, 3 + 3 * use_normals)
        and an int.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        classes: Sequence[str] | None = None,
        num_points: int = 1024,
        use_normals: bool = False,
        sampling: str = "random",
        transform: Callable[..., np.ndarray] | None = None,
        modelnet10: bool = False,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        skip_bad: bool = False,
        workers: int | None = None,
        **folder_kwargs: Any,
    ) -> None:
        common: dict[str, Any] = dict(
            classes=classes, num_points=num_points, use_normals=use_normals,
            sampling=sampling, transform=transform, modelnet10=modelnet10, seed=seed,
            cache_dir=cache_dir, progress=progress, skip_bad=skip_bad, workers=workers,
        )  # fmt: skip
        layout, _, tree = find_layout(root)
        if tree is not None:
            super().__init__(root, split, **common, **folder_kwargs)
            return
        # the official split and y-up files: a manifest or another axis cannot apply
        folder_kwargs.pop("test_fraction", None)
        given = {k for k, v in folder_kwargs.items() if v is not None}
        if given - {"manifest", "source_up_axis"}:
            unknown = ", ".join(sorted(given - {"manifest", "source_up_axis"}))
            raise TypeError(f"ModelNet() got unexpected keyword arguments: {unknown}")
        if given:
            raise ValueError(
                f"{', '.join(sorted(given))}: not for the {layout} layout (its split "
                "is ModelNet's official one and its files are y up)"
            )
        if num_points <= 0:
            raise ValueError(f"num_points must be positive, got {num_points}")
        listing = list_split(root, split, classes=classes, modelnet10=modelnet10)
        if listing.missing:
            message = missing_message(
                root, split, classes=classes, modelnet10=modelnet10
            )
            raise MissingDataError(message)
        prepared = load_split(
            listing, num_points=num_points, use_normals=use_normals, sampling=sampling,
            seed=seed, cache_dir=cache_dir, progress=progress, workers=workers,
        )  # fmt: skip
        if prepared.bad and not skip_bad:
            raise BadFilesError(
                bad_files_message(prepared.bad, len(listing.files), listing.root),
                prepared.bad,
            )
        self._describe(listing, split)
        self.files = prepared.files if layout == "resampled" else None
        self.bad_files, self.short_files = prepared.bad, prepared.short
        self.sampling = sampling
        self.split_manifest = None  # the official lists are the split
        self._set_samples(prepared.points, prepared.labels, num_points=num_points,
                          use_normals=use_normals, transform=transform, seed=seed)  # fmt: skip
