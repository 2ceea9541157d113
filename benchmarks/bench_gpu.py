"""GPU training and inference throughput: the fast path against the naive port.

    .venv/bin/python benchmarks/bench_gpu.py            # needs CUDA; one command
    .venv/bin/python benchmarks/bench_gpu.py --smoke-cpu  # code-path check, no figures

Training (batch 32, 1,024 points, Adam; clouds/s):
- ``naive loop``: the ports' way: per-sample ``Dataset`` with numpy augmentation,
  ``DataLoader`` (``--naive-workers``), ``.cuda()`` per batch, fp32, their model.
- ``fast eager``: the whole dataset resident on the GPU, batched augmentation on
  the GPU, our ``PointNetClassifier`` under bf16 autocast, fused Adam.
- ``fast eager bf16 forward_train``: the same through
  ``pointnet1x1.models.fast.forward_train`` (fused batch norm / ReLU / max pool).
- ``fast compiled``: the same with ``torch.compile`` (default mode), and
  ``fast compiled + CUDA graphs`` (``mode="reduce-overhead"``).

Inference (eval, clouds/s): the naive port in fp32 at batch 32 (as the ports run
it) and at ``--infer-batch``; our model under bf16 autocast with ``torch.compile``
(``max-autotune-no-cudagraphs``, then ``reduce-overhead`` for CUDA graphs); and
``optimize_for_inference(model, "bf16")`` (folded BN/T-Nets, bias and ReLU after
the pool) on the GPU, eager and compiled.

Every variant is timed with CUDA synchronisation, in rotating order, ``--rounds``
times; the tables give medians and the median per-round speed-up over the naive
port. A variant that fails (e.g. ``torch.compile`` without a working Triton) is
reported as failed and the others still run. Report figures with the card name
this script prints.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import traceback
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from bench_train import augment_batch
from naive_pointnet import (
    COMPLETE_CLASSES,
    NaiveDataset,
    NaivePointNetCls,
    feature_transform_regularizer,
    load_modelnet_subset,
    naive_from,
    ratio_summary,
)

from pointnet1x1.models import PointNetClassifier
from pointnet1x1.models.fast import forward_train, optimize_for_inference


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    """Like ``naive_pointnet.interleaved`` but synchronising the GPU around each call."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            _sync(device)
            t0 = time.perf_counter()
            fns[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def _try(name: str, build: Callable[[], Callable[[], object]], device: torch.device):
    """Build and run a variant once; ``None`` (with the reason printed) if it fails."""
    try:
        fn = build()
        fn()
        _sync(device)
        return fn
    except Exception as err:  # noqa: BLE001 - report any failure and go on
        line = (
            str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        )
        print(f"  {name}: FAILED ({type(err).__name__}: {line[:200]})")
        if "--verbose" in sys.argv:
            traceback.print_exc()
        return None


# --- training ----------------------------------------------------------------------


class NaiveGpuLoop:
    def __init__(self, points: np.ndarray, labels: np.ndarray, args, device) -> None:
        self.device = device
        self.loader = torch.utils.data.DataLoader(
            NaiveDataset(points, labels, args.points),
            batch_size=args.batch,
            shuffle=True,
            drop_last=True,
            num_workers=args.naive_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=args.naive_workers > 0,
        )
        self.it = iter(self.loader)
        self.model = NaivePointNetCls(len(COMPLETE_CLASSES), points.shape[2]).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.001)

    def step(self) -> None:
        try:
            points, target = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            points, target = next(self.it)
        points = points.transpose(2, 1).to(self.device)
        target = target[:, 0].to(self.device)
        self.opt.zero_grad()
        pred, _, trans_feat = self.model(points)
        loss = F.nll_loss(F.log_softmax(pred, dim=1), target)
        loss = loss + feature_transform_regularizer(trans_feat) * 0.001
        loss.backward()
        self.opt.step()


