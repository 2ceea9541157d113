"""Training, evaluation and inference: the main job.

- :func:`train` / :class:`TrainConfig`: the one training engine (any task of
  :mod:`~pointnet1x1.engine.tasks`), writing a run folder.
- :func:`evaluate_checkpoint`: whole-set figures of a checkpoint, with voting.
- :class:`Classifier` / :class:`PartSegmenter`: predictors (the checkpoint's
  :class:`Preprocessing` composed with a backend: eager, fast or ONNX).
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
    "read_checkpoint_metadata": "pointnet1x1.engine.checkpoint",
    "load_training_state": "pointnet1x1.engine.checkpoint",
    "save_training_state": "pointnet1x1.engine.checkpoint",
    "Preprocessing": "pointnet1x1.engine.preprocessing",
    "make_preprocessing": "pointnet1x1.engine.preprocessing",
    "Classifier": "pointnet1x1.engine.predict",
    "Prediction": "pointnet1x1.engine.predict",
    "load_predictor": "pointnet1x1.engine.predict",
    "PartSegmenter": "pointnet1x1.engine.segment",
    "PartPrediction": "pointnet1x1.engine.segment",
    "EagerBackend": "pointnet1x1.engine.backends",
    "FastBackend": "pointnet1x1.engine.backends",
    "OnnxBackend": "pointnet1x1.engine.backends",
    "TrainConfig": "pointnet1x1.engine.config",
    "Trainer": "pointnet1x1.engine.trainer",
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
