"""Classification metrics over a whole set, from a confusion matrix.

Overall accuracy (OA) and mean class accuracy (mAcc) are computed from the summed
confusion matrix of the entire set, never as an average of per-batch figures.
Classes absent from the set are left out of mAcc (and reported as ``None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

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
    flat = target * num_classes + pred
    counts = torch.bincount(flat.cpu(), minlength=num_classes * num_classes)
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
