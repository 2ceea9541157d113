"""Exported PointNet (ONNX / TorchScript) vs eager PyTorch, and ragged vs dense batches.

    .venv/bin/python benchmarks/bench_export.py [--batch 32] [--points 1024] [--repeats 7]

Prints: export time of each format; inference time of one batch for eager
PyTorch (eval, fp32), onnxruntime (CPU provider) and the TorchScript module
(median of interleaved repeats, so machine load hits all alike); and the
PointNet classifier's ragged path (flat points + batch vector, as PyG batches
arrive) against its dense path on the same equal-size batch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from pointnet1x1 import PointNetClassifier
from pointnet1x1.export import export_onnx, export_torchscript


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = PointNetClassifier(num_classes=40).eval()
    x = torch.randn(args.batch, 3, args.points)
    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, threads {torch.get_num_threads()}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, ts_path = Path(tmp) / "m.onnx", Path(tmp) / "m.pt"
        t_onnx = _timed(lambda: export_onnx(model, onnx_path))
        t_ts = _timed(lambda: export_torchscript(model, ts_path))
        print(f"export + parity check: onnx {t_onnx:.2f} s, torchscript {t_ts:.2f} s")
        session = ort.InferenceSession(
            str(onnx_path), providers=["CPUExecutionProvider"]
        )
        scripted = torch.jit.load(str(ts_path))
        flat = x.transpose(1, 2).reshape(-1, 3).contiguous()
        vector = torch.arange(args.batch).repeat_interleave(args.points)
        xn = x.numpy()
        runs: dict[str, Callable[[], object]] = {
            "eager PyTorch (dense)": lambda: model(x),
            "onnxruntime": lambda: session.run(None, {"points": xn}),
            "TorchScript (traced)": lambda: scripted(x),
            "eager PyTorch (ragged, batch vector)": lambda: model(flat, batch=vector),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        with torch.no_grad():
            for fn in runs.values():  # warm-up
                fn()
            for _ in range(args.repeats):
                for name, fn in runs.items():
                    times[name].append(_timed(fn))
        base = statistics.median(times["eager PyTorch (dense)"])
        print(f"B={args.batch} N={args.points}, median of {args.repeats}:")
        for name, ts in times.items():
            med = statistics.median(ts)
            clouds = args.batch / med
            print(
                f"  {name:<38s} {med * 1e3:8.1f} ms  {clouds:7.0f} clouds/s  x{base / med:.2f}"
            )
        with torch.no_grad():
            diff = np.abs(session.run(None, {"points": xn})[0] - model(x).numpy()).max()
        print(f"max |onnxruntime - eager| = {diff:.1e}")


if __name__ == "__main__":
    main()
