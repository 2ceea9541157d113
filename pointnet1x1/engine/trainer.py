"""``train(config)``: train a classifier and write a self-contained run folder.

Run folder::

    config.json          the resolved TrainConfig
    metrics.jsonl        one JSON object per epoch (loss, OA, mAcc, lr, time)
    report.json          test OA / mAcc of the last and the validation-best model
    curves.png           loss and accuracy per epoch
    confusion.png        test confusion matrix of the reported checkpoint
    checkpoints/last.safetensors  best.safetensors  state.pt

Protocol: a seeded, stratified validation split is carved from the training set
and picks the best epoch; the test set is used once, at the end, by both the last
and the validation-best model. ``test`` in the report is the validation-best one.

Resuming is exact: the shuffling, augmentation and dropout streams are re-seeded
from ``(seed, epoch, rank)`` every epoch and the lr / BN-momentum schedule is a
function of the samples seen, so 2 epochs + resume 1 gives the same weights on
CPU as 3 epochs straight. The state is written after every epoch, atomically.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pointnet1x1.engine import distributed as D
from pointnet1x1.engine._atomic import atomic_write_json, atomic_write_text
from pointnet1x1.engine.checkpoint import (
    build_metadata,
    load_training_state,
    make_preprocessing,
    save_model_checkpoint,
    save_training_state,
)
from pointnet1x1.engine.config import TrainConfig, build_config
from pointnet1x1.engine.evaluate import evaluate_split
from pointnet1x1.engine.metrics import classification_metrics, confusion_matrix
from pointnet1x1.engine.predict import resolve_device

# Fields that may change when a run is resumed; everything else comes from the run.
_RESUME_OVERRIDES = ("epochs", "device", "progress", "votes")


def _as_config(
    config: TrainConfig | Mapping[str, Any] | str | os.PathLike[str] | None,
    overrides: dict[str, Any],
) -> TrainConfig:
    if config is None or isinstance(config, (str, os.PathLike)):
        return build_config(config, **overrides)
    if isinstance(config, Mapping):
        return TrainConfig.from_dict({**config, **overrides})
    if isinstance(config, TrainConfig):
        return dataclasses.replace(config, **overrides)
    raise TypeError(
        f"config must be a TrainConfig, a mapping or a file path, got {type(config).__name__}"
    )


def _state_path(resume: str | bool, out: str | None) -> Path:
    if resume is True:
        if out is None:
            raise ValueError(
                "--resume without a path needs --out RUN_DIR (the run to continue)"
            )
        base = Path(out)
    else:
        base = Path(str(resume))
    path = base / "checkpoints" / "state.pt" if base.is_dir() else base
    if not path.exists():
        raise FileNotFoundError(f"nothing to resume: no training state at {path}")
    return path


def _default_out(cfg: TrainConfig) -> str:
    name = Path(cfg.data).name if cfg.data else "default"
    return str(Path("runs") / f"{cfg.model}-{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _model_kwargs(
    cfg: TrainConfig, num_classes: int, in_channels: int
) -> dict[str, Any]:
    from pointnet1x1.models.registry import _MODELS, create_model  # noqa: F401

    if cfg.model not in _MODELS:
        create_model(cfg.model)  # raises the "unknown model ..." ValueError
    params = inspect.signature(_MODELS[cfg.model]).parameters
    accepts = (
        any(p.kind is p.VAR_KEYWORD for p in params.values()) or "dropout" in params
    )
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_channels": in_channels}
    if accepts:
        kwargs["dropout"] = cfg.dropout
    kwargs.update(cfg.model_kwargs or {})
    return kwargs


def _schedule(cfg: TrainConfig, seen: int) -> tuple[float, float]:
    """(lr, BN momentum) after ``seen`` training samples (staircase, as the authors)."""
    assert cfg.lr is not None and cfg.decay_step is not None
    k = seen // cfg.decay_step
    lr = max(cfg.lr * cfg.lr_decay**k, cfg.min_lr)
    momentum = max(cfg.bn_momentum * cfg.bn_momentum_decay**k, cfg.min_bn_momentum)
    return lr, momentum


def _set_schedule(
    optimizer: torch.optim.Optimizer, model: nn.Module, lr: float, momentum: float
) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def _seed(cfg: TrainConfig, epoch: int, rank: int, stream: int) -> int:
    return (cfg.seed * 1_000_003 + epoch * 1009 + rank * 101 + stream) % (2**63)


class _Progress:
    """A tqdm bar per epoch on a terminal, plain log lines otherwise."""

    def __init__(self, mode: str, enabled: bool) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode if enabled else "none"

    def bar(self, total: int, desc: str) -> Any:
        if self.mode != "bar":
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def log(self, line: str) -> None:
        if self.mode != "none":
            print(line, flush=True)


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def train(
    config: TrainConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train a classifier and return the report (also written to ``report.json``).

    Args:
        config: A :class:`TrainConfig`, a mapping of its fields, a TOML/YAML file,
            or None for the defaults (the fast recipe on the embedded dataset).
        **overrides: Field values that override ``config``.

    Returns:
        The report: ``test`` (``oa``, ``macc`` as fractions, ``per_class``,
        ``checkpoint``), ``test_last``, ``test_best``, ``best_epoch``, ``timings``,
        ``config``, ``versions``, ``run_dir`` and ``checkpoints``.
    """
    cfg = _as_config(config, overrides)
    cfg.validate()
    if cfg.task == "partseg":
        try:
            from pointnet1x1.engine import partseg
        except ModuleNotFoundError:
            raise ValueError(
                "--task partseg needs pointnet1x1.engine.partseg, which this installation lacks"
            ) from None
        if cfg.model is None:  # the segmentation job has its own default model
            cfg = dataclasses.replace(cfg, model=partseg.PartSegConfig.model)
        return partseg.train_partseg(cfg)
    state = None
    if cfg.resume:
        state_path = _state_path(cfg.resume, cfg.out)
        state = load_training_state(state_path)
        saved = TrainConfig.from_dict(json.loads(state["config"]))
        keep = {
            k: getattr(cfg, k) for k in _RESUME_OVERRIDES if getattr(cfg, k) is not None
        }
        cfg = dataclasses.replace(
            saved, **keep, out=str(state_path.parent.parent), resume=False
        )
    cfg = cfg.resolved()
    from pointnet1x1.models import list_models

    if cfg.model not in list_models():
        raise ValueError(
            f"unknown model {cfg.model!r}; choose one of: {', '.join(list_models())}"
        )
    info = D.from_env()
    device = resolve_device(cfg.device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    D.setup(info, device)
    try:
        return _train(cfg, state, info, device)
    finally:
        D.teardown(info)


def _train(
    cfg: TrainConfig,
    state: dict[str, Any] | None,
    info: D.DistInfo,
    device: torch.device,
) -> dict[str, Any]:
    from pointnet1x1.engine._data import load_classification_data
    from pointnet1x1.models import create_model

    assert (
        cfg.epochs is not None
        and cfg.batch_size is not None
        and cfg.num_points is not None
    )
    t_start = time.perf_counter()
    progress = _Progress(cfg.progress, info.is_main)
    out = Path(str(D.broadcast_object(cfg.out or _default_out(cfg), info)))
    cfg = dataclasses.replace(cfg, out=str(out))
    data_cfg = {
        "root": cfg.data, "classes": cfg.classes, "num_points": cfg.num_points,
        "normals": cfg.normals, "modelnet10": cfg.modelnet10, "seed": cfg.seed,
        "cache_dir": cfg.cache_dir,
    }  # fmt: skip
    data = load_classification_data(
        data_cfg,
        val_fraction=cfg.val_fraction,
        progress=info.is_main and progress.mode != "none",
    )
    class_names, k = data.class_names, len(data.class_names)
    data_cfg["classes"] = class_names
    data_cfg["root"] = data.root
    t_data = time.perf_counter() - t_start

    model_kwargs = _model_kwargs(cfg, k, data.in_channels)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **model_kwargs).to(device)
    if cfg.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
    start_epoch, history, best = 0, [], {"val_oa": -1.0, "val_macc": -1.0, "epoch": 0}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history, best = (
            int(state["epoch"]),
            list(state["history"]),
            dict(state["best"]),
        )
    net: nn.Module = model
    if info.enabled:
        if cfg.sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )

    preprocessing = make_preprocessing(
        cfg.num_points, use_normals=cfg.normals, up_axis=data.up_axis
    )
    extra = {"task": "cls", "data": data_cfg, "config": cfg.to_dict()}
    ckpt_dir = out / "checkpoints"
    meta_args = dict(
        model_name=cfg.model,
        model_kwargs=model_kwargs,
        class_names=class_names,
        preprocessing=preprocessing,
    )

    def save(epoch: int, record: dict[str, Any], improved: bool) -> None:
        if not info.is_main:
            return
        metrics = {
            "epoch": epoch,
            "val_oa": record["val_oa"],
            "val_macc": record["val_macc"],
        }
        save_model_checkpoint(
            ckpt_dir / "last.safetensors",
            model,
            **meta_args,
            metrics=metrics,
            extra=extra,
        )
        if improved:
            save_model_checkpoint(
                ckpt_dir / "best.safetensors",
                model,
                **meta_args,
                metrics=metrics,
                extra=extra,
            )
        save_training_state(ckpt_dir / "state.pt", {
            "metadata": build_metadata(**meta_args, metrics=metrics, extra=extra),
            "model": _unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch, "history": history, "best": best,
            "config": json.dumps(cfg.to_dict()),
            "rng_cpu": torch.get_rng_state(),
        })  # fmt: skip
        atomic_write_text(
            out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history)
        )

    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", cfg.to_dict())
        where = "embedded default dataset" if data.root is None else data.root
        progress.log(
            f"training {cfg.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on {where}: "
            f"{k} classes, {len(data.train)} train / {len(data.val)} val / {len(data.test or [])} test shapes, "
            f"{cfg.num_points} points, {cfg.epochs} epochs, device {device}"
            + (f", {info.world_size} processes" if info.enabled else "")
            + (f", resuming after epoch {start_epoch}" if start_epoch else "")
        )

    train_pool = data.train.points.to(device)
    train_labels = data.train.labels.to(device)
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(
        range(len(data.train)), num_replicas=info.world_size, rank=info.rank,
        shuffle=True, seed=cfg.seed, drop_last=info.enabled,
    )  # fmt: skip
    per_rank = len(sampler)
    bs = min(cfg.batch_size, per_rank)
    steps = per_rank // bs  # the authors drop the last incomplete batch
    t_train = 0.0
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler), dtype=torch.long, device=device)
            gen = torch.Generator(device=device).manual_seed(
                _seed(cfg, epoch, info.rank, 1)
            )
            torch.manual_seed(_seed(cfg, epoch, info.rank, 2))  # dropout
            net.train()
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            conf = torch.zeros(k, k, dtype=torch.int64)
            bar = progress.bar(steps, f"epoch {epoch}/{cfg.epochs}")
            for step in range(steps):
                seen = ((epoch - 1) * steps + step) * bs * info.world_size
                lr, momentum = _schedule(cfg, seen)
                _set_schedule(optimizer, net, lr, momentum)
                idx = order[step * bs : (step + 1) * bs]
                x, y = (
                    _train_batch(cfg, train_pool, idx, gen, data.up_axis),
                    train_labels[idx],
                )
                logits, aux = net(x, return_aux=True)
                loss = F.cross_entropy(logits, y) + aux
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach().double() * len(idx)
                conf += confusion_matrix(y.cpu(), logits.detach().argmax(1).cpu(), k)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}")
            if bar is not None:
                bar.close()
            D.broadcast_buffers(model, info)  # one set of BN statistics on every rank
            totals = D.all_reduce_sum(
                torch.cat([conf.double().flatten().to(device), loss_sum.view(1)]), info
            ).cpu()
            conf = totals[:-1].round().long().view(k, k)
            train_m = classification_metrics(conf)
            val_conf, val_loss = evaluate_split(
                _unwrap(net), data.val.points, data.val.labels, k,
                batch_size=max(bs, 64), device=device, up_axis=data.up_axis, info=info,
            )  # fmt: skip
            val_m = classification_metrics(val_conf)
            dt = time.perf_counter() - t0
            t_train += dt
            record = {
                "epoch": epoch, "train_loss": float(totals[-1]) / max(int(conf.sum()), 1),
                "train_oa": train_m.oa, "val_loss": val_loss, "val_oa": val_m.oa,
                "val_macc": val_m.macc, "lr": lr, "bn_momentum": momentum, "time_s": dt,
            }  # fmt: skip
            history.append(record)
            # ties go to the later epoch (small validation sets tie often)
            improved = (val_m.oa, val_m.macc) >= (best["val_oa"], best["val_macc"])
            if improved:
                best = {"val_oa": val_m.oa, "val_macc": val_m.macc, "epoch": epoch}
            save(epoch, record, improved)
            progress.log(
                f"epoch {epoch:>3d}/{cfg.epochs}  loss {record['train_loss']:.4f}  "
                f"train OA {100 * train_m.oa:5.1f}%  val OA {100 * val_m.oa:5.1f}%  "
                f"val mAcc {100 * val_m.macc:5.1f}%  lr {lr:.2e}  {dt:.1f}s"
                + ("  *best" if improved else "")
            )
    except KeyboardInterrupt:
        if info.is_main:
            print(
                f"interrupted; the last finished epoch is saved: continue with "
                f"`pointnet1x1 train --out {out} --resume`",
                file=sys.stderr,
            )
        raise
    D.barrier(info)
    return _finish(
        cfg,
        data,
        model,
        history,
        best,
        out,
        device,
        info,
        progress,
        t_start,
        t_data,
        t_train,
    )


