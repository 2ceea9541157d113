"""Part segmentation: a part label per point (ShapeNetPart), given the object category.

Protocol: train on the official ``train`` list, pick the epoch with the best
validation instance mIoU (then class mIoU) on the official ``val`` list, and test
the ``test`` list once at the end with the last and that epoch's weights. The
mIoUs are the authors' (see :mod:`pointnet1x1.engine.metrics`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pointnet1x1.engine.data import PartSegData, Split, load_partseg_data, sample_pool
from pointnet1x1.engine.distributed import DistInfo, all_reduce_sum, shard
from pointnet1x1.engine.metrics import (
    PartSegMetrics,
    category_mask,
    restrict_to_category,
)
from pointnet1x1.engine.preprocessing import Preprocessing, make_preprocessing
from pointnet1x1.engine.tasks.base import Batch, Task, augment

__all__ = ["PartSegTask", "evaluate_parts"]


@torch.no_grad()
def evaluate_parts(
    model: nn.Module,
    split: Split,
    category_names: list[str],
    seg_classes: dict[str, list[int]],
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    info: DistInfo | None = None,
) -> dict[str, Any]:
    """Instance / class mIoU, point accuracy and loss of ``model`` over a whole split.

    Under torchrun each rank scores its share ``rank::world_size`` of the shapes
    and the sums are added, so every shape counts exactly once.
    """
    assert split.categories is not None
    info = info or DistInfo()
    metrics = PartSegMetrics(category_names, seg_classes)
    ordered = {c: seg_classes[c] for c in category_names}
    mask = category_mask(ordered, max(max(p) for p in ordered.values()) + 1)
    was_training = model.training
    model.eval()
    idx = torch.arange(len(split))[shard(len(split), info)]
    for chunk in idx.split(batch_size):
        x = split.points[chunk].to(device).transpose(1, 2).contiguous()  # (B, C, N)
        category = split.categories[chunk].to(device)
        target = split.labels[chunk].long().to(device)
        logits = model(x, category).float()  # (B, P, N)
        metrics.add_loss(float(F.cross_entropy(logits, target, reduction="sum")))
        metrics.update(restrict_to_category(logits, category, mask), target, category)
    model.train(was_training)
    if info.enabled:
        on = device if torch.device(device).type == "cuda" else "cpu"
        metrics.sums = all_reduce_sum(metrics.sums.to(on), info).cpu()
    return metrics.compute()


class PartSegTask(Task):
    """Per-point cross-entropy (plus the model's regulariser) on ``(B, P, N)`` logits."""

    name = "partseg"
    unused_options = frozenset(
        {
            "modelnet10",
            "val_fraction",
            "votes",
            "fused_forward",
            "cache_dir",
            "skip_bad",
        }
    )
    selection = "highest validation instance mIoU, then class mIoU"
    curves = (
        ("train_point_accuracy", "train point accuracy"),
        ("val_instance_miou", "val instance mIoU"),
        ("val_class_miou", "val class mIoU"),
    )

    def load_data(self, progress: bool) -> None:
        cfg = self.cfg
        assert cfg.num_points is not None
        self.data: PartSegData = load_partseg_data(
            cfg.data, num_points=cfg.num_points, normals=cfg.normals,
            categories=cfg.classes, seed=cfg.seed,
        )  # fmt: skip
        self.train = self.data.train.to(self.device)

    @property
    def num_train(self) -> int:
        return len(self.data.train)

    def describe(self) -> str:
        d = self.data
        used = sorted({d.category_names[int(c)] for c in d.train.categories.tolist()})  # type: ignore[union-attr]
        return (
            f"{d.root}: {len(used)} categories, {len(d.train)} train / {len(d.val)} val / "
            f"{len(d.test or [])} test shapes"
        )

    def model_kwargs(self) -> dict[str, Any]:
        d = self.data
        return {
            "num_parts": len(d.part_names),
            "num_categories": len(d.category_names),
            "in_channels": d.in_channels,
        }

    # -- training ----------------------------------------------------------------
    def train_batch(self, idx: Tensor, gen: torch.Generator) -> Batch:
        assert self.cfg.num_points is not None and self.train.categories is not None
        clouds, labels = sample_pool(
            self.train.points,
            idx,
            int(self.train_points or self.cfg.num_points),
            gen,
            labels=self.train.labels,
        )
        clouds = augment(self.cfg, clouds, gen, self.data.up_axis)
        assert labels is not None
        x = clouds.transpose(1, 2).contiguous()  # (B, C, N)
        return Batch(x, labels, self.train.categories[idx])

    def forward_loss(
        self, net: nn.Module, model: nn.Module, batch: Batch
    ) -> tuple[Tensor, Tensor]:
        logits, aux = net(batch.x, batch.category, return_aux=True)  # (B, P, N)
        loss = F.cross_entropy(logits, batch.target) + aux
        correct = (logits.detach().argmax(1) == batch.target).sum()
        return loss, torch.stack(
            [correct.double(), correct.new_tensor(batch.target.numel()).double()]
        )

    def train_metrics(self, sums: Tensor) -> dict[str, float]:
        return {"point_accuracy": float(sums[0] / max(float(sums[1]), 1.0))}

    # -- evaluation --------------------------------------------------------------
    def evaluate(self, model: nn.Module, split: str, votes: int = 1) -> dict[str, Any]:
        d = self.data
        part = d.val if split == "val" else d.test
        assert part is not None, split
        return evaluate_parts(
            model, part, d.category_names, d.seg_classes,
            batch_size=int(self.cfg.batch_size or 16), device=self.device, info=self.info,
        )  # fmt: skip

    def score(self, metrics: dict[str, Any]) -> tuple[float, ...]:
        return (metrics["instance_miou"], metrics["class_miou"])

    def scalars(self, metrics: dict[str, Any]) -> dict[str, float]:
        keys = ("loss", "instance_miou", "class_miou", "point_accuracy")
        return {k: metrics[k] for k in keys}

    def summary(self, metrics: dict[str, Any]) -> str:
        return (
            f"instance mIoU {100 * metrics['instance_miou']:.2f}%  "
            f"class mIoU {100 * metrics['class_miou']:.2f}%"
        )

    # -- checkpoint and report ---------------------------------------------------
    def class_names(self) -> list[str]:
        return list(self.data.part_names)

    def preprocessing(self) -> Preprocessing:
        assert self.cfg.num_points is not None
        return make_preprocessing(
            self.cfg.num_points, use_normals=self.cfg.normals, up_axis=self.data.up_axis
        )

    def checkpoint_extra(self) -> dict[str, Any]:
        d = self.data
        return {
            "data": {
                "root": d.root,
                "categories": self.cfg.classes,
                "seed": self.cfg.seed,
            },
            "category_names": d.category_names,
            "part_names": d.part_names,
            "seg_classes": d.seg_classes,
        }

    def report(self, results: dict[str, dict[str, Any]], out: Path) -> dict[str, Any]:
        d = self.data
        return {
            "category_names": d.category_names,
            "data": {
                "root": d.root,
                "num_train": len(d.train),
                "num_val": len(d.val),
                "num_test": len(d.test or []),
            },  # fmt: skip
        }
