"""A dataset from a folder of point-cloud and mesh files, and :func:`open_dataset`.

::

    chairs_and_tables/                 <root>/<class>/<file>: no split on disk
      chair/scan_01.ply  chair/b.pcd  chair/c.off ...
      table/t1.npy  table/t2.obj ...

    ds = FolderDataset("chairs_and_tables", "train", num_points=1024)
    ds.split_manifest      # {"classes": [...], "train": [...], "test": [...], ...}
    FolderDataset(root, "test", manifest=ds.split_manifest)   # the same test files

The three tree layouts, what is skipped and how a split without folders is made
are in :mod:`pointnet1x1.data.tree` and :mod:`pointnet1x1.data.splits`; how each
file becomes points (meshes sampled, clouds reduced, centred, unit sphere, short
clouds filled) in :mod:`pointnet1x1.data.prepare`. The split made for a ``class``
tree is also written beside the cache (``split-seed<S>-test<F>.json``) and read
back while the folder holds the same files, so the split survives a library
update.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pointnet1x1._atomic import atomic_write_bytes
from pointnet1x1.data import cache as _cache
from pointnet1x1.data.dataset import PointCloudDataset
from pointnet1x1.data.layouts import absent_split_message, find_layout, missing_message
from pointnet1x1.data.listing import SPLITS, MissingDataError, SplitListing
from pointnet1x1.data.prepare import (
    BadFilesError,
    Recipe,
    bad_files_message,
    prepare_listing,
)
from pointnet1x1.data.splits import list_tree, make_manifest, read_manifest
from pointnet1x1.data.tree import Tree, recognise_modelnet
from pointnet1x1.io.axes import FILE_UP_AXIS, MODEL_UP_AXIS, check_up_axis

__all__ = ["FolderDataset", "open_dataset"]


def _stored_split(
    base: Path, tree: Tree, seed: int, test_fraction: float, cache_dir: Any
) -> dict[str, Any]:
    """The split of a ``class`` tree: the one stored beside the cache if it holds
    the same files, else a new one (written there)."""
    fresh = make_manifest(tree, seed=seed, test_fraction=test_fraction)
    name = f"split-seed{seed}-test{test_fraction:g}.json"
    try:
        path = _cache.cache_folder(base, cache_dir) / name
    except OSError as err:
        warnings.warn(f"cannot keep the split of {base}: {err}", stacklevel=3)
        return fresh
    if path.is_file():
        try:
            stored = read_manifest(path)
        except ValueError:
            stored = None
        if stored is not None and (
            stored["classes"] == fresh["classes"]
            and sorted(stored["train"] + stored["test"])
            == sorted(fresh["train"] + fresh["test"])
        ):
            return stored
        warnings.warn(
            f"{base}: the files changed since the split in {path} was made; a new "
            "seeded split replaces it (runs keep theirs in their split manifest)",
            stacklevel=3,
        )
    try:
        atomic_write_bytes(path, json.dumps(fresh, indent=1).encode())
    except OSError as err:
        warnings.warn(f"cannot keep the split of {base} in {path}: {err}", stacklevel=3)
    return fresh


class FolderDataset(PointCloudDataset):
    """Point clouds and meshes in a folder per class, in any readable format.

    Args:
        root: A folder in one of the three tree layouts (see
            :mod:`pointnet1x1.data.tree`); ModelNet trees are recognised.
        split: ``"train"`` or ``"test"``.
        classes: Optional subset of class names; labels are ``0..k-1`` in its order.
        num_points: Points per returned sample.
        use_normals: Return ``(N, 6)`` (``xyz`` + normals): mesh face normals or
            the files' own (a cloud without normals is then a bad file).
        sampling: ``"random"`` or ``"fps"`` (see :mod:`pointnet1x1.data.prepare`).
        transform: Called as ``transform(points, rng)`` (a
            :class:`~pointnet1x1.data.transforms.Transform`) or ``transform(points)``.
        modelnet10: Use the ten ModelNet10 classes of a ModelNet40 tree.
        seed: Seeds the sampling of each file, the split of a ``class`` tree and
            the per-access sampling.
        test_fraction: Share of each class that goes to test in a ``class`` tree.
        manifest: A split manifest (dict or JSON file) to follow exactly, as given
            by ``split_manifest``.
        skip_bad: Prepare without the files that cannot be read (listed in
            ``bad_files``) instead of refusing the split.
        source_up_axis: The up axis of the files (default ``"z"``, like meshes
            and scans); points come out in ``MODEL_UP_AXIS``.
        cache_dir: Where prepared arrays go (default: beside the data, or a user
            cache folder when the data is read-only).
        progress: Show a progress bar (on a terminal) while preparing.
        workers: Processes that read files (default: every core).

    Raises:
        MissingDataError: The split has no file on disk, or files that ModelNet's
            lists (or the manifest) name are absent.
        BadFilesError: Files cannot be read (one line each) and ``skip_bad`` is off.

    Shape:
        ``self[i]`` is ``(points, label)``: float32 (num_points, 3 + 3 * use_normals)
        and an int; ``self.points`` is (S, P, 3 + 3 * use_normals), ``P >= num_points``.
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
        test_fraction: float = 0.2,
        manifest: dict[str, Any] | str | os.PathLike[str] | None = None,
        skip_bad: bool = False,
        source_up_axis: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        workers: int | None = None,
    ) -> None:
        if num_points <= 0:
            raise ValueError(f"num_points must be positive, got {num_points}")
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        layout, base, tree = find_layout(root)
        if tree is None:
            raise ValueError(
                f"{root} holds ModelNet's {layout} layout, not folders of files; "
                "open it with ModelNet(...) or open_dataset(...)"
            )
        axis = check_up_axis(source_up_axis or FILE_UP_AXIS, "source_up_axis")
        plan = None if manifest is None else read_manifest(manifest)
        if plan is None and tree.layout == "class" and recognise_modelnet(tree) is None:
            plan = _stored_split(base, tree, seed, test_fraction, cache_dir)
        kw: dict[str, Any] = dict(classes=classes, modelnet10=modelnet10, manifest=plan,
                                  seed=seed, test_fraction=test_fraction, up_axis=axis)  # fmt: skip
        listings = {s: list_tree(tree, s, **kw) for s in SPLITS}
        listing = listings[split]
        other = listings["test" if split == "train" else "train"]
        message = absent_split_message(listing, other)
        if message is None and listing.missing:
            message = missing_message(root, split, **kw)
        if message is not None:
            raise MissingDataError(message)
        recipe = Recipe(num_points, sampling, use_normals, seed, axis, MODEL_UP_AXIS)
        prepared = prepare_listing(
            listing, recipe, cache_dir=cache_dir, progress=progress, workers=workers
        )
        if prepared.bad and not skip_bad:
            total = len(listing.files)
            raise BadFilesError(
                bad_files_message(prepared.bad, total, base), prepared.bad
            )
        self._describe(listing, split)
        self.files = prepared.files
        self.bad_files, self.short_files = prepared.bad, prepared.short
        self.sampling = sampling
        self.split_manifest = _manifest_of(listings, plan)
        self._set_samples(prepared.points, prepared.labels, num_points=num_points,
                          use_normals=use_normals, transform=transform, seed=seed)  # fmt: skip

    def _describe(self, listing: SplitListing, split: str) -> None:
        self.root, self.split, self.layout = listing.root, split, listing.layout
        self.dataset_name = listing.dataset
        self.class_names = list(listing.class_names)
        self.source_up_axis = listing.up_axis
        self.skipped = listing.skipped


