"""Datasets, transforms and batching.

Per sample, points-major ``(N, 3+F)`` numpy float32; :func:`collate` makes the
channels-first ``(B, 3+F, N)`` batches every ``nn.Module`` takes (the one
transpose of the project). Axis convention: every dataset returns points z up
(:data:`pointnet1x1.io.axes.MODEL_UP_AXIS`); each layout declares its files' up
axis and is converted by :func:`pointnet1x1.io.axes.convert_up_axis`.

Public names (imported lazily, so ``import pointnet1x1.data`` stays light):
    :func:`open_dataset`        the dataset at a root, whatever its layout
    :class:`FolderDataset`      folders of point-cloud / mesh files, any format
    :class:`ModelNet`           ModelNet40/10: folders of files, resampled or HDF5
    :func:`default_data_root`   the embedded procedural dataset (generated on demand)
    :func:`collate`, :func:`augment_batch`
    :mod:`.transforms`          Compose, Normalize, RandomSample, ... (per sample)
    :func:`download_dataset`, :func:`prepare_from_zip`, :data:`SOURCES`
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "BadFilesError": "pointnet1x1.data.prepare",
    "FolderDataset": "pointnet1x1.data.folder",
    "PointCloudDataset": "pointnet1x1.data.dataset",
    "open_dataset": "pointnet1x1.data.folder",
    "read_manifest": "pointnet1x1.data.splits",
    "ModelNet": "pointnet1x1.data.modelnet",
    "load_split": "pointnet1x1.data.modelnet",
    "MissingDataError": "pointnet1x1.data.layouts",
    "MODELNET40_CLASSES": "pointnet1x1.data.layouts",
    "MODELNET10_CLASSES": "pointnet1x1.data.layouts",
    "detect_layout": "pointnet1x1.data.layouts",
    "list_split": "pointnet1x1.data.layouts",
    "collate": "pointnet1x1.data.batch",
    "augment_batch": "pointnet1x1.data.batch",
    "default_data_root": "pointnet1x1.data.default",
    "generate_default_dataset": "pointnet1x1.data.default",
    "DEFAULT_CLASSES": "pointnet1x1.data.default",
    "SOURCES": "pointnet1x1.data.download",
    "download_dataset": "pointnet1x1.data.download",
    "prepare_from_zip": "pointnet1x1.data.download",
    "normalize_points": "pointnet1x1.data.transforms",
    "sample_points": "pointnet1x1.data.transforms",
    "ShapeNetPart": "pointnet1x1.data.shapenetpart",
    "collate_parts": "pointnet1x1.data.shapenetpart",
}

__all__ = [
    "BadFilesError",
    "DEFAULT_CLASSES",
    "FolderDataset",
    "MODELNET10_CLASSES",
    "MODELNET40_CLASSES",
    "MissingDataError",
    "ModelNet",
    "PointCloudDataset",
    "SOURCES",
    "ShapeNetPart",
    "augment_batch",
    "collate",
    "collate_parts",
    "default_data_root",
    "detect_layout",
    "download_dataset",
    "generate_default_dataset",
    "list_split",
    "load_split",
    "normalize_points",
    "open_dataset",
    "prepare_from_zip",
    "read_manifest",
    "sample_points",
    "transforms",
]

if TYPE_CHECKING:
    from pointnet1x1.data import transforms
    from pointnet1x1.data.batch import augment_batch, collate
    from pointnet1x1.data.dataset import PointCloudDataset
    from pointnet1x1.data.default import (
        DEFAULT_CLASSES,
        default_data_root,
        generate_default_dataset,
    )
    from pointnet1x1.data.download import SOURCES, download_dataset, prepare_from_zip
    from pointnet1x1.data.folder import FolderDataset, open_dataset
    from pointnet1x1.data.layouts import (
        MODELNET10_CLASSES,
        MODELNET40_CLASSES,
        MissingDataError,
        detect_layout,
        list_split,
    )
    from pointnet1x1.data.modelnet import ModelNet, load_split
    from pointnet1x1.data.prepare import BadFilesError
    from pointnet1x1.data.splits import read_manifest
    from pointnet1x1.data.transforms import normalize_points, sample_points


def __getattr__(name: str) -> Any:
    if name == "transforms":
        return importlib.import_module("pointnet1x1.data.transforms")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pointnet1x1.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
