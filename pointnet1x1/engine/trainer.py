"""``train(config)``: the one training engine, for every task; it writes a run folder.

Run folder::

    config.json          the resolved TrainConfig
    metrics.jsonl        one JSON object per epoch (loss, the task's figures, lr, time)
    report.json          test figures of the validation-best and the last model
    curves.png           loss and the task's figures per epoch
    confusion.png        classification: test confusion matrix of the best model
    checkpoints/last.safetensors  best.safetensors  state.pt

The task (:mod:`pointnet1x1.engine.tasks`) supplies data, batches, loss, metrics
and the selection score; this module does the rest, the same for every task:
the model is selected on the validation split (the highest score; ties go to the
later epoch), the test split is used once, at the end, by both the last and the
validation-best model.

Resuming is exact: the shuffling, augmentation and dropout streams are re-seeded
from ``(seed, epoch, rank)`` every epoch and the lr / BN-momentum schedule is a
function of the samples (or epochs) seen, so 2 epochs + resume 1 gives the same
weights on CPU as 3 epochs straight, also after ``kill -9``. The state is written
after every epoch, atomically. Under torchrun each rank trains its shard of every
epoch (DistributedDataParallel) and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pointnet1x1._atomic import atomic_write_json, atomic_write_text
from pointnet1x1.engine import distributed as D
from pointnet1x1.engine.checkpoint import (
    build_metadata,
    save_model_checkpoint,
    save_training_state,
)
from pointnet1x1.engine.config import ConfigLike, TrainConfig, as_config, points_at
from pointnet1x1.engine.data import resolve_root
from pointnet1x1.engine.progress import Progress
from pointnet1x1.engine.resume import check_options, claim_run_folder, resume_config
from pointnet1x1.engine.tasks import get_task


def schedule(
    cfg: TrainConfig, seen: int, epoch: int, total: int | None = None
) -> tuple[float, float]:
    """(lr, BN momentum) after ``seen`` samples in ``epoch``.

    ``lr_schedule="step"`` is the authors' staircase (every ``decay_step`` samples
    or ``decay_epochs`` epochs, lr and momentum times their decay, with floors);
    ``"cosine"`` takes lr from ``lr`` to ``min_lr`` along a half cosine over the
    ``total`` samples of the run, BN momentum fixed at ``bn_momentum``.
    """
    assert cfg.lr is not None and cfg.lr_decay is not None, "call cfg.resolved() first"
    assert cfg.bn_momentum is not None and cfg.bn_momentum_decay is not None
    if cfg.lr_schedule == "cosine":
        assert total, "a cosine schedule needs the run's total samples"
        t = min(seen / total, 1.0)
        lr = cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))
        return lr, cfg.bn_momentum
    if cfg.decay_epochs:
        k = (epoch - 1) // cfg.decay_epochs
    else:
        assert cfg.decay_step is not None
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


def train(config: ConfigLike = None, **overrides: Any) -> dict[str, Any]:
    """Train a model (classifier or part segmenter) and write a run folder.

    Args:
        config: A :class:`TrainConfig`, a mapping of its fields, a TOML/YAML file,
            or ``None`` (defaults: the embedded dataset, the fast recipe).
        **overrides: Field values that win over ``config``.

    Returns:
        The report (also in ``<out>/report.json``): ``test`` (the validation-best
        model's figures), ``test_best``, ``test_last``, ``best_epoch``, ``timings``,
        ``config``, ``versions``, ``run_dir``, ``checkpoints`` and the task's fields.
    """
    cfg = as_config(config, overrides)
    cfg.validate()
    if cfg.data is not None:
        resolve_root(cfg.data)  # a missing root is said before anything else
    state = None
    if cfg.resume:
        cfg, state = resume_config(cfg)
    cfg = cfg.resolved()
    check_options(cfg)
    info = D.from_env()
    from pointnet1x1.engine.predictor import resolve_device

    device = resolve_device(cfg.device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if cfg.sync_bn and info.enabled and device.type != "cuda":
        raise ValueError(
            "--sync-bn needs CUDA (SyncBatchNorm does not run on CPU); drop it"
        )
    # the run owns its folder from here on (rank 0; a second run fails at once)
    with claim_run_folder(
        cfg.out if info.is_main else None, resuming=state is not None, force=cfg.force
    ):
        return _train(cfg, info, device, state)


def _train(
    cfg: TrainConfig,
    info: D.DistInfo,
    device: torch.device,
    state: dict[str, Any] | None,
) -> dict[str, Any]:
    D.setup(info, device)
    if device.type == "cpu":
        keep_freed_memory()
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return Trainer(cfg, info=info, device=device).fit(state)
    finally:
        torch.set_num_threads(threads)
        D.teardown(info)


def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks instead of unmapping them (Linux, CPU training).

    A training step allocates and frees the same large activations every step;
    glibc's defaults give each one back to the kernel (``mmap``/``munmap``) and
    take it again, page fault by page fault: about 25,000 faults and 0.1 s of
    system time per step of the paper PointNet (measured with ``perf stat``).
    Raising the mmap and trim thresholds keeps them in the heap. Returns whether
    it applied (False off glibc).
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = mallopt(m_mmap_threshold, 1 << 30) == 1
    return bool(mallopt(m_trim_threshold, 1 << 31) == 1 and ok)


class Trainer:
    """One training run of any task: data, model, optimiser, run folder.

    :meth:`train_step` is one optimisation step, :meth:`train_epoch` one epoch,
    :meth:`fit` the whole run (resume, per-epoch state, the final test).

    Args:
        cfg: A resolved :class:`TrainConfig` (``cfg.resolved()``).
        info: This process's place under torchrun (default: one process).
        device: Where data and model live (default: from ``cfg.device``).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        info: D.DistInfo | None = None,
        device: torch.device | None = None,
    ) -> None:
        from pointnet1x1.engine.predictor import resolve_device
        from pointnet1x1.models import create_model

        assert cfg.model and cfg.epochs and cfg.batch_size and cfg.lr and cfg.task
        self.timings = {"start": time.perf_counter()}
        self.info = info = info or D.DistInfo()
        self.device = device = device or resolve_device(cfg.device)
        self.progress = Progress(cfg.progress, info.is_main)
        self.out = Path(str(D.broadcast_object(cfg.out or _default_out(cfg), info)))
        self.cfg = cfg = dataclasses.replace(cfg, out=str(self.out))
        self.task = get_task(str(cfg.task))(cfg, info, device)
        from pointnet1x1.models.fast import training_precision

        # the fused PointNet step runs in bf16 where the hardware has it
        self.task.precision, self.precision_reason = training_precision(
            cfg.precision, device
        )
        self.task.load_data(progress=info.is_main and self.progress.mode != "none")
        self.timings["data_s"] = time.perf_counter() - self.timings["start"]
        kwargs = self.task.model_kwargs()
        if cfg.dropout is not None:
            kwargs["dropout"] = cfg.dropout
        self.model_kwargs = {**kwargs, **(cfg.model_kwargs or {})}
        torch.manual_seed(cfg.seed)
        self.model = create_model(str(cfg.model), **self.model_kwargs).to(device)
        params, wd, lr = (
            self.model.parameters(),
            float(cfg.weight_decay or 0),
            float(cfg.lr or 0),
        )
        if cfg.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=lr, weight_decay=wd
            )
        else:
            self.optimizer = torch.optim.SGD(
                params, lr=lr, momentum=0.9, weight_decay=wd
            )
        self.net: nn.Module = self.model
        if info.enabled:
            if cfg.sync_bn:
                self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
            ids = [device.index] if device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.start_epoch, self.history = 0, []  # type: ignore[var-annotated]
        self.best: dict[str, Any] = {"epoch": 0, "score": None}

    # -- one step, one epoch -----------------------------------------------------
    def train_step(self, idx: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """One optimisation step on the training shapes ``idx`` (a long tensor on the
        device): the task's batch (sampled and augmented on the resident pool with
        ``gen``), forward, loss, backward, optimizer step.

        Returns:
            The detached loss and the task's per-step counts (see ``Task.forward_loss``).
        """
        batch = self.task.train_batch(idx, gen)
        loss, counts = self.task.forward_loss(self.net, self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), counts

    def train_epoch(self, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Train one epoch, then evaluate the validation split.

        Returns:
            The epoch's record (for ``metrics.jsonl``) and the validation figures.
        """
        from torch.utils.data.distributed import DistributedSampler

        cfg, info, device = self.cfg, self.info, self.device
        t0 = time.perf_counter()
        sampler: DistributedSampler[int] = DistributedSampler(
            range(self.task.num_train), num_replicas=info.world_size,  # type: ignore[arg-type]
            rank=info.rank, shuffle=True, seed=cfg.seed, drop_last=info.enabled,
        )  # fmt: skip
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.long, device=device)
        bs = min(int(cfg.batch_size or 0), len(order))
        steps = len(order) // bs  # the authors drop the last incomplete batch
        total = int(cfg.epochs or 0) * steps * bs * info.world_size
        self.task.train_points = points_at(cfg, epoch)
        gen = torch.Generator(device=device).manual_seed(
            _seed(cfg, epoch, info.rank, 1)
        )
        torch.manual_seed(_seed(cfg, epoch, info.rank, 2))  # dropout
        self.net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        counts: Tensor | None = None
        bar = self.progress.epoch_bar(
            epoch, int(cfg.epochs or 0), steps, bs * info.world_size
        )
        lr = momentum = 0.0
        for step in range(steps):
            seen = ((epoch - 1) * steps + step) * bs * info.world_size
            lr, momentum = schedule(cfg, seen, epoch, total)
            _set_schedule(self.optimizer, self.net, lr, momentum)
            loss, step_counts = self.train_step(order[step * bs : (step + 1) * bs], gen)
            loss_sum += loss.double() * bs
            counts = step_counts.double() if counts is None else counts + step_counts
            bar.step(loss, lr)
        bar.close()
        D.broadcast_buffers(self.model, info)  # one set of BN statistics on every rank
        assert counts is not None
        totals = D.all_reduce_sum(
            torch.cat([counts.to(device), loss_sum.view(1)]), info
        ).cpu()
        val = self.task.evaluate(self.model, "val")
        dt = time.perf_counter() - t0
        self.timings["train_s"] = self.timings.get("train_s", 0.0) + dt
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": float(totals[-1]) / (steps * bs * info.world_size),
        }
        record.update(
            {f"train_{k}": v for k, v in self.task.train_metrics(totals[:-1]).items()}
        )
        record.update({f"val_{k}": v for k, v in self.task.scalars(val).items()})
        record.update(lr=lr, bn_momentum=momentum, time_s=dt)
        record["train_points"] = self.task.train_points
        return record, val

    # -- state -------------------------------------------------------------------
    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch = int(state["epoch"])
        self.history, self.best = list(state["history"]), dict(state["best"])

    def _save(self, epoch: int, improved: bool) -> None:
        """Checkpoints, training state and metrics after an epoch (rank 0, atomic)."""
        if not self.info.is_main:
            return
        ckpt, task = self.out / "checkpoints", self.task
        kw: dict[str, Any] = {
            "model_name": self.cfg.model, "model_kwargs": self.model_kwargs,
            "class_names": task.class_names(), "preprocessing": task.preprocessing(),
            "metrics": {k: v for k, v in self.history[-1].items() if k.startswith("val_")} | {"epoch": epoch},
            "extra": {"task": task.name, **task.checkpoint_extra(), "config": self.cfg.to_dict()},
        }  # fmt: skip
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

    # -- the run -----------------------------------------------------------------
    def fit(self, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train from the start (or from ``state``), then test and write the report."""
        from pointnet1x1.engine.report import finish_run

        cfg, info = self.cfg, self.info
        if state is not None:
            self._restore(state)
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.out / "config.json", cfg.to_dict())
            size = sum(p.numel() for p in self.model.parameters())
            self.progress.log(
                f"training {cfg.model} ({size:,} parameters) on {self.task.describe()}, "
                f"{_points_text(cfg)}, {cfg.epochs} epochs, device {self.device}, "
                f"{self.task.precision} ({self.precision_reason})"
                + (f", {info.world_size} processes" if info.enabled else "")
                + (
                    f", resuming after epoch {self.start_epoch}"
                    if self.start_epoch
                    else ""
                )
            )
        self.timings.setdefault("train_s", 0.0)
        try:
            for epoch in range(self.start_epoch + 1, int(cfg.epochs or 0) + 1):
                record, val = self.train_epoch(epoch)
                self.history.append(record)
                score = list(self.task.score(val))
                # one rule for every task: ties go to the later epoch
                improved = self.best["score"] is None or score >= self.best["score"]
                if improved:
                    self.best = {"epoch": epoch, "score": score}
                self._save(epoch, improved)
                self._log_epoch(record, improved)
        except KeyboardInterrupt:
            if info.is_main:
                print(
                    "interrupted; the last finished epoch is saved: continue with "
                    f"`pointnet1x1 train --out {self.out} --resume`",
                    file=sys.stderr,
                )
            raise
        D.barrier(info)
        return finish_run(self)

    def _log_epoch(self, record: dict[str, Any], improved: bool) -> None:
        shown = "  ".join(
            f"{label} {100 * record[key]:5.1f}%" for key, label in self.task.curves
        )
        self.progress.log(
            f"epoch {record['epoch']:>3d}/{self.cfg.epochs}  loss {record['train_loss']:.4f}  "
            f"{shown}  lr {record['lr']:.2e}  {record['time_s']:.1f}s"
            + ("  *best" if improved else "")
        )


def _points_text(cfg: TrainConfig) -> str:
    if not cfg.train_points:
        return f"{cfg.num_points} points"
    plan = ", ".join(f"{n} from epoch {e}" for e, n in cfg.train_points)
    return f"{cfg.num_points} points (training: {plan})"


def _default_out(cfg: TrainConfig) -> str:
    name = Path(cfg.data).name if cfg.data else "default"
    return str(Path("runs") / f"{cfg.model}-{name}-{time.strftime('%Y%m%d-%H%M%S')}")