def _train_batch(
    cfg: TrainConfig, pool: Tensor, idx: Tensor, gen: torch.Generator, up_axis: str
) -> Tensor:
    """Sample ``num_points`` of each shape's stored points, augment, go channels-first."""
    from pointnet1x1.data import augment_batch

    clouds = pool[idx]  # (B, P, C)
    b, p, c = clouds.shape
    if p > cfg.num_points:
        keep = torch.rand(b, p, generator=gen, device=pool.device).argsort(dim=1)[
            :, : cfg.num_points
        ]
        clouds = clouds.gather(1, keep.unsqueeze(2).expand(-1, -1, c))  # (B, N, C)
    clouds = augment_batch(
        clouds, scale=tuple(cfg.scale) if cfg.scale else None, shift=cfg.shift,
        jitter=cfg.jitter, jitter_clip=cfg.jitter_clip, rotate=cfg.rotate,
        dropout=None, up_axis=up_axis, generator=gen,
    )  # fmt: skip
    return clouds.transpose(1, 2).contiguous()  # (B, C, N)


def _finish(
    cfg,
    data,
    model,
    history,
    best,
    out,
    device,
    info,
    progress,
    t_start,
    t_data,
    t_train,
) -> dict[str, Any]:  # noqa: ANN001
    from pointnet1x1.engine.checkpoint import load_model_checkpoint
    from pointnet1x1.engine.plots import plot_confusion, plot_curves

    k, names = len(data.class_names), data.class_names
    t0 = time.perf_counter()
    results = {}
    last_model = _unwrap(model)
    best_model = load_model_checkpoint(
        out / "checkpoints" / "best.safetensors", map_location=device
    ).model
    for which, net in (("last", last_model), ("best", best_model)):
        conf, loss = evaluate_split(
            net, data.test.points, data.test.labels, k, batch_size=64,
            device=device, votes=cfg.votes, up_axis=data.up_axis, info=info,
        )  # fmt: skip
        results[which] = {**classification_metrics(conf).to_dict(names), "loss": loss}
    t_test = time.perf_counter() - t0
    digests = [str(d) for d in D.gather_objects(D.weight_digest(last_model), info)]
    last_epoch = history[-1]["epoch"] if history else 0
    results["last"]["checkpoint"] = f"last (epoch {last_epoch})"
    results["best"]["checkpoint"] = (
        f"best (epoch {best['epoch']}, highest validation OA, latest on ties)"
    )
    from pointnet1x1.engine.checkpoint import _versions

    report = {
        "task": "cls",
        "run_dir": str(out.resolve()),
        "model": cfg.model,
        "class_names": names,
        "data": {
            "root": data.root or "embedded default",
            "num_train": len(data.train),
            "num_val": len(data.val),
            "num_test": len(data.test),
        },  # fmt: skip
        "test": {**results["best"], "which": "best"},
        "test_best": results["best"],
        "test_last": results["last"],
        "note": "test = the validation-best checkpoint (test_best); test_last = the last epoch's",
        "best_epoch": best["epoch"],
        "val_best": {"oa": best["val_oa"], "macc": best["val_macc"]},
        "votes": cfg.votes,
        "epochs": last_epoch,
        "timings": {
            "total_s": time.perf_counter() - t_start,
            "data_s": t_data,
            "train_s": t_train,
            "test_s": t_test,
            "epoch_s": t_train / max(len(history), 1),
        },  # fmt: skip
        "checkpoints": {
            "best": str(out / "checkpoints" / "best.safetensors"),
            "last": str(out / "checkpoints" / "last.safetensors"),
            "state": str(out / "checkpoints" / "state.pt"),
        },
        "device": str(device),
        "world_size": info.world_size,
        "weight_digests": digests,
        "weights_identical_across_ranks": len(set(digests)) == 1,
        "config": cfg.to_dict(),
        "versions": _versions(),
    }
    if info.is_main:
        atomic_write_json(out / "report.json", report)
        if history:
            plot_curves(history, out / "curves.png")
        plot_confusion(
            results["best"]["confusion"],
            names,
            out / "confusion.png",
            title=f"test, {results['best']['checkpoint']}",
        )
        progress.log(
            f"test OA {100 * results['best']['oa']:.2f}%  mAcc {100 * results['best']['macc']:.2f}% "
            f"(validation-best, epoch {best['epoch']}); last epoch: OA {100 * results['last']['oa']:.2f}%  "
            f"mAcc {100 * results['last']['macc']:.2f}%; {report['timings']['total_s']:.0f}s; run folder {out}"
        )
    return report
