"""The three published on-disk layouts of ModelNet, detected and listed.

``off``
    Princeton meshes ``<root>/<class>/{train,test}/<class>_NNNN.off`` (or under
    ``<root>/ModelNet40`` / ``<root>/ModelNet10``). Axis convention: **z up**; the
    loader turns them to y up. When every class directory is a ModelNet40 class,
    the official file names of each split are known (they are numbered
    ``0001..n_train`` then ``n_train+1..n_train+n_test``) and absent ones are
    reported; any other tree (e.g. the embedded default) is read as found.
``resampled``
    ``modelnet40_normal_resampled``: ``<class>/<name>.txt`` rows ``x,y,z,nx,ny,nz``
    with the official lists ``modelnet40_{shape_names,train,test}.txt`` (and
    ``modelnet10_*``). Axis convention: **y up**.
``hdf5``
    ``modelnet40_ply_hdf5_2048``: ``*.h5`` files holding ``data`` (S, 2048, 3) and
    ``label`` ((S,) or (S, 1)), listed by ``train_files.txt`` / ``test_files.txt``
    with ``shape_names.txt``. Axis convention: **y up**.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LAYOUTS",
    "MODELNET10_CLASSES",
    "MODELNET40_CLASSES",
    "MODELNET40_COUNTS",
    "MissingDataError",
    "SplitListing",
    "detect_layout",
    "list_split",
]

LAYOUTS = ("off", "resampled", "hdf5")

# Official (train, test) shape counts per class: 9,843 + 2,468 = 12,311 shapes.
MODELNET40_COUNTS: dict[str, tuple[int, int]] = {
    "airplane": (626, 100), "bathtub": (106, 50), "bed": (515, 100),
    "bench": (173, 20), "bookshelf": (572, 100), "bottle": (335, 100),
    "bowl": (64, 20), "car": (197, 100), "chair": (889, 100), "cone": (167, 20),
    "cup": (79, 20), "curtain": (138, 20), "desk": (200, 86), "door": (109, 20),
    "dresser": (200, 86), "flower_pot": (149, 20), "glass_box": (171, 100),
    "guitar": (155, 100), "keyboard": (145, 20), "lamp": (124, 20),
    "laptop": (149, 20), "mantel": (284, 100), "monitor": (465, 100),
    "night_stand": (200, 86), "person": (88, 20), "piano": (231, 100),
    "plant": (240, 100), "radio": (104, 20), "range_hood": (115, 100),
    "sink": (128, 20), "sofa": (680, 100), "stairs": (124, 20), "stool": (90, 20),
    "table": (392, 100), "tent": (163, 20), "toilet": (344, 100),
    "tv_stand": (267, 100), "vase": (475, 100), "wardrobe": (87, 20),
    "xbox": (103, 20),
}  # fmt: skip
MODELNET40_CLASSES: list[str] = list(MODELNET40_COUNTS)
MODELNET10_CLASSES: list[str] = [
    "bathtub", "bed", "chair", "desk", "dresser",
    "monitor", "night_stand", "sofa", "table", "toilet",
]  # fmt: skip
_UP_AXIS = {"off": "z", "resampled": "y", "hdf5": "y"}


class MissingDataError(ValueError):
    """Files named by a dataset's split lists are absent (the data is incomplete)."""


@dataclass
class SplitListing:
    """What one split of a dataset should hold and what is missing.

    Attributes:
        layout: ``"off"``, ``"resampled"`` or ``"hdf5"``.
        root: The directory the files live under.
        split: ``"train"`` or ``"test"``.
        all_classes: Every class of the dataset in official order.
        class_names: The selected classes (labels are indices into this list).
        files: Per selected shape, its file (``off``/``resampled``), or the ``.h5``
            files of the split (``hdf5``).
        labels: Per entry of ``files``, its label (``off``/``resampled`` only).
        missing: Listed files that do not exist.
        up_axis: ``"y"`` or ``"z"``, the up axis of the files on disk.
    """

    layout: str
    root: Path
    split: str
    all_classes: list[str]
    class_names: list[str]
    files: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    official: bool = True

    @property
    def up_axis(self) -> str:
        return _UP_AXIS[self.layout]


def _read_list(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text().splitlines() if s.strip()]


