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

from pointnet1x1._atomic import atomic_write_json, atomic_write_text
from pointnet1x1.engine import distributed as D
from pointnet1x1.engine._data import ClassificationData
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
ConfigLike = TrainConfig | Mapping[str, Any] | str | os.PathLike[str] | None


def _as_config(config: ConfigLike, overrides: dict[str, Any]) -> TrainConfig:
    if config is None or isinstance(config, (str, os.PathLike)):
        return build_config(config, **overrides)
    if isinstance(config, TrainConfig):
        return dataclasses.replace(config, **overrides)
    if isinstance(config, Mapping):
        return TrainConfig.from_dict({**config, **overrides})
    raise TypeError(
        f"config must be a TrainConfig, a mapping or a file, got {type(config).__name__}"
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


def _schedule(cfg: TrainConfig, seen: int) -> tuple[float, float]:
    """(lr, BN momentum) after ``seen`` training samples (staircase, as the authors)."""
    assert cfg.lr is not None and cfg.decay_step is not None, (
        "call cfg.resolved() first"
    )
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


def train(config: ConfigLike = None, **overrides: Any) -> dict[str, Any]:
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
    if cfg.sync_bn and info.enabled and device.type != "cuda":
        raise ValueError(
            "--sync-bn needs CUDA (SyncBatchNorm does not run on CPU); drop it"
        )
    D.setup(info, device)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _Run(cfg, info, device).fit(state)
    finally:
        torch.set_num_threads(threads)
        D.teardown(info)


class _Run:
    """One training run: data, model, optimiser, run folder; :meth:`fit` does the rest."""

    def __init__(
        self, cfg: TrainConfig, info: D.DistInfo, device: torch.device
    ) -> None:
        from pointnet1x1.engine._data import load_classification_data
        from pointnet1x1.models import create_model

        assert cfg.model and cfg.epochs and cfg.batch_size and cfg.num_points and cfg.lr
        self.timings = {"start": time.perf_counter()}
        self.info, self.device = info, device
        self.progress = _Progress(cfg.progress, info.is_main)
        self.out = Path(str(D.broadcast_object(cfg.out or _default_out(cfg), info)))
        self.cfg = cfg = dataclasses.replace(cfg, out=str(self.out))
        assert (
            cfg.model is not None and cfg.num_points is not None and cfg.lr is not None
        )
        model_name, num_points, lr = cfg.model, cfg.num_points, cfg.lr
        self.data_cfg: dict[str, Any] = {
            "root": cfg.data, "classes": cfg.classes, "num_points": cfg.num_points,
            "normals": cfg.normals, "modelnet10": cfg.modelnet10, "seed": cfg.seed,
            "cache_dir": cfg.cache_dir,
        }  # fmt: skip
        show = info.is_main and self.progress.mode != "none"
        self.data: ClassificationData = load_classification_data(
            self.data_cfg, val_fraction=cfg.val_fraction, progress=show
        )
        self.data_cfg.update(classes=self.data.class_names, root=self.data.root)
        self.timings["data_s"] = time.perf_counter() - self.timings["start"]

        self.model_kwargs = _model_kwargs(
            cfg, len(self.data.class_names), self.data.in_channels
        )
        torch.manual_seed(cfg.seed)
        self.model = create_model(model_name, **self.model_kwargs).to(device)
        params = self.model.parameters()
        if cfg.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=lr, weight_decay=cfg.weight_decay
            )
        else:
            self.optimizer = torch.optim.SGD(
                params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay
            )
        self.net: nn.Module = self.model
        self.start_epoch, self.history = 0, []  # type: ignore[var-annotated]
        self.best: dict[str, Any] = {"val_oa": -1.0, "val_macc": -1.0, "epoch": 0}
        self.meta_args: dict[str, Any] = {
            "model_name": model_name, "model_kwargs": self.model_kwargs,
            "class_names": self.data.class_names,
            "preprocessing": make_preprocessing(num_points, use_normals=cfg.normals, up_axis=self.data.up_axis),
        }  # fmt: skip
        self.extra = {"task": "cls", "data": self.data_cfg, "config": cfg.to_dict()}
        self.forward = self._pick_forward()

    def _pick_forward(self) -> Any:
        """``x -> (logits, aux)``: the fused PointNet forward where it applies."""
        net = self

        def plain(x: Tensor) -> Any:
            return net.net(x, return_aux=True)

        if not self.cfg.fused_forward or self.info.enabled:  # DDP needs its own forward
            return plain
        try:
            from pointnet1x1.models import PointNetClassifier
            from pointnet1x1.models.fast import forward_train
        except ImportError:
            return plain
        if not isinstance(self.model, PointNetClassifier):
            return plain
        return lambda x: forward_train(self.model, x)  # type: ignore[arg-type]

    # -- state -----------------------------------------------------------------
    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch = int(state["epoch"])
        self.history, self.best = list(state["history"]), dict(state["best"])

    def _save(self, epoch: int, improved: bool) -> None:
        """Checkpoints, training state and metrics after an epoch (rank 0, atomic)."""
        if not self.info.is_main:
            return
        record, ckpt = self.history[-1], self.out / "checkpoints"
        metrics = {
            "epoch": epoch,
            "val_oa": record["val_oa"],
            "val_macc": record["val_macc"],
        }
        kw = {**self.meta_args, "metrics": metrics, "extra": self.extra}
        save_model_checkpoint(ckpt / "last.safetensors", self.model, **kw)
        if improved:
            save_model_checkpoint(ckpt / "best.safetensors", self.model, **kw)
        save_training_state(ckpt / "state.pt", {
            "metadata": build_metadata(**kw), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "epoch": epoch,
            "history": self.history, "best": self.best,
            "config": json.dumps(self.cfg.to_dict()), "rng_cpu": torch.get_rng_state(),
        })  # fmt: skip
        text = "".join(json.dumps(h) + "\n" for h in self.history)
        atomic_write_text(self.out / "metrics.jsonl", text)

    # -- the loop --------------------------------------------------------------
    def fit(self, state: dict[str, Any] | None) -> dict[str, Any]:
        from torch.utils.data.distributed import DistributedSampler

        from pointnet1x1.engine._report import finish_run

        cfg, info, data = self.cfg, self.info, self.data
        if state is not None:
            self._restore(state)
        if info.enabled:
            if cfg.sync_bn:
                self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.out / "config.json", cfg.to_dict())
            self._log_start()
        sampler: DistributedSampler[int] = DistributedSampler(
            range(len(data.train)),  # type: ignore[arg-type]
            num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed,
            drop_last=info.enabled,
        )  # fmt: skip
        self.timings["train_s"] = 0.0
        try:
            for epoch in range(self.start_epoch + 1, int(cfg.epochs or 0) + 1):
                self._epoch(epoch, sampler)
        except KeyboardInterrupt:
            if info.is_main:
                print(
                    f"interrupted; the last finished epoch is saved: continue with "
                    f"`pointnet1x1 train --out {self.out} --resume`",
                    file=sys.stderr,
                )
            raise
        D.barrier(info)
        return finish_run(
            cfg,
            data,
            self.model,
            self.history,
            self.best,
            self.out,
            self.device,
            info,
            self.timings,
            self.progress.log,
        )

    def _log_start(self) -> None:
        cfg, data, info = self.cfg, self.data, self.info
        where = "embedded default dataset" if data.root is None else data.root
        size = sum(p.numel() for p in self.model.parameters())
        self.progress.log(
            f"training {cfg.model} ({size:,} parameters) on {where}: "
            f"{len(data.class_names)} classes, {len(data.train)} train / {len(data.val)} val / "
            f"{len(data.test or [])} test shapes, {cfg.num_points} points, {cfg.epochs} epochs, "
            f"device {self.device}"
            + (f", {info.world_size} processes" if info.enabled else "")
            + (f", resuming after epoch {self.start_epoch}" if self.start_epoch else "")
        )

    def _epoch(self, epoch: int, sampler: Any) -> None:
        cfg, info, data, device = self.cfg, self.info, self.data, self.device
        k = len(data.class_names)
        t0 = time.perf_counter()
        pool, labels = data.train.points.to(device), data.train.labels.to(device)
        bs = min(int(cfg.batch_size or 0), len(sampler))
        steps = len(sampler) // bs  # the authors drop the last incomplete batch
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.long, device=device)
        gen = torch.Generator(device=device).manual_seed(
            _seed(cfg, epoch, info.rank, 1)
        )
        torch.manual_seed(_seed(cfg, epoch, info.rank, 2))  # dropout
        self.net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        conf = torch.zeros(k, k, dtype=torch.int64)
        bar = self.progress.bar(steps, f"epoch {epoch}/{cfg.epochs}")
        lr = momentum = 0.0
        for step in range(steps):
            seen = ((epoch - 1) * steps + step) * bs * info.world_size
            lr, momentum = _schedule(cfg, seen)
            _set_schedule(self.optimizer, self.net, lr, momentum)
            idx = order[step * bs : (step + 1) * bs]
            x, y = _train_batch(cfg, pool, idx, gen, data.up_axis), labels[idx]
            logits, aux = self.forward(x)
            loss = F.cross_entropy(logits, y) + aux
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
            conf += confusion_matrix(y.cpu(), logits.detach().argmax(1).cpu(), k)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}")
        if bar is not None:
            bar.close()
        D.broadcast_buffers(self.model, info)  # one set of BN statistics on every rank
        totals = torch.cat([conf.double().flatten().to(device), loss_sum.view(1)])
        totals = D.all_reduce_sum(totals, info).cpu()
        train_m = classification_metrics(totals[:-1].round().long().view(k, k))
        val_conf, val_loss = evaluate_split(
            self.model, data.val.points, data.val.labels, k,
            batch_size=max(bs, 64), device=device, up_axis=data.up_axis, info=info,
        )  # fmt: skip
        val_m = classification_metrics(val_conf)
        dt = time.perf_counter() - t0
        self.timings["train_s"] += dt
        record = {
            "epoch": epoch, "train_loss": float(totals[-1]) / max(int(totals[:-1].sum()), 1),
            "train_oa": train_m.oa, "val_loss": val_loss, "val_oa": val_m.oa,
            "val_macc": val_m.macc, "lr": lr, "bn_momentum": momentum, "time_s": dt,
        }  # fmt: skip
        self.history.append(record)
        # ties go to the later epoch (small validation sets tie often)
        improved = (val_m.oa, val_m.macc) >= (
            self.best["val_oa"],
            self.best["val_macc"],
        )
        if improved:
            self.best = {"val_oa": val_m.oa, "val_macc": val_m.macc, "epoch": epoch}
        self._save(epoch, improved)
        self.progress.log(
            f"epoch {epoch:>3d}/{cfg.epochs}  loss {record['train_loss']:.4f}  "
            f"train OA {100 * train_m.oa:5.1f}%  val OA {100 * val_m.oa:5.1f}%  "
            f"val mAcc {100 * val_m.macc:5.1f}%  lr {lr:.2e}  {dt:.1f}s"
            + ("  *best" if improved else "")
        )


