"""Which files of a tree are train and which are test, and the split manifest.

A tree's split comes from, in this order: a split manifest given back (the exact
files of an earlier run), ModelNet's official numbering (recognised trees), the
``train``/``test`` folders, or, for a ``class`` tree without a split on disk, a
seeded stratified split: in each class of ``n`` files,
``n_test = min(max(round(test_fraction * n), 1), n - 1)`` files go to test
(none when ``n < 2``), namely those whose key ``sha1(f"{seed}:{path}")`` is
smallest. The key depends only on the seed and the file's relative path, so the
split does not depend on listing order, and adding a file moves at most a file
or two.

A split manifest is a small JSON-able dict::

    {"format": "pointnet1x1-split/1", "layout": "class", "seed": 0,
     "test_fraction": 0.2, "classes": ["chair", "table"],
     "train": ["chair/a.ply", ...], "test": ["table/c.off", ...]}

with paths relative to the dataset root (forward slashes). ``classes`` gives the
labels (their order); each file's class is the path component the layout says.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pointnet1x1.data.listing import SPLITS, SplitListing
from pointnet1x1.data.tree import (
    Tree,
    modelnet_classes,
    official_names,
    recognise_modelnet,
)

__all__ = [
    "MANIFEST_FORMAT",
    "check_manifest",
    "list_tree",
    "make_manifest",
    "read_manifest",
    "stratified_test_count",
]

MANIFEST_FORMAT = "pointnet1x1-split/1"
# which path component names the class, per tree layout
_CLASS_PART = {"class-split": 0, "split-class": 1, "class": 0}


def stratified_test_count(n: int, test_fraction: float) -> int:
    """Files of a class of ``n`` that go to test (see the module docstring)."""
    if n < 2:
        return 0
    return min(max(round(test_fraction * n), 1), n - 1)


def _key(seed: int, rel: str) -> str:
    return hashlib.sha1(f"{seed}:{rel}".encode()).hexdigest()


def make_manifest(
    tree: Tree, *, seed: int = 0, test_fraction: float = 0.2
) -> dict[str, Any]:
    """The split of ``tree`` (seeded and stratified for a ``class`` tree)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train: list[str] = []
    test: list[str] = []
    if tree.layout == "class":
        for cls in tree.classes:
            rels = sorted(tree.files["all"].get(cls, []), key=lambda r: _key(seed, r))
            take = stratified_test_count(len(rels), test_fraction)
            test += sorted(rels[:take])
            train += sorted(rels[take:])
    else:
        train = [r for rels in tree.files.get("train", {}).values() for r in rels]
        test = [r for rels in tree.files.get("test", {}).values() for r in rels]
    return {
        "format": MANIFEST_FORMAT,
        "layout": tree.layout,
        "seed": seed,
        "test_fraction": test_fraction,
        "classes": tree.classes,
        "train": train,
        "test": test,
    }


def check_manifest(manifest: Any, where: str = "split manifest") -> dict[str, Any]:
    """``manifest`` if it is a well-formed split manifest, else ValueError."""
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest)
        raise ValueError(
            f"{where}: not a split manifest (format {got!r}, expected "
            f"{MANIFEST_FORMAT!r}); pass the dict a dataset's split_manifest gave"
        )
    if manifest.get("layout") not in _CLASS_PART:
        raise ValueError(f"{where}: unknown layout {manifest.get('layout')!r}")
    for key in ("classes", *SPLITS):
        value = manifest.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}: {key!r} must be a list of strings")
    for rel in manifest["train"] + manifest["test"]:
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts or len(parts) < 2:
            raise ValueError(
                f"{where}: {rel!r} is not a path relative to the dataset root"
            )
    return manifest


