"""The task interface: what the training engine asks of a task.

The engine (:class:`~pointnet1x1.engine.trainer.Trainer`) owns what every run
shares: the run folder, exact resume, atomic per-epoch state, torchrun DDP,
progress, the lr / BN-momentum schedule, the optimizer step, the model selection
rule (the highest :meth:`Task.score` on the validation split; ties go to the later
epoch) and testing the last and the best checkpoint once at the end. A task owns
what differs: its data, the model's constructor arguments, a training batch, the
loss, the evaluation of a split, the score that selects the model, and its part
of the checkpoint and the report (Lightning's ``Trainer`` / ``LightningModule``
split, without their size). A new task (e.g. semantic segmentation of scenes) is
a subclass added to :data:`pointnet1x1.engine.tasks.TASKS`.

Shape:
    :class:`Batch` holds channels-first clouds ``(B, C, N)`` on the device, the
    targets (``(B,)`` class labels or ``(B, N)`` point labels) and optional
    categories ``(B,)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from pointnet1x1.engine.config import TrainConfig
from pointnet1x1.engine.distributed import DistInfo
from pointnet1x1.engine.preprocessing import Preprocessing

__all__ = ["Batch", "Task", "augment"]


class Batch(NamedTuple):
    """One training batch, on the device."""

    x: Tensor  # (B, C, N) channels-first clouds
    target: Tensor  # (B,) class labels or (B, N) point labels, int64
    category: Tensor | None = None  # (B,) object categories (part segmentation)


class Task(ABC):
    """A training task; see the module docstring for the split of work.

    Args:
        cfg: The resolved training configuration.
        info: This process's place under torchrun.
        device: Where the data and the model live.
    """

    name: ClassVar[str]  # the TrainConfig.task value
    # TrainConfig fields this task does not read: giving one is refused, never ignored
    unused_options: ClassVar[frozenset[str]] = frozenset()
    selection: ClassVar[str]  # how the best epoch is chosen, in words (for reports)
    curves: ClassVar[tuple[tuple[str, str], ...]]  # history keys to plot, with labels

    def __init__(self, cfg: TrainConfig, info: DistInfo, device: torch.device) -> None:
        self.cfg, self.info, self.device = cfg, info, device
        # set by the trainer: this epoch's training points (``train_points``) and
        # the compute of a fused forward (``training_precision``)
        self.train_points: int | None = cfg.num_points
        self.precision = "fp32"

    # -- data and model --------------------------------------------------------
    @abstractmethod
    def load_data(self, progress: bool) -> None:
        """Load the splits into memory (on ``self.device``)."""

    @property
    @abstractmethod
    def num_train(self) -> int:
        """Shapes in the training split (what the sampler shuffles)."""

    @abstractmethod
    def describe(self) -> str:
        """The data in a few words for the first log line."""

    @abstractmethod
    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments the data fixes (classes, input channels...)."""

    # -- training --------------------------------------------------------------
    @abstractmethod
    def train_batch(self, idx: Tensor, gen: torch.Generator) -> Batch:
        """Shapes ``idx`` of the training pool, sampled and augmented on the device."""

    @abstractmethod
    def forward_loss(
        self, net: nn.Module, model: nn.Module, batch: Batch
    ) -> tuple[Tensor, Tensor]:
        """``(loss, sums)``: the loss to back-propagate through ``net`` (``model``
        itself, or its DDP wrapper) and a 1-D tensor of counts that add up over
        steps and ranks into the training figures (:meth:`train_metrics`)."""

    @abstractmethod
    def train_metrics(self, sums: Tensor) -> dict[str, float]:
        """Training figures of an epoch from the summed :meth:`forward_loss` counts."""

    # -- evaluation and selection ----------------------------------------------
    @abstractmethod
    def evaluate(self, model: nn.Module, split: str, votes: int = 1) -> dict[str, Any]:
        """Figures of the whole ``"val"`` or ``"test"`` split (summed over ranks);
        ``votes``: test-time rotations about the up axis, where the task has them."""

    @abstractmethod
    def score(self, metrics: dict[str, Any]) -> tuple[float, ...]:
        """What model selection maximises (compared as a tuple)."""

    @abstractmethod
    def scalars(self, metrics: dict[str, Any]) -> dict[str, float]:
        """The per-epoch figures of :meth:`evaluate` kept in ``metrics.jsonl``."""

    @abstractmethod
    def summary(self, metrics: dict[str, Any]) -> str:
        """A test result in a few words (``"OA 99.50%  mAcc 99.40%"``)."""

    # -- checkpoint and report -------------------------------------------------
    @abstractmethod
    def class_names(self) -> list[str]:
        """Names of the model's outputs (classes, or parts)."""

    @abstractmethod
    def preprocessing(self) -> Preprocessing:
        """The preprocessing the checkpoints record."""

    def checkpoint_extra(self) -> dict[str, Any]:
        """Task metadata stored in each checkpoint's ``extra`` (data, names...)."""
        return {}

    def report(self, results: dict[str, dict[str, Any]], out: Path) -> dict[str, Any]:
        """Task fields of ``report.json`` (and task plots into ``out``)."""
        return {}


def augment(
    cfg: TrainConfig, clouds: Tensor, gen: torch.Generator, up_axis: str
) -> Tensor:
    """The configured augmentation of points-major clouds ``(B, N, C)`` on their device."""
    from pointnet1x1.data import augment_batch

    scale = (float(cfg.scale[0]), float(cfg.scale[1])) if cfg.scale else None
    rotate = None if cfg.rotate in (None, "none") else cfg.rotate
    return augment_batch(
        clouds, scale=scale, shift=cfg.shift or None, jitter=cfg.jitter or None,
        jitter_clip=float(cfg.jitter_clip or 0.0), rotate=rotate, dropout=None,
        up_axis=up_axis, generator=gen,
    )  # fmt: skip
