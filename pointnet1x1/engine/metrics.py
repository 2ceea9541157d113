"""Metrics over a whole set, for both tasks.

Classification: overall accuracy (OA) and mean class accuracy (mAcc) come from the
summed confusion matrix of the entire set, never as an average of per-batch
figures. Classes absent from the set are left out of mAcc (reported as ``None``).

Part segmentation, as in the PointNet / PointNet++ authors' evaluation: the
prediction of a shape is the arg-max over **the parts of its category only**; a
shape's IoU is the mean over those parts of ``|pred & gt| / |pred | gt|``, where a
part absent from both counts 1; **instance mIoU** averages shapes, **class mIoU**
averages the per-category means. Scores are over the ``num_points`` sampled points
of each shape (as the common PyTorch port), not over every point of the file.
Both reduce to sums, so figures over torchrun ranks are exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor


def confusion_matrix(target: Tensor, pred: Tensor, num_classes: int) -> Tensor:
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as ``j``.

    Args:
        target: Tensor of shape (S,) giving the true labels.
        pred: Tensor of shape (S,) giving the predicted labels.
        num_classes: K.

    Returns:
        int64 Tensor of shape (K, K).
    """
    target, pred = target.reshape(-1).long(), pred.reshape(-1).long()
    flat = target * num_classes + pred.to(target.device)
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


class ClassificationMetrics(NamedTuple):
    """Whole-set figures: ``oa`` and ``macc`` as fractions, ``per_class`` (K,)."""

    oa: float
    macc: float
    per_class: list[float | None]
    confusion: list[list[int]]

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        names = (
            list(class_names)
            if class_names
            else [str(i) for i in range(len(self.per_class))]
        )
        return {
            "oa": self.oa,
            "macc": self.macc,
            "per_class": dict(zip(names, self.per_class, strict=True)),
            "confusion": self.confusion,
            "num_samples": int(sum(map(sum, self.confusion))),
        }


def classification_metrics(confusion: Tensor) -> ClassificationMetrics:
    """OA, mAcc and per-class accuracy from a (K, K) confusion matrix."""
    conf = confusion.double()
    total = conf.sum().item()
    support = conf.sum(dim=1)
    correct = conf.diagonal()
    oa = correct.sum().item() / total if total else 0.0
    present = support > 0
    per_class = [
        c / s if s > 0 else None
        for c, s in zip(correct.tolist(), support.tolist(), strict=True)
    ]
    macc = (correct[present] / support[present]).mean().item() if present.any() else 0.0
    return ClassificationMetrics(
        float(oa), float(macc), per_class, confusion.long().tolist()
    )


def format_table(metrics: ClassificationMetrics, class_names: Sequence[str]) -> str:
    """A readable per-class table with OA and mAcc at the bottom."""
    width = max([len("class"), *(len(n) for n in class_names)])
    lines = [f"{'class':<{width}}  {'acc':>7}  {'count':>6}"]
    for name, acc, row in zip(
        class_names, metrics.per_class, metrics.confusion, strict=True
    ):
        shown = "    n/a" if acc is None else f"{100 * acc:6.2f}%"
        lines.append(f"{name:<{width}}  {shown}  {sum(row):>6d}")
    lines.append(f"{'OA':<{width}}  {100 * metrics.oa:6.2f}%")
    lines.append(f"{'mAcc':<{width}}  {100 * metrics.macc:6.2f}%")
    return "\n".join(lines)


# --- part segmentation ---------------------------------------------------------------


def category_mask(seg_classes: Mapping[str, Sequence[int]], num_parts: int) -> Tensor:
    """Bool (num_categories, num_parts): which parts belong to each category."""
    mask = torch.zeros(len(seg_classes), num_parts, dtype=torch.bool)
    for i, parts in enumerate(seg_classes.values()):
        mask[i, list(parts)] = True
    return mask


def restrict_to_category(logits: Tensor, category: Tensor, mask: Tensor) -> Tensor:
    """Arg-max over the parts of each shape's category only.

    Args:
        logits: Tensor of shape ``(B, P, N)`` giving part logits.
        category: Long tensor of shape ``(B,)`` giving category indices.
        mask: Bool tensor of shape ``(num_categories, P)`` from :func:`category_mask`.

    Returns:
        Long tensor of shape ``(B, N)`` of global part labels.
    """
    allowed = mask.to(logits.device)[category]  # (B, P)
    return logits.masked_fill(~allowed[:, :, None], float("-inf")).argmax(1)


def shape_iou(pred: np.ndarray, target: np.ndarray, parts: Sequence[int]) -> float:
    """Mean IoU over ``parts`` (one category's) of one shape; absent parts count 1."""
    ious = []
    for part in parts:
        p, t = pred == part, target == part
        union = np.logical_or(p, t).sum()
        ious.append(1.0 if union == 0 else np.logical_and(p, t).sum() / union)
    return float(np.mean(ious))


class PartSegMetrics:
    """Sums of shape IoUs per category and point counts; :meth:`compute` gives mIoUs.

    Args:
        category_names: The categories, in index order.
        seg_classes: Category name -> its part indices.
    """

    def __init__(
        self, category_names: Sequence[str], seg_classes: Mapping[str, Sequence[int]]
    ) -> None:
        self.names = list(category_names)
        self.parts = [list(seg_classes[c]) for c in self.names]
        k = len(self.names)
        # [iou sum per category (k), shapes per category (k), correct, total, nll]
        self.sums = torch.zeros(2 * k + 3, dtype=torch.float64)

    def update(self, pred: Tensor, target: Tensor, category: Tensor) -> None:
        """Add a batch: labels ``(B, N)``, ``(B, N)`` and categories ``(B,)``."""
        k = len(self.names)
        pred_np, target_np = pred.cpu().numpy(), target.cpu().numpy()
        for p, t, c in zip(pred_np, target_np, category.tolist(), strict=True):
            self.sums[c] += shape_iou(p, t, self.parts[c])
            self.sums[k + c] += 1
        self.sums[2 * k] += float((pred_np == target_np).sum())
        self.sums[2 * k + 1] += target_np.size

    def add_loss(self, nll_sum: float) -> None:
        """Add the summed per-point negative log-likelihood of a batch."""
        self.sums[-1] += nll_sum

    def compute(self) -> dict[str, Any]:
        k = len(self.names)
        ious, counts = self.sums[:k], self.sums[k : 2 * k]
        if counts.sum() == 0:
            raise ValueError("no shapes were evaluated")
        present = counts > 0
        per_category = {
            self.names[c]: float(ious[c] / counts[c]) for c in range(k) if present[c]
        }
        total = float(self.sums[2 * k + 1])
        return {
            "instance_miou": float(ious.sum() / counts.sum()),
            "class_miou": float(np.mean(list(per_category.values()))),
            "point_accuracy": float(self.sums[2 * k]) / total,
            "per_category": per_category,
            "shapes": int(counts.sum()),
            "loss": float(self.sums[-1]) / total,
        }
