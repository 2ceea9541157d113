"""CPU training step: a resident-data, batched-augmentation loop against the naive port's.

    .venv/bin/python benchmarks/bench_train.py [--rounds 5] [--accuracy-epochs 0] [--save CKPT]
        [--old-loop] [--malloc tuned|default]

One training step = sample a batch of 32 clouds of 1,024 points, augment, forward,
loss (cross-entropy + 0.001 x feature-transform regulariser), backward, Adam.
Data: the ModelNet40 training shapes of the four complete classes (airplane,
bathtub, bench, person; 993 shapes of 2,048 stored points), xyz.

- ``naive loop``: the ports' way (``naive_pointnet.py``): a per-sample Python
  ``Dataset`` whose ``__getitem__`` samples, normalises, rotates and jitters one
  cloud in numpy, a ``DataLoader`` (default collate, ``num_workers=0`` as
  ``--naive-workers`` says), a transpose, their model and plain Adam.
- ``trainer step fp32``: what ``pointnet1x1 train`` runs, measured through it:
  a :class:`pointnet1x1.engine.trainer.Trainer` on the same four classes of the
  whole-ModelNet40 npy tree (``../shared/data/modelnet40_npy_1024``, the paper
  recipe: rotation about the up axis, jitter, cross-entropy + the regulariser,
  Adam), one ``Trainer.train_step`` per step (batch sampled and augmented on the
  resident pool, the fused forward ``forward_train``, backward, Adam).
  ``trainer step, model(x) forward`` is the same with ``fused_forward=False``;
  ``trainer step bf16`` uses ``precision="bf16"`` (only where the CPU has native
  bf16; elsewhere ``--precision auto`` picks fp32).
- ``fast loop fp32``: the older stand-alone loop: all clouds resident as one tensor; sampling, normalisation,
  rotation about the up axis and clipped jitter done for the whole batch at once
  in torch; our ``PointNetClassifier`` through ``pointnet1x1.models.fast.
  forward_train`` (batch norm + ReLU + max pool of the 1024-wide layers fused:
  same logits, gradients and running statistics); ``Adam(fused=True)``;
  gradients set to None. ``fast loop fp32, model(x) forward`` is the same loop
  with the model's own forward, to show what each part gives.
- ``fast loop bf16 autocast``: the same under ``torch.autocast("cpu", bfloat16)``
  (only where the CPU has native bf16).

``--malloc tuned`` (default) applies the trainer's glibc setting
(:func:`pointnet1x1.engine.trainer.keep_freed_memory`) to the whole process, so
the naive loop gains from it too; ``--malloc default`` measures every loop with
glibc's defaults (the trainer's step then runs without its setting).

Each round runs ``--steps`` steps of every loop in rotating order; the table gives
median time per step and the median per-round speed-up over the naive loop.

``--accuracy-epochs E`` then trains the fast loop in fp32 and in bf16 autocast
from the same initialisation and seed for E epochs and reports both test
accuracies on the 190 test shapes; ``--save CKPT`` writes the fp32 one as a
pointnet1x1 checkpoint (for ``bench_inference.py --checkpoint``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from naive_pointnet import (
    COMPLETE_CLASSES,
    NaiveDataset,
    NaivePointNetCls,
    feature_transform_regularizer,
    interleaved,
    load_modelnet_subset,
    machine_info,
    ratio_summary,
)
from torch import Tensor

from pointnet1x1.models import PointNetClassifier
from pointnet1x1.models.fast import forward_train, has_native_bf16

NPY_TREE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "modelnet40_npy_1024"
)

# --- the naive loop ----------------------------------------------------------------


class NaiveLoop:
    """The ports' training loop, one step per call."""

    def __init__(
        self, points: np.ndarray, labels: np.ndarray, args: argparse.Namespace
    ) -> None:
        self.loader = torch.utils.data.DataLoader(
            NaiveDataset(points, labels, args.points),
            batch_size=args.batch,
            shuffle=True,
            drop_last=True,
            num_workers=args.naive_workers,
        )
        self.it: Iterator = iter(self.loader)
        self.model = NaivePointNetCls(len(COMPLETE_CLASSES), points.shape[2]).train()
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=0.001, betas=(0.9, 0.999)
        )

    def step(self) -> float:
        try:
            points, target = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            points, target = next(self.it)
        target = target[:, 0]
        points = points.transpose(2, 1)
        self.opt.zero_grad()
        pred, _, trans_feat = self.model(points)
        loss = F.nll_loss(F.log_softmax(pred, dim=1), target)
        loss = loss + feature_transform_regularizer(trans_feat) * 0.001
        loss.backward()
        self.opt.step()
        return loss.item()


# --- the fast loop -----------------------------------------------------------------