class FastGpuLoop:
    """Resident data, batched augmentation on the device, bf16 autocast, fused Adam."""

    def __init__(
        self,
        points,
        labels,
        args,
        device,
        compile_mode: str | None,
        fused: bool = False,
    ) -> None:
        self.device = device
        self.clouds = torch.from_numpy(points).to(device)  # (S, P, C), resident
        self.labels = torch.from_numpy(labels).to(device)
        self.batch, self.num_points = args.batch, args.points
        self.gen = torch.Generator(device=device).manual_seed(0)
        model = (
            PointNetClassifier(len(COMPLETE_CLASSES), points.shape[2])
            .to(device)
            .train()
        )
        self.model = model
        if fused:  # fused BN + ReLU + max pool (same maths), eager
            self.forward = lambda x, return_aux: forward_train(model, x)
        elif compile_mode is None:
            self.forward = model
        else:
            self.forward = torch.compile(model, mode=compile_mode)
        fused_adam = device.type == "cuda"
        self.opt = torch.optim.Adam(model.parameters(), lr=0.001, fused=fused_adam)
        self.amp = device.type == "cuda" or args.smoke_cpu
        self.order = torch.empty(0, dtype=torch.long, device=device)

    def step(self) -> None:
        if len(self.order) < self.batch:
            self.order = torch.randperm(
                len(self.clouds), generator=self.gen, device=self.device
            )
        idx, self.order = self.order[: self.batch], self.order[self.batch :]
        x = augment_batch(self.clouds[idx], self.num_points, self.gen)
        y = self.labels[idx]
        self.opt.zero_grad(set_to_none=True)
        ctx = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.amp
            else contextlib.nullcontext()
        )
        with ctx:
            logits, aux = self.forward(x, return_aux=True)
            loss = F.cross_entropy(logits.float(), y) + aux.float()
        loss.backward()
        self.opt.step()


def bench_training(points, labels, args, device) -> None:
    print(f"\ntraining, batch {args.batch} x {args.points} points (clouds/s):")
    fns: dict[str, Callable[[], object]] = {}
    naive = NaiveGpuLoop(points, labels, args, device)
    fns["naive loop fp32"] = lambda: [naive.step() for _ in range(args.steps)]
    modes: list[tuple[str, str | None, bool]] = [
        ("fast eager bf16", None, False),
        ("fast eager bf16 forward_train", None, True),
    ]
    if not args.smoke_cpu:
        modes += [
            ("fast compiled bf16", "default", False),
            ("fast compiled + CUDA graphs", "reduce-overhead", False),
        ]
    for name, mode, fused in modes:

        def build(mode=mode, fused=fused):
            loop = FastGpuLoop(points, labels, args, device, mode, fused)
            return lambda: [loop.step() for _ in range(args.steps)]

        fn = _try(name, build, device)
        if fn is not None:
            fns[name] = fn
    times = _interleaved(fns, args.rounds, warmup=2, device=device)
    per_step = {k: [t / args.steps for t in v] for k, v in times.items()}
    print(ratio_summary(per_step, "naive loop fp32", args.batch))


# --- inference ---------------------------------------------------------------------


