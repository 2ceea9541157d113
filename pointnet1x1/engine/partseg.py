"""Part segmentation: training loop, the authors' mIoU metrics, per-point prediction.

Protocol: train on the official ``train`` list, pick the epoch with the best
validation instance mIoU on the official ``val`` list, evaluate the ``test`` list
once at the end with that epoch's weights, and say so in ``report.json``.

Metrics as in the PointNet / PointNet++ authors' evaluation: the prediction of a
shape is the arg-max over **the parts of its category only**; a shape's IoU is the
mean over those parts of ``|pred & gt| / |pred | gt|``, where a part absent from
both counts 1; **instance mIoU** averages shapes, **class mIoU** averages the
per-category means. Scores are over the ``num_points`` sampled points of each
shape (as the common PyTorch port), not over every point of the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pointnet1x1._atomic import atomic_write, atomic_write_json
from pointnet1x1.data.shapenetpart import (
    CATEGORIES,
    NUM_PARTS,
    PART_NAMES,
    SEG_CLASSES,
    ShapeNetPart,
    collate_parts,
)

__all__ = [
    "PartSegConfig",
    "PartSegMetrics",
    "evaluate_partseg",
    "predict_parts",
    "restrict_to_category",
    "shape_iou",
    "train_partseg",
    "write_part_labels",
]

# TrainConfig's classifier names -> the segmenter of the same family
_SEGMENTER_OF = {"pointnet": "pointnet_partseg", "pointnet2_ssg": "pointnet2_partseg"}


@dataclass
class PartSegConfig:
    """A part-segmentation run (defaults: the yanx27 port's ShapeNetPart recipe)."""

    data: str = ""  # ShapeNetPart root (the *_v0_normal folder or its parent)
    model: str = "pointnet2_partseg"  # or "pointnet_partseg"
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # constructor overrides
    categories: list[str] | None = None  # subset of the 16 categories; None = all
    use_normals: bool = False  # xyz + normals (6 channels) instead of xyz
    num_points: int = 2048  # points sampled per shape (train, val and test)
    epochs: int = 250  # the ports train 250 epochs
    batch_size: int = 16
    lr: float = 1e-3  # Adam
    weight_decay: float = 1e-4
    lr_step: int = 20  # epochs between lr decays
    lr_decay: float = 0.5  # lr multiplier every lr_step epochs
    min_lr: float = 1e-5  # lr floor
    scale: tuple[float, float] | None = (0.8, 1.25)  # random scale of xyz per shape
    shift: float | None = 0.1  # random shift of xyz per shape, U(-shift, shift)
    seed: int = 0  # seeds sampling, shuffling, augmentation and initialisation
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    out: str | None = None  # run folder; None = runs/<model>-shapenetpart-<time>
    log: bool = True  # one line per epoch on stdout

    def validate(self) -> None:
        if not self.data:
            raise ValueError(
                "part segmentation needs a ShapeNetPart root: pass --data ROOT "
                "(shapenetcore_partanno_segmentation_benchmark_v0_normal)"
            )
        for name in ("num_points", "epochs", "batch_size", "lr_step"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.model.endswith("_partseg"):
            raise ValueError(
                f"model {self.model!r} is not a part segmenter; use "
                "pointnet2_partseg or pointnet_partseg"
            )


def _from_train_config(cfg: Any) -> PartSegConfig:
    """Map the engine's ``TrainConfig`` (``--task partseg``) onto this config."""
    values: dict[str, Any] = {
        "data": cfg.data or "",
        "model": _SEGMENTER_OF.get(cfg.model, cfg.model),
        "model_kwargs": dict(cfg.model_kwargs or {}),
        "categories": cfg.classes,
        "use_normals": cfg.normals,
        "seed": cfg.seed,
        "device": cfg.device,
        "out": cfg.out,
        "weight_decay": cfg.weight_decay or PartSegConfig.weight_decay,
        "log": cfg.progress != "none",
    }
    for name in ("num_points", "epochs", "batch_size", "lr"):
        if getattr(cfg, name) is not None:
            values[name] = getattr(cfg, name)
    return PartSegConfig(**values)


# --- metrics -------------------------------------------------------------------------

_CATEGORY_MASK = torch.zeros(len(CATEGORIES), NUM_PARTS, dtype=torch.bool)
for _i, _c in enumerate(CATEGORIES):
    _CATEGORY_MASK[_i, list(SEG_CLASSES[_c])] = True


def restrict_to_category(logits: Tensor, category: Tensor) -> Tensor:
    """Arg-max over the parts of each shape's category only.

    Args:
        logits: Tensor of shape ``(B, 50, N)`` giving part logits.
        category: Long tensor of shape ``(B,)`` giving category indices.

    Returns:
        Long tensor of shape ``(B, N)`` of global part labels.
    """
    mask = _CATEGORY_MASK.to(logits.device)[category]  # (B, 50)
    return logits.masked_fill(~mask[:, :, None], float("-inf")).argmax(1)


def shape_iou(pred: np.ndarray, target: np.ndarray, category: int) -> float:
    """Mean IoU over the parts of ``category`` of one shape (absent parts: 1)."""
    ious = []
    for part in SEG_CLASSES[CATEGORIES[category]]:
        p, t = pred == part, target == part
        union = np.logical_or(p, t).sum()
        ious.append(1.0 if union == 0 else np.logical_and(p, t).sum() / union)
    return float(np.mean(ious))


class PartSegMetrics:
    """Accumulates shape IoUs over a whole set; :meth:`compute` gives the mIoUs."""

    def __init__(self) -> None:
        self.ious: list[float] = []
        self.categories: list[int] = []
        self.correct = self.total = 0

    def update(self, pred: Tensor, target: Tensor, category: Tensor) -> None:
        """Add a batch: labels ``(B, N)``, ``(B, N)`` and categories ``(B,)``."""
        pred_np, target_np = pred.cpu().numpy(), target.cpu().numpy()
        for p, t, c in zip(pred_np, target_np, category.tolist(), strict=True):
            self.ious.append(shape_iou(p, t, c))
            self.categories.append(c)
        self.correct += int((pred_np == target_np).sum())
        self.total += target_np.size

    def compute(self) -> dict[str, Any]:
        if not self.ious:
            raise ValueError("no shapes were evaluated")
        ious, cats = np.asarray(self.ious), np.asarray(self.categories)
        per_category = {
            CATEGORIES[c]: float(ious[cats == c].mean()) for c in sorted(set(cats))
        }
        return {
            "instance_miou": float(ious.mean()),
            "class_miou": float(np.mean(list(per_category.values()))),
            "point_accuracy": self.correct / self.total,
            "per_category": per_category,
            "shapes": len(ious),
        }


@torch.no_grad()
def evaluate_partseg(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor, Tensor]],
    device: torch.device,
) -> dict[str, Any]:
    """Instance / class mIoU of ``model`` over batches from :func:`collate_parts`."""
    model.eval()
    metrics = PartSegMetrics()
    for x, category, target in batches:
        x, category = x.to(device), category.to(device)
        logits = model(x, category)
        metrics.update(restrict_to_category(logits, category), target, category)
    return metrics.compute()


