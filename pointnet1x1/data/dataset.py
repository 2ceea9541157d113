"""The in-memory dataset that every layout comes out as.

A split is held as one float32 array ``points`` of shape (S, P, C) (normalised
per shape, in the models' up axis :data:`~pointnet1x1.io.axes.MODEL_UP_AXIS`)
and int64 ``labels`` (S,). Each access returns ``num_points`` of the ``P``: a
fresh random subset for ``split="train"``, a fixed one per shape (seeded) for
``split="test"``, then ``transform``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pointnet1x1.io.axes import MODEL_UP_AXIS

__all__ = ["PointCloudDataset"]


class PointCloudDataset(Dataset):
    """Prepared clouds and labels; the common access of every dataset class.

    Attributes:
        root: The folder the files live in (paths are relative to it).
        split: ``"train"`` or ``"test"``.
        layout: The on-disk layout (see :mod:`pointnet1x1.data.layouts`).
        dataset_name: ``"ModelNet40"``, ``"ModelNet10"`` or None (one's own data).
        class_names: Label ``i`` is ``class_names[i]``.
        points: float32 (S, P, C) with ``P >= num_points``.
        labels: int64 (S,).
        files: The relative path of each shape (None for ``hdf5``).
        in_channels: ``C``: 3 (xyz) or 6 (xyz + normals).
        up_axis: The up axis of ``points``: always ``MODEL_UP_AXIS`` (``"z"``).
        source_up_axis: The up axis of the files on disk.
        bad_files: ``(relative path, problem)`` of files skipped by ``skip_bad``.
        short_files: Shapes with fewer than ``num_points`` points (filled by
            repeating their own points, see :mod:`pointnet1x1.data.prepare`).
        skipped: Entries of the tree not used, by reason (hidden, unknown
            extension, ...).
        split_manifest: The files of both splits (relative paths) and the class
            order, JSON-able; give it back as ``manifest=`` to reuse the split.

    Shape:
        ``self[i]`` is ``(points, label)``: float32 (num_points, in_channels), an int.
    """

    up_axis = MODEL_UP_AXIS

    root: Path
    split: str
    layout: str
    dataset_name: str | None
    class_names: list[str]
    points: np.ndarray
    labels: np.ndarray
    files: list[str] | None
    source_up_axis: str
    bad_files: list[tuple[str, str]]
    short_files: list[str]
    skipped: dict[str, list[str]]
    split_manifest: dict[str, Any] | None

    def _set_samples(
        self,
        points: np.ndarray,
        labels: np.ndarray,
        *,
        num_points: int,
        use_normals: bool,
        transform: Callable[..., np.ndarray] | None,
        seed: int,
    ) -> None:
        self.in_channels = 6 if use_normals else 3
        self.num_points, self.use_normals = num_points, use_normals
        self.transform, self.seed = transform, seed
        self.points = np.ascontiguousarray(points[..., : self.in_channels])
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.points.shape[1] < num_points:
            raise ValueError(
                f"{self.root}: shapes hold {self.points.shape[1]} points, fewer "
                f"than num_points={num_points}"
            )
        if len(self.labels) == 0:
            raise ValueError(
                f"{self.layout} dataset at {self.root}: the {self.split} split is empty"
            )
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def _generator(self) -> np.random.Generator:
        # one stream per process and DataLoader worker seed, so workers differ
        info = torch.utils.data.get_worker_info()
        key = (os.getpid(), info.seed if info is not None else -1)
        if self._rng is None or key != self._rng_key:
            extra = [] if info is None else [info.seed % 2**63]
            self._rng = np.random.default_rng([self.seed, 1, *extra])
            self._rng_key = key
        return self._rng

    def sample_indices(
        self, index: int, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Which of the P stored points sample ``index`` returns."""
        total = self.points.shape[1]
        if self.split == "test" or rng is None:
            order = np.random.default_rng([self.seed, 2, index]).permutation(total)
            return np.sort(order[: self.num_points])
        return rng.choice(total, self.num_points, replace=False)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index = index % len(self)
        rng = self._generator()
        points = self.points[index, self.sample_indices(index, rng)]
        if self.transform is not None:
            from pointnet1x1.data.transforms import Transform

            if isinstance(self.transform, Transform):
                points = self.transform(points, rng)
            else:
                points = self.transform(points)
        return np.asarray(points, dtype=np.float32), int(self.labels[index])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"layout={self.layout!r}, classes={self.num_classes}, samples={len(self)}, "
            f"num_points={self.num_points}, in_channels={self.in_channels})"
        )
