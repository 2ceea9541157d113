"""Folders of point-cloud and mesh files: three tree layouts, scanned once.

``class-split``   ``<root>/<class>/{train,test}/<file>``  (Princeton's ModelNet)
``split-class``   ``<root>/{train,test}/<class>/<file>``
``class``         ``<root>/<class>/<file>``  (no split on disk: a seeded,
                  stratified one is made, see :mod:`pointnet1x1.data.splits`)

A file is any format :func:`pointnet1x1.io.read_points` reads, mixed freely.
Everything else met on the way is skipped and counted by reason, never silently:
hidden entries (``.name``; the cache folder ``.pointnet1x1_cache`` excepted),
unknown extensions, files outside class folders, sub-folders of a leaf folder,
``val`` folders (the trainer carves validation from train), empty class folders.

Class folders that are all ModelNet40 classes, holding only files named
``<class>_NNNN.<ext>`` with official numbers, are ModelNet: the official class
order, the official split of each number (``0001..n_train`` train, the rest
test, so a ``class`` tree gets the official split too) and the absent files are
reported. Exactly ModelNet10's ten classes make ModelNet10.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pointnet1x1.data.listing import (
    MODELNET10_CLASSES,
    MODELNET40_CLASSES,
    MODELNET40_COUNTS,
    SPLITS,
)

__all__ = ["CACHE_DIRNAME", "TREE_LAYOUTS", "Tree", "recognise_modelnet", "scan_tree"]

TREE_LAYOUTS = ("class-split", "split-class", "class")
CACHE_DIRNAME = ".pointnet1x1_cache"
_OFFICIAL_NAME = re.compile(r"^(.+)_(\d{4})$")


def _supported() -> frozenset[str]:
    from pointnet1x1.io import SUPPORTED_EXTENSIONS

    return frozenset(SUPPORTED_EXTENSIONS)


@dataclass
class Tree:
    """A scanned file tree.

    Attributes:
        root: The scanned folder.
        layout: One of :data:`TREE_LAYOUTS`.
        files: ``{split: {class: [relative path, ...]}}``, paths sorted; the
            split is ``"all"`` for the ``class`` layout.
        skipped: Reason -> relative paths of the entries not used.
    """

    root: Path
    layout: str
    files: dict[str, dict[str, list[str]]]
    skipped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        """Every class folder holding at least one file, sorted."""
        return sorted({c for by_class in self.files.values() for c in by_class})

    def splits_present(self) -> tuple[str, ...]:
        if self.layout == "class":
            return SPLITS
        return tuple(s for s in SPLITS if any(self.files.get(s, {}).values()))


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as err:
        raise FileNotFoundError(
            f"{folder}: cannot list the folder ({err.strerror})"
        ) from None


def _skip(skipped: dict[str, list[str]], reason: str, rel: str) -> None:
    skipped.setdefault(reason, []).append(rel)


def _leaf(folder: Path, prefix: str, skipped: dict[str, list[str]]) -> list[str]:
    """The data files directly in ``folder``, as ``prefix/name``; the rest counted."""
    known = _supported()
    found = []
    for entry in _entries(folder):
        rel = f"{prefix}/{entry.name}"
        if entry.name.startswith("."):
            _skip(skipped, "hidden", rel)
        elif entry.is_dir():
            _skip(skipped, "sub-folder of a class folder", rel + "/")
        elif os.path.splitext(entry.name)[1].lower() not in known:
            _skip(skipped, "unknown extension", rel)
        else:
            found.append(rel)
    return found


def _top(folder: Path, prefix: str, skipped: dict[str, list[str]]) -> list[str]:
    """Visible sub-folders of ``folder``; hidden entries and files are counted."""
    names = []
    for entry in _entries(folder):
        rel = f"{prefix}{entry.name}"
        if entry.name.startswith("."):
            if entry.name != CACHE_DIRNAME:
                _skip(skipped, "hidden", rel)
        elif entry.is_dir():
            names.append(entry.name)
        else:
            _skip(skipped, "not in a class folder", rel)
    return names


def scan_tree(root: str | os.PathLike[str]) -> Tree:
    """Find the layout of the file tree at ``root`` and list its files.

    Raises:
        FileNotFoundError: ``root`` holds no class folder with a readable file.
        ValueError: Some class folders have ``train``/``test`` sub-folders and
            others do not.
    """
    root = Path(root)
    skipped: dict[str, list[str]] = {}
    dirs = _top(root, "", skipped)
    files: dict[str, dict[str, list[str]]] = {}
    if dirs and set(dirs) <= {*SPLITS, "val"} and set(dirs) & set(SPLITS):
        layout = "split-class"
        for split in dirs:
            if split == "val":
                _skip(skipped, "val folder (validation is carved from train)", "val/")
                continue
            for cls in _top(root / split, f"{split}/", skipped):
                files.setdefault(split, {})[cls] = _leaf(
                    root / split / cls, f"{split}/{cls}", skipped
                )
    else:
        has_split = {d: bool({*SPLITS} & set(_subdirs(root / d))) for d in dirs}
        if any(has_split.values()) and not all(has_split.values()):
            with_, without = (
                [d for d, v in has_split.items() if v is flag][:3]
                for flag in (True, False)
            )
            raise ValueError(
                f"{root}: some class folders have train/test sub-folders "
                f"({', '.join(with_)}) and some do not ({', '.join(without)}); use "
                "one layout: <class>/{train,test}/<file> or <class>/<file>"
            )
        layout = "class-split" if any(has_split.values()) else "class"
        for cls in dirs:
            if layout == "class":
                files.setdefault("all", {})[cls] = _leaf(root / cls, cls, skipped)
                continue
            for entry in _entries(root / cls):
                rel = f"{cls}/{entry.name}"
                if entry.name.startswith("."):
                    _skip(skipped, "hidden", rel)
                elif entry.is_dir() and entry.name in SPLITS:
                    files.setdefault(entry.name, {})[cls] = _leaf(
                        root / cls / entry.name, rel, skipped
                    )
                elif entry.is_dir():
                    reason = (
                        "val folder (validation is carved from train)"
                        if entry.name == "val"
                        else "folder other than train/test"
                    )
                    _skip(skipped, reason, rel + "/")
                else:
                    _skip(skipped, "not in a train/test folder", rel)
    _drop_empty(files, skipped)
    tree = Tree(root, layout, files, skipped)
    if not tree.classes:
        found = "; ".join(f"{len(v)} {k}" for k, v in skipped.items()) or "nothing"
        raise FileNotFoundError(
            f"no point-cloud or mesh files found under {root} (found: {found}); "
            "expected <class>/{train,test}/<file>, {train,test}/<class>/<file> or "
            f"<class>/<file> with one of the extensions {', '.join(sorted(_supported()))}"
        )
    return tree


def _subdirs(folder: Path) -> list[str]:
    return [e.name for e in _entries(folder) if e.is_dir()]


def _drop_empty(
    files: dict[str, dict[str, list[str]]], skipped: dict[str, list[str]]
) -> None:
    classes = {c for by_class in files.values() for c in by_class}
    for cls in sorted(classes):
        if not any(by_class.get(cls) for by_class in files.values()):
            _skip(skipped, "class folder without files", cls + "/")
            for by_class in files.values():
                by_class.pop(cls, None)


def _official_number(rel: str, cls: str) -> int | None:
    stem = os.path.splitext(rel.rsplit("/", 1)[-1])[0]
    match = _OFFICIAL_NAME.match(stem)
    if match is None or match.group(1) != cls:
        return None
    number = int(match.group(2))
    n_train, n_test = MODELNET40_COUNTS[cls]
    return number if 1 <= number <= n_train + n_test else None


def recognise_modelnet(tree: Tree) -> str | None:
    """``"ModelNet40"``, ``"ModelNet10"`` or None (a dataset of one's own)."""
    classes = set(tree.classes)
    if not classes <= set(MODELNET40_CLASSES):
        return None
    for by_class in tree.files.values():
        for cls, rels in by_class.items():
            if any(_official_number(rel, cls) is None for rel in rels):
                return None
    return "ModelNet10" if classes == set(MODELNET10_CLASSES) else "ModelNet40"


def official_names(cls: str, split: str) -> list[str]:
    """The official shape names (no extension) of ``cls`` in ``split``."""
    n_train, n_test = MODELNET40_COUNTS[cls]
    first, count = (1, n_train) if split == "train" else (n_train + 1, n_test)
    return [f"{cls}_{i:04d}" for i in range(first, first + count)]


def modelnet_classes(dataset: str) -> list[str]:
    """The official class order of ``"ModelNet40"`` or ``"ModelNet10"``."""
    return list(MODELNET10_CLASSES if dataset == "ModelNet10" else MODELNET40_CLASSES)
