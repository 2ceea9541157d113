"""pointnet1x1: PointNet and friends, built on one fact.

A "shared MLP" that applies the same ``Linear`` layer to every point of a cloud is
exactly a ``Conv1d(kernel_size=1)`` over a channels-first ``(B, C, N)`` tensor.
:class:`SharedMLP` is that building block; :class:`TNet`, the PointNet encoder and
its classification and segmentation heads are made from it.

Public names are imported lazily (PEP 562), so ``import pointnet1x1`` and
``pointnet1x1 --help`` stay fast: torch is imported on first use of a model or
layer, and open3d / torch_geometric only by the readers and adapters that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "SharedMLP": "pointnet1x1.nn",
    "SharedMLP2d": "pointnet1x1.nn",
    "TNet": "pointnet1x1.nn",
    "orthogonality_loss": "pointnet1x1.nn",
    "global_max_pool": "pointnet1x1.nn",
    "PointNetEncoder": "pointnet1x1.models",
    "PointNetClassifier": "pointnet1x1.models",
    "PointNetSegmenter": "pointnet1x1.models",
    "PointNet2Classifier": "pointnet1x1.models",
    "PointNet2Segmenter": "pointnet1x1.models",
    "create_model": "pointnet1x1.models",
    "list_models": "pointnet1x1.models",
    "register_model": "pointnet1x1.models",
    "model_info": "pointnet1x1.models",
    "Classifier": "pointnet1x1.engine",
    "PartSegmenter": "pointnet1x1.engine",
    "Preprocessing": "pointnet1x1.engine",
    "load_predictor": "pointnet1x1.engine",
    "TrainConfig": "pointnet1x1.engine",
    "train": "pointnet1x1.engine",
    "evaluate_checkpoint": "pointnet1x1.engine",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # explicit re-exports for type checkers and IDEs
    from pointnet1x1.engine import Classifier as Classifier
    from pointnet1x1.engine import PartSegmenter as PartSegmenter
    from pointnet1x1.engine import Preprocessing as Preprocessing
    from pointnet1x1.engine import TrainConfig as TrainConfig
    from pointnet1x1.engine import evaluate_checkpoint as evaluate_checkpoint
    from pointnet1x1.engine import load_predictor as load_predictor
    from pointnet1x1.engine import train as train
    from pointnet1x1.models import PointNet2Classifier as PointNet2Classifier
    from pointnet1x1.models import PointNet2Segmenter as PointNet2Segmenter
    from pointnet1x1.models import PointNetClassifier as PointNetClassifier
    from pointnet1x1.models import PointNetEncoder as PointNetEncoder
    from pointnet1x1.models import PointNetSegmenter as PointNetSegmenter
    from pointnet1x1.models import create_model as create_model
    from pointnet1x1.models import list_models as list_models
    from pointnet1x1.models import model_info as model_info
    from pointnet1x1.models import register_model as register_model
    from pointnet1x1.nn import SharedMLP as SharedMLP
    from pointnet1x1.nn import SharedMLP2d as SharedMLP2d
    from pointnet1x1.nn import TNet as TNet
    from pointnet1x1.nn import global_max_pool as global_max_pool
    from pointnet1x1.nn import orthogonality_loss as orthogonality_loss


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pointnet1x1' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
