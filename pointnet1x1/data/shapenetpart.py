"""ShapeNetPart (Yi et al. 2016) part segmentation, in its common layout.

The layout of ``shapenetcore_partanno_segmentation_benchmark_v0_normal.zip`` (the
one the PointNet++ authors and most PyTorch ports read)::

    shapenetcore_partanno_segmentation_benchmark_v0_normal/
      synsetoffset2category.txt        "Airplane<TAB>02691156", one per line
      train_test_split/
        shuffled_{train,val,test}_file_list.json   ["shape_data/02691156/<id>", ...]
      02691156/<id>.txt                one "x y z nx ny nz part" row per point
      ...

16 object categories and 50 part labels; part labels are global (``0..49``), each
category owns a contiguous range (:data:`SEG_CLASSES`, the standard table).
Category indices follow the sorted category names (``Airplane`` = 0, ...,
``Table`` = 15) and stay the same when only some categories are loaded, so a model
always sees 16 categories and 50 parts.

Items are ``(points (N, 3+F) float32, category int, part labels (N,) int64)``,
points-major like every dataset here; :func:`collate_parts` makes the
channels-first batches ``(B, 3+F, N)`` the models take.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pointnet1x1.data.layouts import MissingDataError
from pointnet1x1.data.transforms import normalize_points

__all__ = [
    "CATEGORIES",
    "NUM_PARTS",
    "PART_NAMES",
    "PART_TO_CATEGORY",
    "SEG_CLASSES",
    "SHAPENETPART_DIRNAME",
    "ShapeNetPart",
    "collate_parts",
    "read_shape_file",
]

SHAPENETPART_DIRNAME = "shapenetcore_partanno_segmentation_benchmark_v0_normal"

# The standard category -> part labels table (the authors' part_seg code).
SEG_CLASSES: dict[str, tuple[int, ...]] = {
    "Airplane": (0, 1, 2, 3),
    "Bag": (4, 5),
    "Cap": (6, 7),
    "Car": (8, 9, 10, 11),
    "Chair": (12, 13, 14, 15),
    "Earphone": (16, 17, 18),
    "Guitar": (19, 20, 21),
    "Knife": (22, 23),
    "Lamp": (24, 25, 26, 27),
    "Laptop": (28, 29),
    "Motorbike": (30, 31, 32, 33, 34, 35),
    "Mug": (36, 37),
    "Pistol": (38, 39, 40),
    "Rocket": (41, 42, 43),
    "Skateboard": (44, 45, 46),
    "Table": (47, 48, 49),
}
CATEGORIES: tuple[str, ...] = tuple(sorted(SEG_CLASSES))
NUM_PARTS = 50
PART_TO_CATEGORY: tuple[int, ...] = tuple(
    CATEGORIES.index(c) for c in CATEGORIES for _ in SEG_CLASSES[c]
)
# The dataset files carry numbers only; names are "<Category>_<k>" (k-th part).
PART_NAMES: tuple[str, ...] = tuple(
    f"{c}_{k}" for c in CATEGORIES for k in range(len(SEG_CLASSES[c]))
)

_SPLITS = ("train", "val", "test", "trainval")
_META = "synsetoffset2category.txt"


def read_shape_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one ``x y z nx ny nz part`` text file.

    Returns:
        Array of shape ``(N, 7)``, float32 (the part label in the last column).
    """
    values = np.fromfile(path, dtype=np.float32, sep=" ")
    if values.size == 0 or values.size % 7:
        raise ValueError(
            f"{path}: expected rows of 7 numbers (x y z nx ny nz part), got "
            f"{values.size} numbers"
        )
    return values.reshape(-1, 7)


def _find_root(root: str | os.PathLike[str]) -> Path:
    root = Path(root).expanduser()
    if (root / SHAPENETPART_DIRNAME / _META).is_file():
        return root / SHAPENETPART_DIRNAME
    if (root / _META).is_file():
        return root
    raise MissingDataError(
        f"ShapeNetPart: {_META} missing under {root} (nor under "
        f"{root / SHAPENETPART_DIRNAME}); unpack {SHAPENETPART_DIRNAME}.zip there"
    )


def _read_synsets(root: Path) -> dict[str, str]:
    """Category name -> synset folder, from ``synsetoffset2category.txt``."""
    synsets = {}
    for line in (root / _META).read_text().splitlines():
        fields = line.split()
        if len(fields) == 2:
            synsets[fields[0]] = fields[1]
    unknown = sorted(set(synsets) - set(CATEGORIES))
    if unknown:
        raise ValueError(
            f"{root / _META}: unknown categories {unknown}; expected some of "
            f"{', '.join(CATEGORIES)}"
        )
    return synsets


def _read_split(root: Path, split: str) -> list[tuple[str, str]]:
    """``(synset, shape id)`` pairs of the official list of one split."""
    path = root / "train_test_split" / f"shuffled_{split}_file_list.json"
    if not path.is_file():
        raise MissingDataError(
            f"ShapeNetPart at {root}: split list {path.name} missing "
            f"(expected in {path.parent})"
        )
    entries = json.loads(path.read_text())
    return [tuple(str(e).split("/")[-2:]) for e in entries]  # type: ignore[misc]