# --- training ------------------------------------------------------------------------


def _augment(x: Tensor, cfg: PartSegConfig, gen: torch.Generator) -> Tensor:
    """Random per-shape scale and shift of xyz (normals are unchanged by both)."""
    xyz = x[:, :3]
    if cfg.scale is not None:
        low, high = cfg.scale
        xyz = xyz * (low + (high - low) * torch.rand(len(x), 1, 1, generator=gen))
    if cfg.shift:
        xyz = xyz + (torch.rand(len(x), 3, 1, generator=gen) * 2 - 1) * cfg.shift
    return torch.cat([xyz, x[:, 3:]], dim=1)


def _loader(ds: ShapeNetPart, batch_size: int, shuffle: bool, seed: int) -> Any:
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_parts,
        generator=gen,
        drop_last=shuffle and len(ds) > batch_size,
    )


def train_partseg(config: Any) -> dict[str, Any]:
    """Train a part segmenter on ShapeNetPart and write a run folder.

    Args:
        config: A :class:`PartSegConfig`, or the engine's ``TrainConfig`` with
            ``task="partseg"`` (its data, model, classes, normals, num_points,
            epochs, batch_size, lr, seed, device and out are used).

    Returns:
        The report, also written to ``<out>/report.json``: ``val`` (best epoch),
        ``test`` (evaluated once, with the best-validation weights), ``history``,
        ``best_epoch``, ``checkpoint``, ``config``.
    """
    from pointnet1x1.engine.checkpoint import make_preprocessing, save_model_checkpoint
    from pointnet1x1.engine.predict import resolve_device
    from pointnet1x1.models import create_model

    cfg = config if isinstance(config, PartSegConfig) else _from_train_config(config)
    cfg.validate()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    data = {
        split: ShapeNetPart(
            cfg.data,
            split,
            num_points=cfg.num_points,
            use_normals=cfg.use_normals,
            categories=cfg.categories,
            seed=cfg.seed,
        )
        for split in ("train", "val", "test")
    }
    in_channels = data["train"].in_channels
    kwargs = {"num_parts": NUM_PARTS, "num_categories": len(CATEGORIES)}
    kwargs |= {"in_channels": in_channels, **cfg.model_kwargs}
    model = create_model(cfg.model, **kwargs).to(device)
    out = Path(
        cfg.out or f"runs/{cfg.model}-shapenetpart-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    train_loader = _loader(data["train"], cfg.batch_size, True, cfg.seed)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"instance_miou": -1.0}
    best_state: dict[str, Tensor] = {}
    for epoch in range(1, cfg.epochs + 1):
        lr = max(cfg.lr * cfg.lr_decay ** ((epoch - 1) // cfg.lr_step), cfg.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        start, loss_sum, seen = time.perf_counter(), 0.0, 0
        for x, category, target in train_loader:
            x = _augment(x, cfg, gen).to(device)
            logits, aux = model(x, category.to(device), return_aux=True)
            loss = nn.functional.cross_entropy(logits, target.to(device)) + aux
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum, seen = loss_sum + float(loss.detach()) * len(x), seen + len(x)
        val = evaluate_partseg(
            model, _loader(data["val"], cfg.batch_size, False, 0), device
        )
        row = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / max(seen, 1)}
        row |= {
            f"val_{k}": val[k]
            for k in ("instance_miou", "class_miou", "point_accuracy")
        }
        row["seconds"] = round(time.perf_counter() - start, 3)
        history.append(row)
        if not math.isfinite(row["train_loss"]):
            raise ValueError(
                f"training diverged at epoch {epoch} (loss {row['train_loss']}); lower lr"
            )
        if val["instance_miou"] > best["instance_miou"]:
            best = {**val, "epoch": epoch}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if cfg.log:
            print(
                f"epoch {epoch}/{cfg.epochs} loss {row['train_loss']:.4f} val instance "
                f"mIoU {val['instance_miou']:.4f} class mIoU {val['class_miou']:.4f} "
                f"({row['seconds']:.1f}s)",
                flush=True,
            )
    model.load_state_dict(best_state)
    test = evaluate_partseg(
        model, _loader(data["test"], cfg.batch_size, False, 0), device
    )
    test["weights"] = f"best validation instance mIoU (epoch {best['epoch']})"
    checkpoint = save_model_checkpoint(
        out / "checkpoints" / "best.safetensors",
        model,
        model_name=cfg.model,
        model_kwargs=kwargs,
        class_names=PART_NAMES,
        preprocessing=make_preprocessing(cfg.num_points, use_normals=cfg.use_normals),
        metrics={"val": best, "test": test},
        extra={
            "task": "partseg",
            "category_names": list(CATEGORIES),
            "part_names": list(PART_NAMES),
            "seg_classes": {c: list(p) for c, p in SEG_CLASSES.items()},
            "config": dataclasses.asdict(cfg),
        },
    )
    report = {
        "task": "partseg",
        "model": cfg.model,
        "model_kwargs": kwargs,
        "best_epoch": best["epoch"],
        "val": best,
        "test": test,
        "history": history,
        "checkpoint": str(checkpoint),
        "run_dir": str(out),
        "config": dataclasses.asdict(cfg),
        "shapes": {split: len(ds) for split, ds in data.items()},
    }
    atomic_write_json(out / "report.json", report)
    if cfg.log:
        print(
            f"test instance mIoU {test['instance_miou']:.4f} class mIoU "
            f"{test['class_miou']:.4f} (weights of epoch {best['epoch']}); {out}"
        )
    return report


# --- inference -----------------------------------------------------------------------


@torch.no_grad()
def predict_parts(
    model: nn.Module, points: Any, category: int | str, *, normalize: bool = True
) -> np.ndarray:
    """Part labels of every point of one shape.

    Args:
        model: A part segmenter (``model(x, category)`` -> ``(1, 50, N)``).
        points: Array of shape ``(N, 3+F)`` with at least as many channels as
            the model was trained on (``preprocessing["in_channels"]`` of its
            checkpoint); extra columns are dropped.
        category: The object category, an index or a name (``"Airplane"``).
        normalize: Centre xyz and scale to the unit sphere first, as training did.

    Returns:
        Array of shape ``(N,)``, int64: global part labels of ``category``.
    """
    from pointnet1x1.data.transforms import normalize_points

    if isinstance(category, str):
        names = {c.lower(): i for i, c in enumerate(CATEGORIES)}
        if category.lower() not in names:
            raise ValueError(
                f"unknown category {category!r}; choose from {', '.join(CATEGORIES)}"
            )
        category = names[category.lower()]
    if not 0 <= category < len(CATEGORIES):
        raise ValueError(f"category must be in [0, {len(CATEGORIES)}), got {category}")
    pts = np.asarray(points, dtype=np.float32)
    channels: Any = getattr(model, "in_channels", pts.shape[-1])
    in_channels = int(channels)
    if pts.ndim != 2 or pts.shape[1] < in_channels:
        raise ValueError(
            f"the model takes points of shape (N, {in_channels}) (xyz"
            f"{' + normals' if in_channels == 6 else ''}), got {pts.shape}"
        )
    pts = pts[:, :in_channels]  # e.g. drop normals the model was not trained on
    if normalize:
        pts = normalize_points(pts)
    param = next(model.parameters())
    x = torch.from_numpy(pts).T[None].to(param.device, param.dtype)  # (1, C, N)
    cat = torch.tensor([category], device=param.device)
    model.eval()
    labels = restrict_to_category(model(x, cat), cat)[0]
    return labels.cpu().numpy().astype(np.int64)


def write_part_labels(path: str | os.PathLike[str], points: Any, labels: Any) -> Path:
    """Write per-point part labels, atomically.

    ``.ply``: binary PLY of the points (``x y z`` and normals when given) with an
    int ``label`` property; ``.npy``: the ``(N,)`` int64 labels; ``.txt``:
    ``x y z label`` rows.
    """
    path = Path(path)
    pts, lab = np.asarray(points, dtype=np.float32), np.asarray(labels).astype(np.int64)
    if pts.ndim != 2 or pts.shape[1] < 3 or lab.shape != (len(pts),):
        raise ValueError(
            f"expected points (N, 3+F) and labels (N,), got {pts.shape} and {lab.shape}"
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return atomic_write(path, lambda f: np.save(f, lab))
    if suffix == ".txt":
        rows = np.column_stack([pts[:, :3], lab])
        return atomic_write(
            path, lambda f: np.savetxt(f, rows, fmt="%.6f %.6f %.6f %d")
        )
    if suffix == ".ply":
        from plyfile import PlyData, PlyElement

        names = ["x", "y", "z", "nx", "ny", "nz"][: 6 if pts.shape[1] >= 6 else 3]
        vertex = np.empty(
            len(pts), dtype=[*((n, "f4") for n in names), ("label", "i4")]
        )
        for i, name in enumerate(names):
            vertex[name] = pts[:, i]
        vertex["label"] = lab
        ply = PlyData([PlyElement.describe(vertex, "vertex")])
        return atomic_write(path, ply.write)
    raise ValueError(
        f"{path}: cannot write part labels as {suffix!r}; use .ply, .npy or .txt"
    )
