"""Classification data for the engine: whole splits resident in memory as tensors.

The training pool keeps every stored point of every shape, ``(S, P, C)``; each
batch draws a fresh random subset of ``num_points`` on the device. Validation and
test clouds use the dataset's fixed per-shape subset (seeded), so ``eval`` on the
same checkpoint and data reproduces the report's figures exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass
class Split:
    """Clouds ``points`` (S, P, C) float32 and ``labels`` (S,) int64, on the CPU."""

    points: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class ClassificationData:
    class_names: list[str]
    train: Split  # full pool of points per shape
    val: Split  # fixed num_points subset per shape
    test: Split | None
    root: str | None  # None: the embedded default dataset
    up_axis: str
    in_channels: int


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


def _open(root: Path, split: str, data_cfg: dict[str, Any], progress: bool) -> Any:
    from pointnet1x1.data import ModelNet

    return ModelNet(
        root,
        split,
        classes=data_cfg.get("classes"),
        num_points=data_cfg["num_points"],
        use_normals=data_cfg.get("normals", False),
        modelnet10=data_cfg.get("modelnet10", False),
        seed=data_cfg.get("seed", 0),
        cache_dir=data_cfg.get("cache_dir"),
        progress=progress,
    )


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
) -> ClassificationData:
    """Load train (split into train/val) and test splits as in-memory tensors.

    ``data_cfg`` holds ``root`` (None: embedded default), ``classes``,
    ``num_points``, ``normals``, ``modelnet10``, ``seed``, ``cache_dir``.
    """
    root = resolve_root(data_cfg.get("root"))
    train_ds = _open(root, "train", data_cfg, progress)
    labels = np.asarray(train_ds.labels)
    tr, va = stratified_split(labels, val_fraction, data_cfg.get("seed", 0))
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(
            f"{root}: too few training shapes ({len(labels)}) to carve a validation split"
        )
    pool = torch.from_numpy(np.ascontiguousarray(train_ds.points[tr]))
    train = Split(pool, torch.from_numpy(labels[tr]).long())
    val = Split(fixed_subset(train_ds, va), torch.from_numpy(labels[va]).long())
    test = None
    if with_test:
        test = load_test_split(
            root, data_cfg, progress=progress, expected=train_ds.class_names
        )
    return ClassificationData(
        class_names=list(train_ds.class_names),
        train=train,
        val=val,
        test=test,
        root=None if data_cfg.get("root") is None else str(root.resolve()),
        up_axis=getattr(train_ds, "up_axis", "y"),
        in_channels=int(train_ds.in_channels),
    )


def load_test_split(
    root: Path | None,
    data_cfg: dict[str, Any],
    *,
    progress: bool = True,
    expected: list[str] | None = None,
    split: str = "test",
) -> Split:
    """The fixed-subset test split (what the final test and ``eval`` use)."""
    root = resolve_root(data_cfg.get("root")) if root is None else root
    ds = _open(root, split, data_cfg, progress)
    if expected is not None and list(ds.class_names) != list(expected):
        raise ValueError(
            f"{root}: the {split} split has classes {ds.class_names}, "
            f"expected {expected}"
        )
    return Split(fixed_subset(ds), torch.from_numpy(np.asarray(ds.labels)).long())