def _default_out(cfg: TrainConfig) -> str:
    name = Path(cfg.data).name if cfg.data else "default"
    return str(Path("runs") / f"{cfg.model}-{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _model_kwargs(
    cfg: TrainConfig, num_classes: int, in_channels: int
) -> dict[str, Any]:
    from pointnet1x1.models.registry import _MODELS

    assert cfg.model is not None
    params = inspect.signature(_MODELS[cfg.model]).parameters
    accepts = (
        any(p.kind is p.VAR_KEYWORD for p in params.values()) or "dropout" in params
    )
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_channels": in_channels}
    if accepts and cfg.dropout is not None:
        kwargs["dropout"] = cfg.dropout
    kwargs.update(cfg.model_kwargs or {})
    return kwargs


def _train_batch(
    cfg: TrainConfig, pool: Tensor, idx: Tensor, gen: torch.Generator, up_axis: str
) -> Tensor:
    """Sample ``num_points`` of each shape's stored points, augment, go channels-first."""
    from pointnet1x1.data import augment_batch

    assert cfg.num_points is not None
    clouds = pool[idx]  # (B, P, C)
    b, p, c = clouds.shape
    if p > cfg.num_points:
        keep = torch.rand(b, p, generator=gen, device=pool.device).argsort(dim=1)
        keep = keep[:, : cfg.num_points]
        clouds = clouds.gather(1, keep.unsqueeze(2).expand(-1, -1, c))  # (B, N, C)
    scale = (float(cfg.scale[0]), float(cfg.scale[1])) if cfg.scale else None
    clouds = augment_batch(
        clouds, scale=scale, shift=cfg.shift, jitter=cfg.jitter, jitter_clip=cfg.jitter_clip,
        rotate=cfg.rotate, dropout=None, up_axis=up_axis, generator=gen,
    )  # fmt: skip
    return clouds.transpose(1, 2).contiguous()  # (B, C, N)
