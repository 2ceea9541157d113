"""Evaluation: whole-set confusion matrices, voting, and ``eval`` of a checkpoint.

Voting follows the authors' ``evaluate.py``: vote ``v`` of ``V`` rotates every
cloud about the up axis by ``2 pi v / V`` and the class probabilities are summed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pointnet1x1.engine.distributed import DistInfo, all_reduce_sum, shard
from pointnet1x1.engine.metrics import classification_metrics, confusion_matrix

_AXES = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}


def rotation_about_axis(angle: float, axis: str = "y") -> Tensor:
    """The (3, 3) rotation by ``angle`` radians about ``axis``; apply as ``xyz @ R.T``."""
    if axis not in _AXES:
        raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.eye(3)
    i, j = _AXES[axis]
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return rot


def rotate_points(points: Tensor, rot: Tensor) -> Tensor:
    """Rotate xyz (and normals in channels 3:6) of ``(..., N, C)`` points."""
    out = points.clone()
    rot = rot.to(points)
    out[..., :3] = points[..., :3] @ rot.T
    if points.shape[-1] >= 6:
        out[..., 3:6] = points[..., 3:6] @ rot.T
    return out


@torch.no_grad()
def predict_probs(
    model: Callable[[Tensor], Tensor],
    points: Tensor,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    votes: int = 1,
    up_axis: str = "y",
) -> Tensor:
    """Class probabilities of clouds, averaged over ``votes`` rotations.

    Args:
        model: Maps ``(B, C, N)`` to logits ``(B, K)`` (in eval mode).
        points: Tensor of shape (S, N, C) giving the clouds, points-major.

    Returns:
        float32 Tensor of shape (S, K) on the CPU.
    """
    if votes <= 0:
        raise ValueError(f"votes must be positive, got {votes}")
    out: list[Tensor] = []
    for start in range(0, points.shape[0], batch_size):
        batch = points[start : start + batch_size].to(device)
        total = None
        for v in range(votes):
            x = (
                batch
                if v == 0
                else rotate_points(
                    batch, rotation_about_axis(2 * math.pi * v / votes, up_axis)
                )
            )
            probs = torch.softmax(model(x.transpose(1, 2).contiguous()).float(), dim=1)
            total = probs if total is None else total + probs
        assert total is not None
        out.append((total / votes).cpu())
    if not out:
        return torch.empty(0, 0)
    return torch.cat(out)


def evaluate_split(
    model: nn.Module,
    points: Tensor,
    labels: Tensor,
    num_classes: int,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    votes: int = 1,
    up_axis: str = "y",
    info: DistInfo | None = None,
) -> tuple[Tensor, float]:
    """Confusion matrix (K, K) and mean loss over a whole split (summed over ranks).

    Under torchrun each rank scores its share ``rank::world_size`` of the clouds and
    the counts are summed, so every cloud counts exactly once.
    """
    info = info or DistInfo()
    part = shard(points.shape[0], info)
    was_training = model.training
    model.eval()
    probs = predict_probs(
        model,
        points[part],
        batch_size=batch_size,
        device=device,
        votes=votes,
        up_axis=up_axis,
    )
    model.train(was_training)
    y = labels[part]
    if probs.numel():
        conf = confusion_matrix(y, probs.argmax(dim=1), num_classes)
        nll = -torch.log(probs.gather(1, y.view(-1, 1)).clamp_min(1e-12)).sum()
    else:
        conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        nll = torch.zeros(())
    totals = torch.cat([conf.double().flatten(), nll.double().view(1)]).to(
        device if info.enabled and torch.device(device).type == "cuda" else "cpu"
    )
    totals = all_reduce_sum(totals, info).cpu()
    conf = totals[:-1].round().long().view(num_classes, num_classes)
    count = max(int(conf.sum()), 1)
    return conf, float(totals[-1]) / count


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    split: str = "test",
    votes: int = 1,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = "fp32",
    render_errors: str | os.PathLike[str] | None = None,
    max_render: int = 64,
) -> dict[str, Any]:
    """Whole-set accuracy of a checkpoint on the data it was trained on (or ``data``).

    Returns:
        A dict with ``oa``, ``macc`` (fractions), ``per_class``, ``confusion``,
        ``class_names``, ``votes``, ``num_samples``, ``data`` and ``checkpoint``.
    """
    from pointnet1x1.engine._data import load_test_split, resolve_root
    from pointnet1x1.engine.checkpoint import CheckpointError, load_model_checkpoint
    from pointnet1x1.engine.predict import inference_model, resolve_device

    dev = resolve_device(device)
    loaded = load_model_checkpoint(checkpoint, map_location=dev)
    meta = loaded.metadata
    if meta.get("extra", {}).get("task", "cls") != "cls":
        raise CheckpointError(
            f"{checkpoint}: eval scores classifiers; this checkpoint's task is {meta['extra']['task']!r}"
        )
    class_names = meta["class_names"]
    prep = meta["preprocessing"]
    recorded = dict(meta.get("extra", {}).get("data", {}))
    data_cfg = {
        "root": str(data) if data is not None else recorded.get("root"),
        "classes": class_names,
        "num_points": prep["num_points"],
        "normals": "normals" in prep["features"],
        "modelnet10": recorded.get("modelnet10", False),
        "seed": recorded.get("seed", 0),
        "cache_dir": recorded.get("cache_dir"),
    }
    root = resolve_root(data_cfg["root"])
    test = load_test_split(
        root, data_cfg, split=split, expected=class_names, progress=False
    )
    model = inference_model(loaded.model, meta["model"]["name"], precision)
    conf, loss = evaluate_split(
        model,
        test.points,
        test.labels,
        len(class_names),
        batch_size=batch_size,
        device=dev,
        votes=votes,
        up_axis=prep.get("up_axis", "y"),
    )
    result = classification_metrics(conf).to_dict(class_names)
    result.update(
        loss=loss,
        class_names=class_names,
        votes=votes,
        split=split,
        data=str(root),
        checkpoint=str(checkpoint),
        precision=precision,
    )
    if render_errors is not None:
        probs = predict_probs(
            model,
            test.points,
            batch_size=batch_size,
            device=dev,
            votes=votes,
            up_axis=prep.get("up_axis", "y"),
        )
        wrong = (probs.argmax(1) != test.labels).nonzero().flatten().tolist()
        result["rendered_errors"] = _render_errors(
            Path(render_errors), test, probs, wrong[:max_render], class_names
        )
    return result


def _render_errors(
    folder: Path, test: Any, probs: Tensor, wrong: list[int], class_names: list[str]
) -> list[str]:
    from pointnet1x1.engine.plots import render_clouds

    written = []
    for i in wrong:
        pred = int(probs[i].argmax())
        true = int(test.labels[i])
        title = f"#{i}: true {class_names[true]}, predicted {class_names[pred]} ({probs[i, pred]:.2f})"
        path = folder / f"error_{i:05d}_{class_names[true]}_as_{class_names[pred]}.png"
        render_clouds([test.points[i, :, :3].numpy()], path, titles=[title])
        written.append(str(path))
    return written