def augment_batch(clouds: Tensor, num_points: int, gen: torch.Generator) -> Tensor:
    """Sample, normalise, rotate about y and jitter a whole batch; channels-first out.

    Runs on the device of ``clouds`` (CPU here, the GPU in ``bench_gpu.py``).

    Args:
        clouds: Tensor of shape ``(B, P, C)`` giving stored points (xyz first,
            then normals when ``C >= 6``).
        num_points: Points per cloud to sample (with replacement, as the ports).
        gen: Random generator on the same device.

    Returns:
        Tensor of shape ``(B, C, num_points)``.
    """
    b, p, c = clouds.shape
    dev = clouds.device
    idx = torch.randint(p, (b, num_points), generator=gen, device=dev)
    pts = torch.gather(clouds, 1, idx.unsqueeze(2).expand(-1, -1, c))  # (B, N, C)
    xyz = pts[:, :, :3] - pts[:, :, :3].mean(dim=1, keepdim=True)
    xyz = xyz / xyz.norm(dim=2).amax(dim=1).view(b, 1, 1)
    theta = torch.rand(b, generator=gen, device=dev) * (2 * math.pi)
    cos, sin = theta.cos(), theta.sin()
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    rot = torch.stack(  # rotation about the up (y) axis, (B, 3, 3)
        [cos, zero, sin, zero, one, zero, -sin, zero, cos], dim=1
    ).view(b, 3, 3)
    xyz = torch.bmm(xyz, rot)
    noise = torch.randn(xyz.shape, generator=gen, device=dev)
    parts = [xyz + noise.mul_(0.01).clamp_(-0.05, 0.05)]
    if c >= 6:
        parts.append(torch.bmm(pts[:, :, 3:6], rot))
    if c > 6:
        parts.append(pts[:, :, 6:])
    out = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
    return out.transpose(1, 2).contiguous()  # (B, C, N)


class FastLoop:
    """Resident data, batched augmentation, our model, fused Adam; one step per call."""

    def __init__(
        self,
        points: np.ndarray,
        labels: np.ndarray,
        args: argparse.Namespace,
        bf16: bool = False,
        seed: int = 0,
        fused: bool = True,
    ) -> None:
        self.clouds = torch.from_numpy(points)  # (S, P, C), resident
        self.labels = torch.from_numpy(labels)
        self.batch, self.num_points, self.bf16 = args.batch, args.points, bf16
        self.fused = fused
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.model = PointNetClassifier(len(COMPLETE_CLASSES), points.shape[2]).train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.001, fused=True)
        self.order = torch.empty(0, dtype=torch.long)

    def _next_indices(self) -> Tensor:
        if len(self.order) < self.batch:  # new epoch, last partial batch dropped
            self.order = torch.randperm(len(self.clouds), generator=self.gen)
        idx, self.order = self.order[: self.batch], self.order[self.batch :]
        return idx

    def step(self) -> float:
        idx = self._next_indices()
        x = augment_batch(self.clouds[idx], self.num_points, self.gen)
        y = self.labels[idx]
        self.opt.zero_grad(set_to_none=True)
        ctx = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if self.bf16
            else contextlib.nullcontext()
        )
        with ctx:
            if self.fused:  # fused BN + ReLU + max pool, same numbers
                logits, aux = forward_train(self.model, x)
            else:
                logits, aux = self.model(x, return_aux=True)
            loss = F.cross_entropy(logits.float(), y) + aux.float()
        loss.backward()
        self.opt.step()
        return loss.item()

    def epochs(self, count: int) -> None:
        steps = len(self.clouds) // self.batch
        for _ in range(count * steps):
            self.step()

    @torch.no_grad()
    def accuracy(self, points: np.ndarray, labels: np.ndarray) -> float:
        self.model.eval()
        x = torch.from_numpy(points).transpose(1, 2).contiguous()
        pred = torch.cat([self.model(xb).argmax(1) for xb in x.split(64)])
        self.model.train()
        return (pred == torch.from_numpy(labels)).float().mean().item()


class TrainerLoop:
    """One ``Trainer.train_step`` per call: the step ``pointnet1x1 train`` runs."""

    def __init__(self, args: argparse.Namespace, **overrides: object) -> None:
        import tempfile

        from pointnet1x1.engine.config import TrainConfig
        from pointnet1x1.engine.trainer import Trainer, keep_freed_memory

        if args.malloc == "tuned":
            keep_freed_memory()  # as train() does on CPU, for the whole process
        cfg = TrainConfig(
            data=str(NPY_TREE), classes=list(COMPLETE_CLASSES), recipe="paper",
            batch_size=args.batch, num_points=args.points, progress="none",
            out=tempfile.mkdtemp(prefix="bench_train_"), **overrides,  # type: ignore[arg-type]
        ).resolved()  # fmt: skip
        self.trainer = Trainer(cfg)
        self.trainer.net.train()
        self.gen = torch.Generator().manual_seed(0)
        self.order = torch.empty(0, dtype=torch.long)
        self.batch = args.batch

    def step(self) -> float:
        if len(self.order) < self.batch:
            self.order = torch.randperm(self.trainer.task.num_train, generator=self.gen)
        idx, self.order = self.order[: self.batch], self.order[self.batch :]
        loss, _ = self.trainer.train_step(idx, self.gen)
        return float(loss)


