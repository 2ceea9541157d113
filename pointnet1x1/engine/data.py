"""The engine's data: whole splits resident in memory (or on the GPU) as tensors.

Classification (any folder dataset of :func:`pointnet1x1.data.open_dataset`:
the three tree layouts in any file format, ModelNet's published layouts, the
embedded default) and part segmentation (ShapeNetPart) both come out as a
training **pool** that keeps many stored points
of every shape, ``(S, P, C)``, from which :func:`sample_pool` draws a fresh random
subset of ``num_points`` per batch on the device, and validation / test splits of
the dataset's fixed per-shape subsets (seeded), so ``eval`` on the same checkpoint
and data reproduces the report's figures exactly. The datasets are the data
package's; this module only stacks them. A classification dataset's split
manifest (its train / test file lists) travels with the data
(:attr:`ClassificationData.split_manifest`), so a ``<class>/<file>`` tree
without a split on disk is scored on the same test files later.

Shape:
    pools ``(S, P, C)`` float32, fixed splits ``(S, num_points, C)``; class labels
    ``(S,)`` int64; part labels ``(S, P)`` uint8 with categories ``(S,)`` int64.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass
class Split:
    """Clouds ``points`` (S, P, C) float32 and ``labels`` (S,) int64 (or (S, P)
    part labels), with ``categories`` (S,) for part segmentation."""

    points: Tensor
    labels: Tensor
    categories: Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Split:
        cats = None if self.categories is None else self.categories.to(device)
        return Split(self.points.to(device), self.labels.to(device), cats)


@dataclass
class ClassificationData:
    class_names: list[str]
    train: Split  # full pool of points per shape
    val: Split  # fixed num_points subset per shape
    test: Split | None
    root: str | None  # None: the embedded default dataset
    up_axis: str
    in_channels: int
    layout: str = "class-split"  # the dataset's layout (pointnet1x1.data.layouts)
    # the train / test file lists (None: ModelNet's official lists are the split)
    split_manifest: dict[str, Any] | None = None
    # {"file", "split", "problem"} of each file left out by skip_bad
    bad_files: list[dict[str, str]] = dataclasses.field(default_factory=list)
    short_files: int = 0  # shapes with fewer points than asked (filled, see prepare)


def resolve_root(data: str | os.PathLike[str] | None) -> Path:
    """The dataset root: ``data`` (checked) or the embedded default (generated)."""
    if data is None:
        from pointnet1x1.data import default_data_root

        return Path(default_data_root())
    root = Path(data).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"data root not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"data root is not a folder: {root}")
    if not any(root.iterdir()):
        raise ValueError(
            f"data root {root} is empty; point --data at a ModelNet folder"
        )
    return root


def _open(
    root: Path,
    split: str,
    data_cfg: dict[str, Any],
    progress: bool,
    manifest: dict[str, Any] | None = None,
) -> Any:
    """The dataset at ``root`` (any layout :func:`~pointnet1x1.data.open_dataset`
    reads), following ``manifest`` (a split manifest) when given."""
    from pointnet1x1.data import open_dataset

    kwargs: dict[str, Any] = {} if manifest is None else {"manifest": manifest}
    return open_dataset(
        root,
        split,
        classes=data_cfg.get("classes"),
        num_points=data_cfg["num_points"],
        use_normals=data_cfg.get("normals", False),
        modelnet10=data_cfg.get("modelnet10", False),
        seed=data_cfg.get("seed", 0),
        cache_dir=data_cfg.get("cache_dir"),
        skip_bad=bool(data_cfg.get("skip_bad", False)),
        progress=progress,
        **kwargs,
    )


def _bad(dataset: Any, split: str) -> list[dict[str, str]]:
    return [
        {"file": str(rel), "split": split, "problem": str(problem)}
        for rel, problem in getattr(dataset, "bad_files", None) or []
    ]


def fixed_subset(dataset: Any, indices: np.ndarray | None = None) -> Tensor:
    """The dataset's fixed ``num_points`` subset of each shape, ``(S, N, C)``."""
    indices = np.arange(len(dataset)) if indices is None else indices
    rows = [dataset.points[i, dataset.sample_indices(int(i))] for i in indices]
    if not rows:
        return torch.empty(0, dataset.num_points, dataset.in_channels)
    return torch.from_numpy(np.ascontiguousarray(np.stack(rows), dtype=np.float32))


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of indices into (train, val), ``fraction`` of each class to val.

    Every class with at least two samples gives at least one to validation.
    """
    rng = np.random.default_rng([seed, 7])
    train_idx, val_idx = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(len(members))]
        take = round(fraction * len(members))
        take = min(max(take, 1), len(members) - 1) if len(members) >= 2 else 0
        val_idx.append(members[:take])
        train_idx.append(members[take:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def load_classification_data(
    data_cfg: dict[str, Any],
    *,
    val_fraction: float,
    with_test: bool = True,
    progress: bool = True,
    manifest: dict[str, Any] | None = None,
) -> ClassificationData:
    """Load train (split into train/val) and test splits as in-memory tensors.

    ``data_cfg`` holds ``root`` (None: embedded default), ``classes``,
    ``num_points``, ``normals``, ``modelnet10``, ``seed``, ``cache_dir`` and
    ``skip_bad`` (leave out the files that cannot be read, listed in
    ``bad_files``, instead of refusing). ``manifest``: a split manifest to follow
    (e.g. a resumed run's); by default the dataset's own split.
    """
    root = resolve_root(data_cfg.get("root"))
    train_ds = _open(root, "train", data_cfg, progress, manifest)
    labels = np.asarray(train_ds.labels)
    tr, va = stratified_split(labels, val_fraction, data_cfg.get("seed", 0))
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(
            f"{root}: too few training shapes ({len(labels)}) to carve a validation split"
        )
    pool = torch.from_numpy(np.ascontiguousarray(train_ds.points[tr]))
    train = Split(pool, torch.from_numpy(labels[tr]).long())
    val = Split(fixed_subset(train_ds, va), torch.from_numpy(labels[va]).long())
    test, bad = None, _bad(train_ds, "train")
    short = len(getattr(train_ds, "short_files", None) or [])
    plan = getattr(train_ds, "split_manifest", None)
    if with_test:
        # the same split as train's: a class tree's split is stored beside the
        # cache by the train split's opening (given back: ``manifest``)
        test_ds = open_split(
            root, data_cfg, progress=progress, expected=train_ds.class_names,
            manifest=manifest,
        )  # fmt: skip
        test = stack_split(test_ds)
        bad += _bad(test_ds, "test")
        short += len(getattr(test_ds, "short_files", None) or [])
    return ClassificationData(
        class_names=list(train_ds.class_names),
        train=train,
        val=val,
        test=test,
        root=None if data_cfg.get("root") is None else str(root.resolve()),
        up_axis=getattr(train_ds, "up_axis", "y"),
        in_channels=int(train_ds.in_channels),
        layout=str(getattr(train_ds, "layout", "")),
        split_manifest=plan,
        bad_files=bad,
        short_files=short,
    )


def open_split(
    root: Path | None,
    data_cfg: dict[str, Any],
    *,
    progress: bool = True,
    expected: list[str] | None = None,
    split: str = "test",
    manifest: dict[str, Any] | None = None,
) -> Any:
    """The dataset of one split, its classes checked against ``expected``."""
    root = resolve_root(data_cfg.get("root")) if root is None else root
    ds = _open(root, split, data_cfg, progress, manifest)
    if expected is not None and list(ds.class_names) != list(expected):
        raise ValueError(
            f"{root}: the {split} split has classes {ds.class_names}, "
            f"expected {expected}"
        )
    return ds


def stack_split(ds: Any) -> Split:
    return Split(fixed_subset(ds), torch.from_numpy(np.asarray(ds.labels)).long())


def load_test_split(
    root: Path | None,
    data_cfg: dict[str, Any],
    *,
    progress: bool = True,
    expected: list[str] | None = None,
    split: str = "test",
    manifest: dict[str, Any] | None = None,
) -> Split:
    """The fixed-subset test split (what the final test and ``eval`` use)."""
    return stack_split(
        open_split(
            root,
            data_cfg,
            progress=progress,
            expected=expected,
            split=split,
            manifest=manifest,
        )  # fmt: skip
    )


def sample_pool(
    pool: Tensor,
    idx: Tensor,
    num_points: int,
    gen: torch.Generator,
    labels: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """A fresh random ``num_points`` of each chosen shape's stored points.

    Args:
        pool: Tensor of shape (S, P, C) giving every stored point of each shape.
        idx: Long tensor of shape (B,) choosing the shapes.
        num_points: N, at most P (all P, in stored order, when equal).
        gen: Generator on ``pool``'s device.
        labels: Optional per-point labels (S, P), gathered the same way.

    Returns:
        Clouds (B, N, C) and, with ``labels``, their labels (B, N) as int64.
    """
    clouds = pool[idx]  # (B, P, C)
    point_labels = None if labels is None else labels[idx].long()
    b, p, c = clouds.shape
    if p > num_points:
        keep = torch.rand(b, p, generator=gen, device=pool.device).argsort(dim=1)
        keep = keep[:, :num_points]
        clouds = clouds.gather(1, keep.unsqueeze(2).expand(-1, -1, c))  # (B, N, C)
        if point_labels is not None:
            point_labels = point_labels.gather(1, keep)  # (B, N)
    return clouds, point_labels


# --- part segmentation ---------------------------------------------------------------

POOL_POINTS = (
    2048  # stored points kept per training shape (a ShapeNetPart shape has ~2.6k)
)


@dataclass
class PartSegData:
    category_names: list[str]  # all 16 ShapeNetPart categories (indices stay global)
    part_names: list[str]  # all 50 part names
    seg_classes: dict[str, list[int]]  # category -> its part indices
    train: Split  # pool (S, P, C), part labels (S, P), categories (S,)
    val: Split  # the official val list, fixed num_points subset per shape
    test: Split | None
    root: str
    up_axis: str
    in_channels: int


def _stack_parts(dataset: Any) -> Split:
    points, labels, cats = [], [], []
    for i in range(len(dataset)):  # in order: the train subsets are seeded streams
        pts, category, lab = dataset[i]
        points.append(pts)
        labels.append(lab.astype(np.uint8))
        cats.append(category)
    return Split(
        torch.from_numpy(np.stack(points)),
        torch.from_numpy(np.stack(labels)),
        torch.tensor(cats, dtype=torch.long),
    )


def _shapenetpart(
    root: Any, split: str, points: int, normals: bool, categories: Any, seed: int
) -> Any:
    from pointnet1x1.data.shapenetpart import ShapeNetPart

    if root is None:
        raise ValueError(
            "part segmentation needs a ShapeNetPart root: pass --data ROOT "
            "(shapenetcore_partanno_segmentation_benchmark_v0_normal)"
        )
    return ShapeNetPart(
        resolve_root(root), split, num_points=points, use_normals=normals,
        categories=categories, seed=seed,
    )  # fmt: skip


def load_partseg_split(
    root: str | os.PathLike[str] | None,
    split: str,
    *,
    num_points: int,
    normals: bool,
    categories: list[str] | None,
    seed: int,
) -> Split:
    """One official ShapeNetPart list (fixed ``num_points`` subsets) as tensors."""
    part = _stack_parts(
        _shapenetpart(root, split, num_points, normals, categories, seed)
    )
    if len(part) == 0:
        raise ValueError(f"{root}: the ShapeNetPart {split} list holds no shapes")
    return part


def load_partseg_data(
    root: str | os.PathLike[str] | None,
    *,
    num_points: int,
    normals: bool,
    categories: list[str] | None,
    seed: int,
    with_test: bool = True,
) -> PartSegData:
    """ShapeNetPart's official train / val (/ test) lists as resident tensors."""
    from pointnet1x1.data.shapenetpart import CATEGORIES, PART_NAMES, SEG_CLASSES

    train_ds = _shapenetpart(
        root, "train", max(num_points, POOL_POINTS), normals, categories, seed
    )
    train = _stack_parts(train_ds)
    if len(train) == 0:
        raise ValueError(f"{root}: the ShapeNetPart train list holds no shapes")
    kw = {
        "num_points": num_points,
        "normals": normals,
        "categories": categories,
        "seed": seed,
    }
    return PartSegData(
        category_names=list(CATEGORIES),
        part_names=list(PART_NAMES),
        seg_classes={c: list(p) for c, p in SEG_CLASSES.items()},
        train=train,
        val=load_partseg_split(root, "val", **kw),  # type: ignore[arg-type]
        test=load_partseg_split(root, "test", **kw) if with_test else None,  # type: ignore[arg-type]
        root=str(train_ds.root.resolve()),
        up_axis=getattr(train_ds, "up_axis", "y"),  # ShapeNetPart's files are y up
        in_channels=int(train_ds.in_channels),
    )