def read_manifest(source: dict[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A split manifest from a dict or a JSON file, checked."""
    if isinstance(source, dict):
        return check_manifest(source)
    path = Path(source)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the split manifest: {err}") from None
    return check_manifest(data, str(path))


def select_classes(all_classes: list[str], classes: Any, modelnet10: bool) -> list[str]:
    from pointnet1x1.data.listing import MODELNET10_CLASSES

    if classes is None:
        if not modelnet10:
            return list(all_classes)
        chosen = [c for c in all_classes if c in MODELNET10_CLASSES]
        if len(chosen) != len(MODELNET10_CLASSES):
            raise ValueError(
                f"modelnet10=True but this dataset has only {len(chosen)} of its 10 classes"
            )
        return chosen
    if isinstance(classes, str):
        raise ValueError(
            f"classes must be a list of class names, got the string {classes!r}"
        )
    chosen = list(classes)
    unknown = [c for c in chosen if c not in all_classes]
    if unknown or len(set(chosen)) != len(chosen) or not chosen:
        raise ValueError(
            f"classes={chosen!r}: unknown or repeated names {unknown!r}; "
            f"known classes: {', '.join(all_classes)}"
        )
    return chosen


def list_tree(
    tree: Tree,
    split: str,
    *,
    classes: Any = None,
    modelnet10: bool = False,
    manifest: dict[str, Any] | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    up_axis: str = "z",
) -> SplitListing:
    """List one split of a scanned tree (see the module docstring for the rules)."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    dataset = recognise_modelnet(tree)
    skipped = {k: list(v) for k, v in tree.skipped.items()}
    if manifest is not None:
        all_classes = list(manifest["classes"])
        if classes is not None and list(classes) != all_classes:
            raise ValueError(
                f"classes={list(classes)!r} differ from the split manifest's "
                f"{all_classes!r}; pass one or the other"
            )
    elif dataset is not None:
        all_classes = modelnet_classes(dataset)
    else:
        all_classes = tree.classes
    listing = SplitListing(
        tree.layout,
        tree.root,
        split,
        all_classes,
        select_classes(all_classes, classes, modelnet10),
        dataset=dataset,
        up_axis=up_axis,
        skipped=skipped,
        splits_present=tree.splits_present(),
    )
    index = {c: i for i, c in enumerate(listing.class_names)}
    if dataset is not None and manifest is None:
        _list_official(tree, listing, index)
    else:
        plan = manifest or make_manifest(tree, seed=seed, test_fraction=test_fraction)
        present = {r for by_class in tree.files.values() for rels in by_class.values() for r in rels}  # fmt: skip
        part = _CLASS_PART[plan["layout"]]
        wanted = set(plan["train"]) | set(plan["test"])
        unlisted = sorted(present - wanted)
        if unlisted and manifest is not None:
            skipped["not in the split manifest"] = unlisted
        for rel in plan[split]:
            label = index.get(rel.split("/")[part])
            if label is None:
                continue
            path = tree.root / rel
            if rel in present:
                listing.files.append(path)
                listing.labels.append(label)
            else:
                listing.missing.append(path)
                listing.missing_labels.append(label)
        listing.manifest = plan
    return listing


def _list_official(tree: Tree, listing: SplitListing, index: dict[str, int]) -> None:
    split = listing.split
    ext = _common_extension(tree)
    for cls, label in index.items():
        if tree.layout == "class":
            rels = tree.files["all"].get(cls, [])
            prefix = cls
        elif tree.layout == "class-split":
            rels, prefix = tree.files.get(split, {}).get(cls, []), f"{cls}/{split}"
        else:
            rels, prefix = tree.files.get(split, {}).get(cls, []), f"{split}/{cls}"
        by_stem: dict[str, str] = {}
        rel: str | None
        for rel in rels:
            stem = os.path.splitext(rel.rsplit("/", 1)[-1])[0]
            if stem in by_stem:
                listing.skipped.setdefault(
                    "duplicate shape name (another extension)", []
                ).append(rel)
            else:
                by_stem[stem] = rel
        expected = official_names(cls, split)
        for name in expected:
            rel = by_stem.pop(name) if name in by_stem else None
            if rel is None:
                listing.missing.append(tree.root / prefix / f"{name}{ext}")
                listing.missing_labels.append(label)
            else:
                listing.files.append(tree.root / rel)
                listing.labels.append(label)
        if tree.layout != "class" and by_stem:
            listing.skipped.setdefault("not in the official split list", []).extend(
                sorted(by_stem.values())
            )


def _common_extension(tree: Tree) -> str:
    counts: dict[str, int] = {}
    for by_class in tree.files.values():
        for rels in by_class.values():
            for rel in rels:
                ext = os.path.splitext(rel)[1]
                counts[ext] = counts.get(ext, 0) + 1
    return max(counts, key=lambda e: counts[e]) if counts else ""
