"""Evaluation: whole-set figures, voting, and ``eval`` of a checkpoint (either task).

Voting follows the authors' ``evaluate.py``: vote ``v`` of ``V`` rotates every
cloud about the model's up axis by ``2 pi v / V`` (with
:func:`pointnet1x1.io.axes.rotation_about_axis`) and the class probabilities are
summed.
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
from pointnet1x1.io.axes import MODEL_UP_AXIS, rotate_points, rotation_about_axis

__all__ = ["evaluate_checkpoint", "evaluate_split", "predict_logits", "predict_probs"]


@torch.no_grad()
def predict_logits(
    model: nn.Module | Callable[[Tensor], Tensor],
    points: Tensor,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Logits of clouds, by the model in eval mode (a PointNet through its fast copy).

    Args:
        model: Maps ``(B, C, N)`` to logits ``(B, K)``.
        points: Tensor of shape (S, N, C) giving the clouds, points-major.

    Returns:
        float32 Tensor of shape (S, K) on the CPU.
    """
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    run = _fastest(model)
    out = [
        run(points[i : i + batch_size].to(device).transpose(1, 2).contiguous())
        .float()
        .cpu()
        for i in range(0, points.shape[0], batch_size)
    ]
    if isinstance(model, nn.Module):
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


@torch.no_grad()
def predict_probs(
    model: Callable[[Tensor], Tensor],
    points: Tensor,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    votes: int = 1,
    up_axis: str = MODEL_UP_AXIS,
) -> Tensor:
    """Class probabilities of clouds, averaged over ``votes`` rotations.

    Args:
        model: Maps ``(B, C, N)`` to logits ``(B, K)`` (in eval mode).
        points: Tensor of shape (S, N, C) giving the clouds, points-major, in the
            model's up axis ``up_axis``.

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
            x = batch
            if v:
                angle = torch.tensor(
                    2 * math.pi * v / votes, dtype=batch.dtype, device=batch.device
                )
                x = rotate_points(batch, rotation_about_axis(angle, up_axis))
            probs = torch.softmax(model(x.transpose(1, 2).contiguous()).float(), dim=1)
            total = probs if total is None else total + probs
        assert total is not None
        out.append((total / votes).cpu())
    if not out:
        return torch.empty(0, 0)
    return torch.cat(out)


def evaluate_split(
    model: nn.Module | Callable[[Tensor], Tensor],
    points: Tensor,
    labels: Tensor,
    num_classes: int,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    votes: int = 1,
    up_axis: str = MODEL_UP_AXIS,
    info: DistInfo | None = None,
) -> tuple[Tensor, float]:
    """Confusion matrix (K, K) and mean loss over a whole split (summed over ranks).

    Under torchrun each rank scores its share ``rank::world_size`` of the clouds and
    the counts are summed, so every cloud counts exactly once.
    """
    info = info or DistInfo()
    part = shard(points.shape[0], info)
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    probs = predict_probs(
        _fastest(model),
        points[part],
        batch_size=batch_size,
        device=device,
        votes=votes,
        up_axis=up_axis,
    )
    if isinstance(model, nn.Module):
        model.train(was_training)
    y = labels[part].cpu()
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


def _fastest(
    model: nn.Module | Callable[[Tensor], Tensor],
) -> Callable[[Tensor], Tensor]:
    """The fast eval backend of a model it reproduces (a PointNet classifier: logits
    within 1e-4, ~4x on CPU; :class:`~pointnet1x1.engine.backends.FastBackend`),
    else the model itself."""
    from pointnet1x1.engine.backends import FastBackend

    if isinstance(model, nn.Module) and FastBackend.supports(model):
        device = next(model.parameters()).device
        return FastBackend(model, device=device)
    return model
    return model


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
    """Whole-set figures of a checkpoint on the data it was trained on (or ``data``).

    Classifiers: ``oa``, ``macc`` (fractions), ``per_class``, ``confusion``,
    ``class_names``, ``votes``, ``num_samples``; part segmenters:
    ``instance_miou``, ``class_miou``, ``point_accuracy``, ``per_category``,
    ``shapes``. Both: ``task``, ``loss``, ``split``, ``data``, ``checkpoint``.

    A classifier trained on a ``<class>/<file>`` tree (no split on disk) is scored
    on the files of its checkpoint's split manifest (``extra["split"]``) when the
    data is the recorded root, so files added since change nothing; classifiers
    also give ``files`` (the scored files, relative to the root) and
    ``split_source`` (where the split came from, in words).
    """
    from pointnet1x1.engine.checkpoint import load_model_checkpoint, task_of
    from pointnet1x1.engine.predictor import resolve_device
    from pointnet1x1.engine.preprocessing import Preprocessing

    dev = resolve_device(device)
    loaded = load_model_checkpoint(checkpoint, map_location=dev)
    meta = loaded.metadata
    prep = Preprocessing.from_dict(meta["preprocessing"])
    recorded = dict(meta.get("extra", {}).get("data", {}))
    common = {"split": split, "checkpoint": str(checkpoint), "precision": precision}
    if task_of(meta) == "partseg":
        if votes != 1 or render_errors is not None:
            raise ValueError(
                f"{checkpoint}: a part segmenter; --votes and --render-errors are for classifiers"
            )
        return {
            **_evaluate_parts(
                loaded.model, meta, prep, recorded, data, split, batch_size, dev
            ),
            **common,
        }
    from pointnet1x1.engine.backends import EagerBackend, FastBackend
    from pointnet1x1.engine.data import open_split, resolve_root, stack_split

    if split not in ("test", "train"):
        raise ValueError(
            f"{checkpoint}: a classifier is scored on its test or train split, not {split!r}"
        )
    class_names = meta["class_names"]
    data_cfg = {
        "root": str(data) if data is not None else recorded.get("root"),
        "classes": class_names, "num_points": prep.num_points, "normals": prep.use_normals,
        "modelnet10": recorded.get("modelnet10", False), "seed": recorded.get("seed", 0),
        "cache_dir": recorded.get("cache_dir"),
        "skip_bad": recorded.get("skip_bad", False),
    }  # fmt: skip
    root = resolve_root(data_cfg["root"])
    manifest, source = _recorded_split(meta, root)
    dataset = open_split(
        root, data_cfg, split=split, expected=class_names, progress=False,
        manifest=manifest,
    )  # fmt: skip
    test = stack_split(dataset)
    if manifest is not None:
        unlisted = len(getattr(dataset, "skipped", {}).get(_UNLISTED, []))
        source += f" ({len(test)} {split} files"
        source += (
            f"; {unlisted} files of the folder not in it, not scored)"
            if unlisted
            else ")"
        )
    backend: Any = (
        FastBackend if FastBackend.supports(loaded.model) else EagerBackend
    )(loaded.model, device=dev, precision=precision)
    kw: dict[str, Any] = {
        "batch_size": batch_size,
        "device": dev,
        "votes": votes,
        "up_axis": prep.up_axis,
    }
    conf, loss = evaluate_split(
        backend, test.points, test.labels, len(class_names), **kw
    )
    result = classification_metrics(conf).to_dict(class_names)
    result.update(
        task="cls",
        loss=loss,
        class_names=class_names,
        votes=votes,
        data=str(root),
        split_source=source,
        files=None if dataset.files is None else [str(f) for f in dataset.files],
        # files left out as unreadable (the checkpoint was trained with skip_bad)
        bad_files=[[str(f), str(p)] for f, p in getattr(dataset, "bad_files", [])],
        **common,
    )
    if render_errors is not None:
        probs = predict_probs(backend, test.points, **kw)  # type: ignore[arg-type]
        wrong = (probs.argmax(1) != test.labels).nonzero().flatten().tolist()
        result["rendered_errors"] = _render_errors(
            Path(render_errors),
            test,
            probs,
            wrong[:max_render],
            class_names,
            prep.up_axis,
        )
    return result


_UNLISTED = "not in the split manifest"  # the reason FolderDataset skips such files


def _recorded_split(meta: dict[str, Any], root: Path) -> tuple[Any, str]:
    """The checkpoint's split manifest if it applies to ``root``, and in words
    where the split of the evaluation comes from."""
    plan = meta.get("extra", {}).get("split")
    recorded = plan.get("root") if isinstance(plan, dict) else None
    if (
        isinstance(plan, dict)
        and plan.get("layout") == "class"
        and recorded is not None
        and Path(recorded).resolve() == root.resolve()
    ):
        return plan, "the checkpoint's split manifest"
    return None, "the dataset's own split"


def _evaluate_parts(
    model: nn.Module, meta: dict[str, Any], prep: Any, recorded: dict[str, Any],
    data: Any, split: str, batch_size: int, device: torch.device,
) -> dict[str, Any]:  # fmt: skip
    from pointnet1x1.data.shapenetpart import CATEGORIES, SEG_CLASSES
    from pointnet1x1.engine.data import load_partseg_split
    from pointnet1x1.engine.tasks.partseg import evaluate_parts

    root = str(data) if data is not None else recorded.get("root")
    part = load_partseg_split(
        root, split, num_points=prep.num_points, normals=prep.use_normals,
        categories=recorded.get("categories"), seed=int(recorded.get("seed", 0)),
    )  # fmt: skip
    extra = meta.get("extra", {})
    names = list(extra.get("category_names", CATEGORIES))
    seg = dict(extra.get("seg_classes", {c: list(p) for c, p in SEG_CLASSES.items()}))
    result = evaluate_parts(
        model, part, names, seg, batch_size=batch_size, device=device
    )
    return {**result, "task": "partseg", "data": str(root)}


def _render_errors(
    folder: Path,
    test: Any,
    probs: Tensor,
    wrong: list[int],
    class_names: list[str],
    up_axis: str,
) -> list[str]:
    from pointnet1x1.engine.plots import render_clouds

    written = []
    for i in wrong:
        pred = int(probs[i].argmax())
        true = int(test.labels[i])
        title = f"#{i}: true {class_names[true]}, predicted {class_names[pred]} ({probs[i, pred]:.2f})"
        path = folder / f"error_{i:05d}_{class_names[true]}_as_{class_names[pred]}.png"
        render_clouds(
            [test.points[i, :, :3].numpy()], path, titles=[title], up_axis=up_axis
        )
        written.append(str(path))
    return written