def save_checkpoint(
    loop: FastLoop, path: str, channels: int, num_points: int, acc: float
) -> None:
    from pointnet1x1.engine.checkpoint import make_preprocessing, save_model_checkpoint

    save_model_checkpoint(
        path,
        loop.model,
        model_name="pointnet",
        model_kwargs={"num_classes": len(COMPLETE_CLASSES), "in_channels": channels},
        class_names=list(COMPLETE_CLASSES),
        preprocessing=make_preprocessing(num_points, use_normals=channels >= 6),
        metrics={"test_oa": acc},
        extra={"trained_by": "benchmarks/bench_train.py (fast loop, fp32)"},
    )
    print(f"saved {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument(
        "--normals", action="store_true", help="6 channels instead of xyz"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="steps per loop per round")
    parser.add_argument("--naive-workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--accuracy-epochs", type=int, default=0)
    parser.add_argument(
        "--save", help="write the fp32-trained model here (.safetensors)"
    )
    parser.add_argument("--seed", type=int, default=1, help="of the accuracy runs")
    parser.add_argument(
        "--old-loop", action="store_true", help="also time the stand-alone fast loop"
    )
    parser.add_argument(
        "--malloc",
        choices=["tuned", "default"],
        default="tuned",
        help="tuned: glibc keeps freed memory, as `pointnet1x1 train` sets it (for "
        "every loop of this process, the naive one too); default: glibc's defaults",
    )
    parser.add_argument(
        "--accuracy-plain-bf16",
        action="store_true",
        help="also train bf16 autocast through model(x) (not forward_train)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    channels = 6 if args.normals else 3
    t0 = time.perf_counter()
    train_pts, train_lab = load_modelnet_subset("train", COMPLETE_CLASSES, None)
    train_pts = np.ascontiguousarray(train_pts[:, :, :channels])
    print(f"machine: {machine_info()}")
    print(
        f"data: {len(train_pts)} training shapes of {', '.join(COMPLETE_CLASSES)} "
        f"({train_pts.shape[1]} stored points, {channels} channels), read in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    native = has_native_bf16()
    loops: dict[str, NaiveLoop | FastLoop | TrainerLoop] = {
        "naive loop fp32": NaiveLoop(train_pts, train_lab, args),
        "trainer step fp32": TrainerLoop(args, precision="fp32"),
        "trainer step, model(x) forward": TrainerLoop(args, fused_forward=False),
    }
    if native:
        loops["trainer step bf16"] = TrainerLoop(args, precision="bf16")
    else:
        print("this CPU has no native bf16: the bf16 trainer step is left out")
    if args.old_loop:
        loops["fast loop fp32 (stand-alone)"] = FastLoop(train_pts, train_lab, args)

    def run(loop: NaiveLoop | FastLoop | TrainerLoop) -> None:
        for _ in range(args.steps):
            loop.step()

    fns = {name: (lambda loop=loop: run(loop)) for name, loop in loops.items()}
    times = interleaved(fns, args.rounds, warmup=1)
    per_step = {k: [t / args.steps for t in v] for k, v in times.items()}
    print(
        f"\ntraining step, batch {args.batch} x {args.points} points, "
        f"{args.rounds} rounds x {args.steps} steps:"
    )
    print(ratio_summary(per_step, "naive loop fp32", args.batch, "clouds/s"))

    if args.accuracy_epochs > 0:
        test_pts, test_lab = load_modelnet_subset("test", COMPLETE_CLASSES, args.points)
        test_pts = np.ascontiguousarray(test_pts[:, :, :channels])
        print(
            f"\naccuracy after {args.accuracy_epochs} epochs "
            f"(same init and seed {args.seed}):"
        )
        kinds = [("fp32", False, True)]
        if native:
            kinds.append(("bf16 autocast", True, True))
            if args.accuracy_plain_bf16:
                kinds.append(("bf16 autocast, model(x) forward", True, False))
        for name, bf16, fused in kinds:
            loop = FastLoop(
                train_pts, train_lab, args, bf16=bf16, seed=args.seed, fused=fused
            )
            t0 = time.perf_counter()
            loop.epochs(args.accuracy_epochs)
            acc = loop.accuracy(test_pts, test_lab)
            print(
                f"  fast loop {name}: test accuracy {acc:.4f} on {len(test_lab)} shapes "
                f"({time.perf_counter() - t0:.0f} s)"
            )
            if args.save and not bf16:
                save_checkpoint(loop, args.save, channels, args.points, acc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
