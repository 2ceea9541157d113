"""Classification: one label per cloud (ModelNet40/10 in any layout, the embedded default).

Protocol: a seeded, stratified validation split carved from the training set
picks the best epoch (highest validation OA, then mAcc); the test set is scored
once at the end, optionally voting over rotations about the up axis. OA and mAcc
come from the whole-set confusion matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pointnet1x1.engine.data import (
    ClassificationData,
    load_classification_data,
    sample_pool,
)
from pointnet1x1.engine.evaluate import evaluate_split
from pointnet1x1.engine.metrics import classification_metrics, confusion_matrix
from pointnet1x1.engine.preprocessing import Preprocessing, make_preprocessing
from pointnet1x1.engine.tasks.base import Batch, Task, augment

__all__ = ["ClassificationTask"]


class ClassificationTask(Task):
    """Cross-entropy (plus the model's regulariser) on class logits ``(B, K)``."""

    name = "cls"
    selection = "highest validation OA, then mAcc"
    curves = (("train_oa", "train OA"), ("val_oa", "val OA"), ("val_macc", "val mAcc"))

    def load_data(self, progress: bool) -> None:
        cfg = self.cfg
        self.data_cfg: dict[str, Any] = {
            "root": cfg.data, "classes": cfg.classes, "num_points": cfg.num_points,
            "normals": cfg.normals, "modelnet10": cfg.modelnet10, "seed": cfg.seed,
            "cache_dir": cfg.cache_dir,
        }  # fmt: skip
        self.data: ClassificationData = load_classification_data(
            self.data_cfg, val_fraction=cfg.val_fraction, progress=progress
        )
        self.data_cfg.update(classes=self.data.class_names, root=self.data.root)
        self.train = self.data.train.to(self.device)
        self._fused: bool | None = None

    @property
    def num_train(self) -> int:
        return len(self.data.train)

    def describe(self) -> str:
        d = self.data
        where = "embedded default dataset" if d.root is None else d.root
        return (
            f"{where}: {len(d.class_names)} classes, {len(d.train)} train / "
            f"{len(d.val)} val / {len(d.test or [])} test shapes"
        )

    def model_kwargs(self) -> dict[str, Any]:
        return {
            "num_classes": len(self.data.class_names),
            "in_channels": self.data.in_channels,
        }

    # -- training ----------------------------------------------------------------
    def train_batch(self, idx: Tensor, gen: torch.Generator) -> Batch:
        assert self.cfg.num_points is not None
        points = int(self.train_points or self.cfg.num_points)
        clouds, _ = sample_pool(self.train.points, idx, points, gen)
        clouds = augment(self.cfg, clouds, gen, self.data.up_axis)
        return Batch(
            clouds.transpose(1, 2).contiguous(), self.train.labels[idx]
        )  # (B, C, N)

    def _use_fused(self, model: nn.Module) -> bool:
        """PointNet classifiers in one process train through the fused forward."""
        if self._fused is None:
            from pointnet1x1.models import PointNetClassifier

            self._fused = (
                self.cfg.fused_forward
                and not self.info.enabled  # DDP needs its own forward
                and isinstance(model, PointNetClassifier)
            )
        return self._fused

    def forward_loss(
        self, net: nn.Module, model: nn.Module, batch: Batch
    ) -> tuple[Tensor, Tensor]:
        if self._use_fused(model):
            from pointnet1x1.models.fast import forward_train

            logits, aux = forward_train(model, batch.x, precision=self.precision)  # type: ignore[arg-type]
        else:
            logits, aux = net(batch.x, return_aux=True)
        loss = F.cross_entropy(logits, batch.target) + aux
        k = len(self.data.class_names)
        counts = confusion_matrix(batch.target, logits.detach().argmax(1), k).flatten()
        return loss, counts

    def train_metrics(self, sums: Tensor) -> dict[str, float]:
        k = len(self.data.class_names)
        return {"oa": classification_metrics(sums.round().long().view(k, k)).oa}

    # -- evaluation --------------------------------------------------------------
    def evaluate(self, model: nn.Module, split: str, votes: int = 1) -> dict[str, Any]:
        data = self.data
        part = data.val if split == "val" else data.test
        assert part is not None, split
        conf, loss = evaluate_split(
            model, part.points, part.labels, len(data.class_names),
            batch_size=max(int(self.cfg.batch_size or 0), 64), device=self.device,
            votes=votes, up_axis=data.up_axis,
            info=self.info,
        )  # fmt: skip
        return {**classification_metrics(conf).to_dict(data.class_names), "loss": loss}

    def score(self, metrics: dict[str, Any]) -> tuple[float, ...]:
        return (metrics["oa"], metrics["macc"])

    def scalars(self, metrics: dict[str, Any]) -> dict[str, float]:
        return {"loss": metrics["loss"], "oa": metrics["oa"], "macc": metrics["macc"]}

    def summary(self, metrics: dict[str, Any]) -> str:
        return f"OA {100 * metrics['oa']:.2f}%  mAcc {100 * metrics['macc']:.2f}%"

    # -- checkpoint and report ---------------------------------------------------
    def class_names(self) -> list[str]:
        return list(self.data.class_names)

    def preprocessing(self) -> Preprocessing:
        assert self.cfg.num_points is not None
        return make_preprocessing(
            self.cfg.num_points, use_normals=self.cfg.normals, up_axis=self.data.up_axis
        )

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"data": self.data_cfg}

    def report(self, results: dict[str, dict[str, Any]], out: Path) -> dict[str, Any]:
        from pointnet1x1.engine.plots import plot_confusion

        d, best = self.data, results["best"]
        if self.info.is_main:
            plot_confusion(
                best["confusion"], d.class_names, out / "confusion.png",
                title=f"test, {best['checkpoint']}",
            )  # fmt: skip
        return {
            "class_names": d.class_names,
            "data": {
                "root": d.root or "embedded default",
                "num_train": len(d.train),
                "num_val": len(d.val),
                "num_test": len(d.test or []),
            },  # fmt: skip
            "votes": self.cfg.votes,
        }