def detect_layout(root: str | os.PathLike[str]) -> tuple[str, Path]:
    """Find which ModelNet layout lives under ``root``.

    Returns:
        ``(layout, base)``: the layout name and the directory holding its files.

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no known layout.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist or is not a directory"
        )
    candidates = [root] + [
        root / n
        for n in (
            "modelnet40_normal_resampled",
            "modelnet40_ply_hdf5_2048",
            "ModelNet40",
            "ModelNet10",
        )
    ]
    for base in candidates:
        if not base.is_dir():
            continue
        if (base / "modelnet40_shape_names.txt").is_file():
            return "resampled", base
        if (base / "shape_names.txt").is_file() and (
            base / "train_files.txt"
        ).is_file():
            return "hdf5", base
        if _off_classes(base):
            return "off", base
    raise FileNotFoundError(
        f"no ModelNet layout found under {root}: expected <class>/{{train,test}}/*.off, "
        "modelnet40_shape_names.txt (modelnet40_normal_resampled) or shape_names.txt + "
        "train_files.txt (modelnet40_ply_hdf5_2048); see `pointnet1x1 data download --help`"
    )


def _off_classes(base: Path) -> list[str]:
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError:
        return []
    return [
        e.name
        for e in entries
        if e.is_dir()
        and not e.name.startswith(".")
        and ((base / e.name / "train").is_dir() or (base / e.name / "test").is_dir())
    ]


def _select(all_classes: list[str], classes, modelnet10: bool) -> list[str]:
    if classes is None:
        chosen = (
            [c for c in all_classes if c in MODELNET10_CLASSES]
            if modelnet10
            else list(all_classes)
        )
        if modelnet10 and len(chosen) != len(MODELNET10_CLASSES):
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


def _existing(directory: Path) -> set[str]:
    try:
        return {e.name for e in os.scandir(directory)}
    except OSError:
        return set()


def list_split(
    root: str | os.PathLike[str],
    split: str,
    *,
    classes=None,
    modelnet10: bool = False,
) -> SplitListing:
    """List the files of one split and which of them are missing.

    Args:
        root: A dataset root (any of the three layouts).
        split: ``"train"`` or ``"test"``.
        classes: Optional subset of class names; labels follow its order.
        modelnet10: Select the ten ModelNet10 classes (and its lists when present).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    layout, base = detect_layout(root)
    if layout == "resampled":
        return _list_resampled(base, split, classes, modelnet10)
    if layout == "hdf5":
        all_classes = _read_list(base / "shape_names.txt")
        listing = SplitListing(
            "hdf5", base, split, all_classes, _select(all_classes, classes, modelnet10)
        )
        present = _existing(base)
        for entry in _read_list(base / f"{split}_files.txt"):
            path = (
                base / Path(entry).name
            )  # lists say data/modelnet40_ply_hdf5_2048/x.h5
            (listing.files if path.name in present else listing.missing).append(path)
        return listing
    return _list_off(base, split, classes, modelnet10)


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
        _select(all_classes, classes, modelnet10 and prefix == "modelnet40"),
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
    return listing


def _list_off(base: Path, split: str, classes, modelnet10: bool) -> SplitListing:
    found = _off_classes(base)
    official = set(found) <= set(MODELNET40_COUNTS)
    all_classes = MODELNET40_CLASSES if official else found
    listing = SplitListing(
        "off",
        base,
        split,
        all_classes,
        _select(all_classes, classes, modelnet10),
        official=official,
    )
    for label, cls in enumerate(listing.class_names):
        folder = base / cls / split
        present = _existing(folder)
        if official:
            n_train, n_test = MODELNET40_COUNTS[cls]
            first, count = (1, n_train) if split == "train" else (n_train + 1, n_test)
            names = [f"{cls}_{i:04d}.off" for i in range(first, first + count)]
        else:
            names = sorted(n for n in present if n.lower().endswith(".off"))
        for name in names:
            if name in present:
                listing.files.append(folder / name)
                listing.labels.append(label)
            else:
                listing.missing.append(folder / name)
    return listing


def complete_classes(
    root: str | os.PathLike[str], *, modelnet10: bool = False
) -> list[str]:
    """Classes whose files are complete in both splits (usable with ``classes=``)."""
    names: list[str] | None = None
    incomplete: set[str] = set()
    for split in ("train", "test"):
        listing = list_split(root, split, modelnet10=modelnet10)
        names = listing.class_names
        if listing.layout == "hdf5":
            return list(names) if not listing.missing else []
        incomplete |= {
            p.parent.name if listing.layout == "resampled" else p.parent.parent.name
            for p in listing.missing
        }
        have = {listing.class_names[lab] for lab in listing.labels}
        incomplete |= set(names) - have
    return [c for c in (names or []) if c not in incomplete]


def missing_message(
    root: str | os.PathLike[str], split: str, *, classes=None, modelnet10: bool = False
) -> str | None:
    """A one-line report of missing files, or ``None`` when the split is complete."""
    listing = list_split(root, split, classes=classes, modelnet10=modelnet10)
    if not listing.missing:
        return None
    parts = []
    for s in ("train", "test"):
        other = (
            listing
            if s == split
            else list_split(root, s, classes=classes, modelnet10=modelnet10)
        )
        total = len(other.files) + len(other.missing)
        parts.append(f"{s}: {len(other.missing)} of {total} files missing")
    few = ", ".join(str(p.relative_to(listing.root)) for p in listing.missing[:3])
    usable = complete_classes(root, modelnet10=modelnet10) if classes is None else []
    hint = (
        f"pass classes=[...] (CLI: --classes NAME ...) to use a subset whose files are complete ({', '.join(usable)})"
        if usable
        else "pass classes=[...] (CLI: --classes NAME ...) to use a subset whose files are complete"
    )
    if not modelnet10 and sorted(usable) == sorted(MODELNET10_CLASSES):
        hint = "pass modelnet10=True (this is ModelNet10)"
    return (
        f"{listing.layout} dataset at {listing.root} is incomplete: {'; '.join(parts)} "
        f"(e.g. {few}); download the whole dataset (`pointnet1x1 data download "
        f"modelnet40`) or {hint}"
    )