class ShapeNetPart(torch.utils.data.Dataset):
    """ShapeNetPart shapes with per-point part labels and the object category.

    Args:
        root: The ``shapenetcore_partanno_segmentation_benchmark_v0_normal``
            folder, or the folder that contains it.
        split: ``"train"``, ``"val"``, ``"test"`` (the official lists) or
            ``"trainval"`` (train and val together).
        num_points: Points per item: a random subset (without replacement when
            the shape has enough, then padded by repeats); ``None`` keeps all
            points (items then differ in size).
        use_normals: Return ``x y z nx ny nz`` instead of ``x y z``.
        categories: Category names to load (default all 16); indices of
            categories and parts stay global.
        transform: Callable on the ``(N, 3+F)`` points after sampling and
            normalisation; it must keep rows in place (rotate, scale, jitter).
        normalize: Centre each shape at its centroid and scale it to the unit
            sphere (before sampling, on the whole shape).
        seed: Seed of the sampling: training splits draw fresh subsets from one
            generator; ``val``/``test`` draw the same subset of an item every time.
        cache: Keep parsed files in memory (the whole dataset is ~1.4 GB as
            float32 with normals; the text parse is the slow part).

    Raises:
        MissingDataError: (a ``ValueError``) when the metadata, a split list or
            any shape file of the requested split is missing.
    """

    num_categories = len(CATEGORIES)
    num_parts = NUM_PARTS
    category_names = list(CATEGORIES)
    part_names = list(PART_NAMES)

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        num_points: int | None = 2048,
        use_normals: bool = False,
        categories: Sequence[str] | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        normalize: bool = True,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(
                f"split must be one of {', '.join(_SPLITS)}, got {split!r}"
            )
        if num_points is not None and num_points <= 0:
            raise ValueError(f"num_points must be positive, got {num_points}")
        self.root = _find_root(root)
        synsets = _read_synsets(self.root)
        wanted = list(synsets) if categories is None else list(categories)
        unknown = [c for c in wanted if c not in synsets]
        if unknown:
            raise ValueError(
                f"unknown ShapeNetPart categories {unknown}; choose from "
                f"{', '.join(sorted(synsets))}"
            )
        by_synset = {synsets[c]: CATEGORIES.index(c) for c in wanted}
        lists = ("train", "val") if split == "trainval" else (split,)
        pairs = [
            p for s in lists for p in _read_split(self.root, s) if p[0] in by_synset
        ]
        self.files = [self.root / syn / f"{sid}.txt" for syn, sid in pairs]
        self.categories = [by_synset[syn] for syn, _ in pairs]
        missing = [f for f in self.files if not f.is_file()]
        if missing:
            few = ", ".join(str(f.relative_to(self.root)) for f in missing[:3])
            raise MissingDataError(
                f"ShapeNetPart at {self.root}: {len(missing)} of {len(self.files)} "
                f"shape files of the {split} split missing (e.g. {few}); unpack "
                f"{SHAPENETPART_DIRNAME}.zip whole, or pass categories=[...]"
            )
        self.split, self.num_points, self.use_normals = split, num_points, use_normals
        self.transform, self.normalize, self.seed = transform, normalize, seed
        self.in_channels = 6 if use_normals else 3
        self._train = split in ("train", "trainval")
        self._rng = np.random.default_rng(seed)
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (
            f"ShapeNetPart(split={self.split!r}, shapes={len(self)}, "
            f"num_points={self.num_points}, use_normals={self.use_normals})"
        )

    def _load(self, index: int) -> np.ndarray:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        data = read_shape_file(self.files[index])
        if self._cache is not None:
            self._cache[index] = data
        return data

    def __getitem__(self, index: int) -> tuple[np.ndarray, int, np.ndarray]:
        data = self._load(index)
        points = data[:, : self.in_channels]
        labels = data[:, 6].astype(np.int64)
        if self.normalize:
            points = normalize_points(points)
        if self.num_points is not None:
            rng = (
                self._rng if self._train else np.random.default_rng((self.seed, index))
            )
            n = len(points)
            take = rng.permutation(n)[: self.num_points]
            if n < self.num_points:
                take = np.concatenate([take, rng.integers(0, n, self.num_points - n)])
            points, labels = points[take], labels[take]
        points = np.ascontiguousarray(points, dtype=np.float32)
        if self.transform is not None:
            points = np.asarray(self.transform(points), dtype=np.float32)
        return points, self.categories[index], labels


def collate_parts(
    samples: Sequence[tuple[Any, int, Any]],
) -> tuple[Tensor, Tensor, Tensor]:
    """Stack ``(points, category, labels)`` items into channels-first batches.

    Returns:
        Points ``(B, 3+F, N)`` float32, categories ``(B,)`` and part labels
        ``(B, N)``, both int64.
    """
    if len(samples) == 0:
        raise ValueError("cannot collate an empty list of samples")
    shapes = {np.shape(s[0]) for s in samples}
    if len(shapes) != 1:
        raise ValueError(
            f"items differ in shape {sorted(shapes)}; set num_points to batch them"
        )
    points = torch.stack([torch.as_tensor(np.asarray(s[0])) for s in samples])
    x = points.float().transpose(1, 2).contiguous()  # (B, 3+F, N)
    category = torch.tensor([int(s[1]) for s in samples], dtype=torch.int64)
    labels = torch.stack([torch.as_tensor(np.asarray(s[2])) for s in samples]).long()
    return x, category, labels
