"""What ``pointnet1x1 data info`` prints: a dataset's layout, classes and counts.

For every layout: the layout and the files' up axis, the classes, shapes per
class and split (with how many are missing), files per extension, what was
skipped and why (hidden files, unknown extensions, ...), and, after reading the
files (through the cache, so a later ``train`` starts at once), which files
cannot be read and which clouds have fewer than ``num_points`` points.
"""

from __future__ import annotations

import os
from typing import Any

from pointnet1x1.data.listing import SPLITS, SplitListing

__all__ = ["describe_dataset"]

_LAYOUT_TEXT = {
    "class-split": "<class>/{train,test}/<file>",
    "split-class": "{train,test}/<class>/<file>",
    "class": "<class>/<file>, no split on disk",
    "resampled": "modelnet40_normal_resampled, official lists",
    "hdf5": "modelnet40_ply_hdf5_2048",
}
_SHOWN = 3


def _few(paths: list[str]) -> str:
    more = f", ... (+{len(paths) - _SHOWN})" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more


def _listings(root: Any, modelnet10: bool, cache_dir: Any) -> dict[str, SplitListing]:
    from pointnet1x1.data.layouts import find_layout, list_split
    from pointnet1x1.data.splits import list_tree
    from pointnet1x1.data.tree import recognise_modelnet

    layout, base, tree = find_layout(root)
    if tree is None:
        return {s: list_split(root, s, modelnet10=modelnet10) for s in SPLITS}
    plan = None
    if tree.layout == "class" and recognise_modelnet(tree) is None:
        from pointnet1x1.data.folder import _stored_split

        plan = _stored_split(base, tree, 0, 0.2, cache_dir)
    return {s: list_tree(tree, s, modelnet10=modelnet10, manifest=plan) for s in SPLITS}


def describe_dataset(
    root: str | os.PathLike[str],
    *,
    modelnet10: bool = False,
    read: bool = True,
    num_points: int = 1024,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[str]:
    """The lines ``data info`` prints for the dataset at ``root``."""
    from pointnet1x1.data.layouts import absent_split_message, complete_classes
    from pointnet1x1.io.axes import MODEL_UP_AXIS

    listings = _listings(root, modelnet10, cache_dir)
    first = listings["train"]
    lines = [
        f"root:    {first.root}",
        f"dataset: {first.describe()}"
        + (" (official classes, order and split)" if first.official else ""),
        f"layout:  {first.layout} ({_LAYOUT_TEXT[first.layout]}); files are "
        f"{first.up_axis} up, datasets return {MODEL_UP_AXIS} up",
        f"classes: {len(first.class_names)}",
    ]
    if first.layout == "hdf5":
        for split, lst in listings.items():
            lines.append(
                f"{split}: {len(lst.files)} .h5 files present, {len(lst.missing)} missing"
            )
        return lines
    names = first.class_names
    count = {s: [0] * len(names) for s in SPLITS}
    gone = {s: [0] * len(names) for s in SPLITS}
    for split, lst in listings.items():
        for label in lst.labels:
            count[split][label] += 1
        for label in lst.missing_labels:
            gone[split][label] += 1
    lines.append(f"  {'class':<16s} {'train':>12s} {'test':>12s}")
    for i, name in enumerate(names):
        cells = [f"{count[s][i]}" + (f" (-{gone[s][i]})" if gone[s][i] else "") for s in SPLITS]  # fmt: skip
        lines.append(f"  {name:<16s} {cells[0]:>12s} {cells[1]:>12s}")
    for split, lst in listings.items():
        total = len(lst.files) + len(lst.missing)
        if split not in lst.splits_present and lst.layout in _LAYOUT_TEXT:
            official = f" (the official list has {total})" if lst.official else ""
            lines.append(f"{split}: no {split} files on disk{official}")
            continue
        exts = ", ".join(f"{e} {n}" for e, n in lst.extensions().items()) or "none"
        lines.append(
            f"{split}: {len(lst.files)} of {total} shapes present, {len(lst.missing)} "
            f"missing; files by extension: {exts}"
        )
    plan = first.manifest
    if first.layout == "class" and plan is not None and not first.official:
        lines.append(
            f"split:   seeded and stratified (seed {plan['seed']}, test fraction "
            f"{plan['test_fraction']}: n_test = min(max(round(f * n), 1), n - 1) per "
            "class); kept beside the cache and reused while the files stay the same"
        )
    skipped = {k: sorted(set(v)) for lst in listings.values() for k, v in lst.skipped.items()}  # fmt: skip
    if skipped:
        lines.append("skipped:")
        lines += [f"  {reason}: {len(p)} ({_few(p)})" for reason, p in skipped.items()]
    else:
        lines.append("skipped: nothing (no hidden file, unknown extension, ...)")
    if read:
        lines += _read(listings, num_points, cache_dir, progress)
    for split in SPLITS:
        other = listings["test" if split == "train" else "train"]
        message = absent_split_message(listings[split], other)
        if message is not None:
            lines.append(message)
            return lines
    if any(lst.missing for lst in listings.values()):
        usable = complete_classes(root, modelnet10=modelnet10, manifest=plan)
        lines.append(
            "incomplete; complete classes usable with classes=[...]: "
            f"{', '.join(usable) or 'none'}"
        )
    else:
        lines.append("complete")
    return lines


def _read(
    listings: dict[str, SplitListing], num_points: int, cache_dir: Any, progress: bool
) -> list[str]:
    from pointnet1x1.data.modelnet import load_split

    bad: list[str] = []
    short: list[str] = []
    for lst in listings.values():
        if not lst.files:
            continue
        prepared = load_split(
            lst, num_points=num_points, cache_dir=cache_dir, progress=progress
        )
        bad += [f"{rel}: {problem}" for rel, problem in prepared.bad]
        short += prepared.short
    lines = [f"read:    every present file, for num_points={num_points}"]
    if bad:
        lines.append(
            f"  cannot be read: {len(bad)} (train/eval refuse them unless --skip-bad)"
        )
        lines += [f"    {b}" for b in bad[:_SHOWN]]
        if len(bad) > _SHOWN:
            lines.append(f"    ... and {len(bad) - _SHOWN} more")
    else:
        lines.append("  cannot be read: 0")
    lines.append(
        f"  short (fewer than {num_points} points, filled by repeating their own "
        f"points): {len(short)}" + (f" ({_few(short)})" if short else "")
    )
    return lines
