"""Every on-disk layout of a classification dataset, detected and listed.

File trees (see :mod:`pointnet1x1.data.tree`): ``class-split``
(``<class>/{train,test}/<file>``, Princeton's ModelNet OFF meshes, the
whole-ModelNet40 npy tree, the ModelNet10 PCD test folder), ``split-class``
(``{train,test}/<class>/<file>``) and ``class`` (``<class>/<file>``, no split on
disk), of any format :func:`pointnet1x1.io.read_points` reads. Their files are
**z up** unless the caller says otherwise. Trees of ModelNet's classes and file
names are recognised as ModelNet40 or ModelNet10.

``resampled``
    ``modelnet40_normal_resampled``: ``<class>/<name>.txt`` rows ``x,y,z,nx,ny,nz``
    with the official lists ``modelnet40_{shape_names,train,test}.txt`` (and
    ``modelnet10_*``). Axis convention: **y up**.
``hdf5``
    ``modelnet40_ply_hdf5_2048``: ``*.h5`` files holding ``data`` (S, 2048, 3) and
    ``label`` ((S,) or (S, 1)), listed by ``train_files.txt`` / ``test_files.txt``
    with ``shape_names.txt``. Axis convention: **y up**.

The root may also hold the dataset one level down, in ``ModelNet40/``,
``ModelNet10/``, ``modelnet40_normal_resampled/`` or ``modelnet40_ply_hdf5_2048/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pointnet1x1.data.listing import (
    MODELNET10_CLASSES,
    MODELNET40_CLASSES,
    MODELNET40_COUNTS,
    MissingDataError,
    SplitListing,
)
from pointnet1x1.data.splits import list_tree, select_classes
from pointnet1x1.data.tree import TREE_LAYOUTS, Tree, scan_tree

__all__ = [
    "LAYOUTS",
    "MODELNET10_CLASSES",
    "MODELNET40_CLASSES",
    "MODELNET40_COUNTS",
    "MissingDataError",
    "SplitListing",
    "complete_classes",
    "detect_layout",
    "find_layout",
    "list_split",
    "missing_message",
]

LAYOUTS = (*TREE_LAYOUTS, "resampled", "hdf5")
_UP_AXIS = {"resampled": "y", "hdf5": "y"}  # file trees: z
_NESTED = (
    "modelnet40_normal_resampled",
    "modelnet40_ply_hdf5_2048",
    "ModelNet40",
    "ModelNet10",
)


def _read_list(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text().splitlines() if s.strip()]


def find_layout(root: str | os.PathLike[str]) -> tuple[str, Path, Tree | None]:
    """The layout under ``root``, the folder holding it, and its scan (trees).

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no known layout.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist or is not a directory"
        )
    nested = [root / n for n in _NESTED if (root / n).is_dir()]
    for base in [root, *nested]:
        if (base / "modelnet40_shape_names.txt").is_file():
            return "resampled", base, None
        if (base / "shape_names.txt").is_file() and (
            base / "train_files.txt"
        ).is_file():
            return "hdf5", base, None
    problems = []
    # a dataset's own folder name under the root wins over the root as a tree
    for base in [*nested, root]:
        try:
            tree = scan_tree(base)
        except (FileNotFoundError, ValueError) as err:
            problems.append(str(err))
            continue
        return tree.layout, base, tree
    raise FileNotFoundError(
        f"no dataset layout found under {root}: expected folders of files "
        "(<class>/{train,test}/<file>, {train,test}/<class>/<file> or "
        "<class>/<file>), modelnet40_shape_names.txt (modelnet40_normal_resampled) "
        "or shape_names.txt + train_files.txt (modelnet40_ply_hdf5_2048); "
        f"{problems[-1]}"
    )


def detect_layout(root: str | os.PathLike[str]) -> tuple[str, Path]:
    """``(layout, base)``: the layout name and the directory holding its files."""
    layout, base, _ = find_layout(root)
    return layout, base


