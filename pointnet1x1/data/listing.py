"""What a split of a dataset holds: the :class:`SplitListing`, and ModelNet's names.

Every layout (a folder tree of files, ``modelnet40_normal_resampled``, the HDF5
files) is listed into one :class:`SplitListing` per split: the files and their
labels, what the official lists name but the disk lacks, what was skipped and
why, and the up axis of the files. Datasets prepare from a listing; ``data info``
prints one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MODELNET10_CLASSES",
    "MODELNET40_CLASSES",
    "MODELNET40_COUNTS",
    "SPLITS",
    "MissingDataError",
    "SplitListing",
]

SPLITS = ("train", "test")

# Official (train, test) shape counts per class: 9,843 + 2,468 = 12,311 shapes.
# ModelNet10 numbers its shapes exactly as ModelNet40 does (3,991 + 908).
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


class MissingDataError(ValueError):
    """Files named by a dataset's split lists are absent (the data is incomplete)."""


@dataclass
class SplitListing:
    """What one split of a dataset should hold and what is missing.

    Attributes:
        layout: ``"class-split"`` (``<class>/{train,test}/<file>``),
            ``"split-class"`` (``{train,test}/<class>/<file>``), ``"class"``
            (``<class>/<file>``, no split on disk), ``"resampled"`` or ``"hdf5"``.
        root: The directory the files live under (paths are relative to it).
        split: ``"train"`` or ``"test"``.
        all_classes: Every class of the dataset (official order for ModelNet).
        class_names: The selected classes (labels are indices into this list).
        files: Per selected shape, its file; for ``hdf5``, the ``.h5`` files.
        labels: Per entry of ``files``, its label (not for ``hdf5``).
        missing: Files the official lists (or a split manifest) name that do not
            exist; ``missing_labels`` holds their labels.
        dataset: ``"ModelNet40"`` or ``"ModelNet10"`` when recognised, else None.
        up_axis: ``"x"``, ``"y"`` or ``"z"``: the up axis of the files on disk.
        skipped: Why entries of the tree were not used (``"hidden"``,
            ``"unknown extension"``, ...) -> their paths relative to ``root``.
        splits_present: The splits that hold at least one file on disk.
        manifest: The split manifest this listing follows or made (file trees).
    """

    layout: str
    root: Path
    split: str
    all_classes: list[str]
    class_names: list[str]
    files: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    missing_labels: list[int] = field(default_factory=list)
    dataset: str | None = None
    up_axis: str = "z"
    skipped: dict[str, list[str]] = field(default_factory=dict)
    splits_present: tuple[str, ...] = SPLITS
    manifest: dict[str, Any] | None = None

    @property
    def official(self) -> bool:
        """Whether the split follows ModelNet's official lists."""
        return self.dataset is not None

    def relative(self, path: Path) -> str:
        """``path`` relative to :attr:`root`, with forward slashes."""
        return path.relative_to(self.root).as_posix()

    def extensions(self) -> dict[str, int]:
        """How many listed files have each extension (lower case), most first."""
        counts = Counter(p.suffix.lower() or "(none)" for p in self.files)
        return dict(counts.most_common())

    def describe(self) -> str:
        """``"ModelNet40"``, ``"ModelNet10"`` or ``"a folder dataset"``."""
        return self.dataset or "a folder dataset"
