"""Training, evaluation and inference: the main job.

- :func:`train` / :class:`TrainConfig`: train a classifier, write a run folder.
- :func:`evaluate_checkpoint`: whole-set accuracy of a checkpoint, with voting.
- :class:`Classifier`: predict classes of clouds, arrays or files.
- :mod:`~pointnet1x1.engine.checkpoint`: safe, self-describing checkpoints.

Names are imported lazily, so ``classify`` does not pay for the training code.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "CheckpointError": "pointnet1x1.engine.checkpoint",
    "LoadedCheckpoint": "pointnet1x1.engine.checkpoint",
    "load_model_checkpoint": "pointnet1x1.engine.checkpoint",
    "save_model_checkpoint": "pointnet1x1.engine.checkpoint",
    "make_preprocessing": "pointnet1x1.engine.checkpoint",
    "read_checkpoint_metadata": "pointnet1x1.engine.checkpoint",
    "load_training_state": "pointnet1x1.engine.checkpoint",
    "save_training_state": "pointnet1x1.engine.checkpoint",
    "Classifier": "pointnet1x1.engine.predict",
    "Prediction": "pointnet1x1.engine.predict",
    "TrainConfig": "pointnet1x1.engine.config",
    "train": "pointnet1x1.engine.trainer",
    "evaluate_checkpoint": "pointnet1x1.engine.evaluate",
    "ClassificationMetrics": "pointnet1x1.engine.metrics",
    "classification_metrics": "pointnet1x1.engine.metrics",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pointnet1x1.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