def list_split(
    root: str | os.PathLike[str],
    split: str,
    *,
    classes: Any = None,
    modelnet10: bool = False,
    manifest: dict[str, Any] | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    up_axis: str | None = None,
) -> SplitListing:
    """List the files of one split and which of them are missing.

    Args:
        root: A dataset root (any layout).
        split: ``"train"`` or ``"test"``.
        classes: Optional subset of class names; labels follow its order.
        modelnet10: Select the ten ModelNet10 classes (and its lists when present).
        manifest: A split manifest to follow (file trees only).
        seed, test_fraction: The split of a ``class`` tree (no split on disk).
        up_axis: The up axis of the files (default: the layout's).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    layout, base, tree = find_layout(root)
    axis = up_axis or _UP_AXIS.get(layout, "z")
    if tree is not None:
        return list_tree(tree, split, classes=classes, modelnet10=modelnet10,
                         manifest=manifest, seed=seed, test_fraction=test_fraction,
                         up_axis=axis)  # fmt: skip
    if manifest is not None:
        raise ValueError(
            f"{base}: a split manifest applies to folders of files; the {layout} "
            "layout has ModelNet's official split"
        )
    if layout == "resampled":
        listing = _list_resampled(base, split, classes, modelnet10)
    else:
        all_classes = _read_list(base / "shape_names.txt")
        listing = SplitListing(
            "hdf5",
            base,
            split,
            all_classes,
            select_classes(all_classes, classes, modelnet10),
        )
        present = _existing(base)
        for entry in _read_list(base / f"{split}_files.txt"):
            path = (
                base / Path(entry).name
            )  # lists say data/modelnet40_ply_hdf5_2048/x.h5
            (listing.files if path.name in present else listing.missing).append(path)
        listing.missing_labels = [-1] * len(listing.missing)
        if set(all_classes) == set(MODELNET40_CLASSES):
            listing.dataset = "ModelNet40"
    listing.up_axis = axis
    return listing


def _existing(directory: Path) -> set[str]:
    try:
        return {e.name for e in os.scandir(directory)}
    except OSError:
        return set()


def _list_resampled(base: Path, split: str, classes, modelnet10: bool) -> SplitListing:
    prefix = (
        "modelnet10"
        if modelnet10 and (base / f"modelnet10_{split}.txt").is_file()
        else "modelnet40"
    )
    all_classes = _read_list(base / f"{prefix}_shape_names.txt")
    listing = SplitListing(
        "resampled",
        base,
        split,
        all_classes,
        select_classes(all_classes, classes, modelnet10 and prefix == "modelnet40"),
        dataset="ModelNet10" if modelnet10 else "ModelNet40",
    )
    index = {c: i for i, c in enumerate(listing.class_names)}
    present: dict[str, set[str]] = {}
    for name in _read_list(base / f"{prefix}_{split}.txt"):
        cls = name.rsplit("_", 1)[0]
        if cls not in index:
            continue
        if cls not in present:
            present[cls] = _existing(base / cls)
        path = base / cls / f"{name}.txt"
        if path.name in present[cls]:
            listing.files.append(path)
            listing.labels.append(index[cls])
        else:
            listing.missing.append(path)
            listing.missing_labels.append(index[cls])
    return listing


def complete_classes(
    root: str | os.PathLike[str], *, modelnet10: bool = False, **kw: Any
) -> list[str]:
    """Classes whose files are complete in both splits (usable with ``classes=``)."""
    names: list[str] = []
    incomplete: set[str] = set()
    for split in ("train", "test"):
        listing = list_split(root, split, modelnet10=modelnet10, **kw)
        names = listing.class_names
        if listing.layout == "hdf5":
            return list(names) if not listing.missing else []
        incomplete |= {names[label] for label in listing.missing_labels}
        incomplete |= set(names) - {names[label] for label in listing.labels}
    return [c for c in names if c not in incomplete]


def absent_split_message(listing: SplitListing, other: SplitListing) -> str | None:
    """A one-line error when ``listing``'s split has no file on disk at all."""
    if listing.split in listing.splits_present or listing.layout not in TREE_LAYOUTS:
        return None
    what = f"{listing.describe()} ({listing.layout} layout) at {listing.root}"
    if not other.files:
        return f"{what}: neither split holds a file"
    if listing.split == "train":
        return (
            f"{what} holds only a test split ({len(other.files)} shapes): it can be "
            "evaluated (`pointnet1x1 eval CHECKPOINT --data ROOT`), not trained on; "
            "training needs <class>/train/<file> folders (or <class>/<file> without "
            "a split)"
        )
    return (
        f"{what} holds only a train split ({len(other.files)} shapes) and no test "
        "split to evaluate on; add <class>/test/<file> folders, or put the files in "
        "<class>/<file> for a seeded split"
    )


def missing_message(
    root: str | os.PathLike[str], split: str, *, classes=None, modelnet10: bool = False,
    **kw: Any,
) -> str | None:  # fmt: skip
    """A one-line report of missing files, or ``None`` when the split is complete."""
    listing = list_split(root, split, classes=classes, modelnet10=modelnet10, **kw)
    if not listing.missing:
        return None
    parts = []
    for s in ("train", "test"):
        other = (
            listing
            if s == split
            else list_split(root, s, classes=classes, modelnet10=modelnet10, **kw)
        )
        total = len(other.files) + len(other.missing)
        parts.append(f"{s}: {len(other.missing)} of {total} files missing")
    few = ", ".join(listing.relative(p) for p in listing.missing[:3])
    if kw.get("manifest") is not None:
        return (
            f"dataset at {listing.root} lacks files its split manifest names: "
            f"{'; '.join(parts)} (e.g. {few}); restore them or open the folder "
            "without the manifest"
        )
    usable = (
        complete_classes(root, modelnet10=modelnet10, **kw) if classes is None else []
    )
    hint = "pass classes=[...] (CLI: --classes NAME ...) to use a subset whose files are complete"
    if usable:
        hint += f" ({', '.join(usable)})"
    if not modelnet10 and sorted(usable) == sorted(MODELNET10_CLASSES):
        hint = "pass modelnet10=True (this is ModelNet10)"
    name = listing.dataset or "dataset"
    return (
        f"{name} ({listing.layout} layout) at {listing.root} is incomplete: "
        f"{'; '.join(parts)} (e.g. {few}); download the whole dataset (`pointnet1x1 "
        f"data download modelnet40`) or {hint}"
    )