def _manifest_of(
    listings: dict[str, SplitListing], plan: dict[str, Any] | None
) -> dict[str, Any]:
    from pointnet1x1.data.splits import MANIFEST_FORMAT

    first = listings["train"]
    made = first.manifest if plan is None else plan
    return {
        "format": MANIFEST_FORMAT,
        "layout": first.layout,
        "seed": None if made is None else made.get("seed"),
        "test_fraction": None if made is None else made.get("test_fraction"),
        "classes": list(first.class_names),
        **{s: [lst.relative(p) for p in lst.files] for s, lst in listings.items()},
    }


def open_dataset(
    root: str | os.PathLike[str], split: str = "train", **kwargs: Any
) -> PointCloudDataset:
    """The dataset at ``root``, of the class its layout needs.

    :class:`~pointnet1x1.data.ModelNet` for ``modelnet40_normal_resampled`` and
    ``modelnet40_ply_hdf5_2048``, :class:`FolderDataset` for folders of files
    (which recognises ModelNet40/10 trees). ``kwargs`` are those of
    :class:`FolderDataset`.
    """
    layout, _, _ = find_layout(root)
    if layout in ("resampled", "hdf5"):
        from pointnet1x1.data.modelnet import ModelNet

        return ModelNet(root, split, **kwargs)
    return FolderDataset(root, split, **kwargs)