def bench_inference(args, device) -> None:
    torch.manual_seed(0)
    model = PointNetClassifier(40).eval()
    naive = naive_from(model).to(device).eval()
    model = model.to(device)
    big = args.infer_batch
    x32 = torch.randn(32, 3, args.points, device=device)
    xbig = torch.randn(big, 3, args.points, device=device)
    print(f"\ninference, eval mode, {args.points} points (clouds/s at each batch):")
    with torch.no_grad():
        err = (naive(x32)[0] - model(x32)).abs().max().item()
    print(f"  check naive port == our model (fp32): max |diff| {err:.1e}")

    def no_grad(fn):
        def run(x):
            with torch.no_grad():
                return fn(x)

        return run

    def autocast(fn):
        def run(x):
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
                return fn(x)

        return run

    variants: dict[
        str, tuple[Callable[[], Callable[[torch.Tensor], object]], torch.Tensor]
    ] = {
        "naive port fp32 @32": (lambda: no_grad(naive), x32),
        f"naive port fp32 @{big}": (lambda: no_grad(naive), xbig),
        f"fast bf16 eager @{big}": (
            lambda: no_grad(optimize_for_inference(model, "bf16")),
            xbig,
        ),
        f"ours bf16 autocast @{big}": (lambda: autocast(model), xbig),
    }
    if not args.smoke_cpu:
        variants[f"ours bf16 compiled @{big}"] = (
            lambda: autocast(torch.compile(model, mode="max-autotune-no-cudagraphs")),
            xbig,
        )
        variants[f"ours bf16 compiled+graphs @{big}"] = (
            lambda: autocast(torch.compile(model, mode="reduce-overhead")),
            xbig,
        )
        variants[f"fast bf16 compiled @{big}"] = (
            lambda: no_grad(torch.compile(optimize_for_inference(model, "bf16"))),
            xbig,
        )
    fns: dict[str, Callable[[], object]] = {}
    sizes: dict[str, int] = {}
    for name, (build, x) in variants.items():

        def make(build=build, x=x):
            fn = build()
            return lambda: fn(x)

        fn = _try(name, make, device)
        if fn is not None:
            fns[name] = fn
            sizes[name] = x.shape[0]
    times = _interleaved(fns, args.rounds, warmup=3, device=device)
    # Speed-ups in clouds/s: scale each time to one cloud before comparing.
    per_cloud = {k: [t / sizes[k] for t in v] for k, v in times.items()}
    print(ratio_summary(per_cloud, "naive port fp32 @32", 1))
    print("  (times are per cloud; clouds/s = 1 / time)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--infer-batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--steps", type=int, default=20, help="training steps per round"
    )
    parser.add_argument("--naive-workers", type=int, default=4)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-infer", action="store_true")
    parser.add_argument(
        "--smoke-cpu",
        action="store_true",
        help="run the code paths on CPU with tiny sizes (no compile): no GPU figure",
    )
    parser.add_argument("--verbose", action="store_true", help="tracebacks of failures")
    args = parser.parse_args()
    if args.smoke_cpu:
        device = torch.device("cpu")
        args.points, args.infer_batch, args.rounds, args.steps = 128, 64, 2, 1
        args.naive_workers = 0
        print("SMOKE RUN ON CPU: checks the code paths; these are not GPU figures")
    else:
        if not torch.cuda.is_available():
            print(
                "bench_gpu.py needs a CUDA GPU: torch "
                f"{torch.__version__} sees none (CPU build or no driver). Run it on a "
                "GPU machine with a CUDA build of torch, or use bench_inference.py / "
                "bench_train.py on CPU.",
                file=sys.stderr,
            )
            return 2
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = (
            False  # fp32 means fp32 for the naive port
        )
        torch.backends.cudnn.benchmark = True
        props = torch.cuda.get_device_properties(device)
        print(
            f"device: {props.name}, {props.total_memory / 2**30:.0f} GiB, torch "
            f"{torch.__version__}, CUDA {torch.version.cuda}"
        )
    try:
        points, labels = load_modelnet_subset("train", COMPLETE_CLASSES, None)
        points = np.ascontiguousarray(points[:, :, :3])
        print(
            f"data: {len(points)} real training shapes ({points.shape[1]} points each)"
        )
    except FileNotFoundError as err:
        print(f"real data missing ({err}); using random clouds")
        gen = np.random.default_rng(0)
        points = gen.standard_normal((993, 2048, 3)).astype(np.float32)
        labels = gen.integers(0, len(COMPLETE_CLASSES), 993)
    if not args.skip_train:
        bench_training(points, labels, args, device)
    if not args.skip_infer:
        bench_inference(args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
