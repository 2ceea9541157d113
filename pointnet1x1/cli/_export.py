"""Export a checkpoint's classifier to ONNX or TorchScript.

The exported model takes points (B, 3+F, N) float32, channels-first, with a
dynamic batch size and point count, and returns the logits (B, K). The class
names and the preprocessing travel inside the file (ONNX metadata_props, or
the TorchScript extra file pointnet1x1.json). After writing, the command runs
the file (onnxruntime / torch.jit.load) against eager PyTorch on two point
counts and fails, removing the file, if the logits differ by more than the
tolerance.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a pointnet1x1 checkpoint or run folder")
    parser.add_argument(
        "--format",
        choices=["onnx", "torchscript"],
        default=None,
        help="default: from the --out suffix (.onnx -> onnx, else torchscript)",
    )
    parser.add_argument("--out", required=True, help="output file (.onnx or .pt)")
    parser.add_argument(
        "--opset", type=int, default=18, help="ONNX opset version (default: 18)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest accepted |logit difference| vs eager (default: 1e-4)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pointnet1x1.export import export_checkpoint

    fmt = args.format
    if fmt is None:
        fmt = "onnx" if Path(args.out).suffix.lower() == ".onnx" else "torchscript"
    result = export_checkpoint(
        args.checkpoint,
        args.out,
        format=fmt,
        opset=args.opset,
        tolerance=args.tolerance,
    )
    checks = ", ".join(f"B={b} N={n}: {d:.1e}" for b, n, d in result.checks)
    print(f"wrote {args.out} ({fmt}); parity vs eager max |diff| {checks}")
    return 0
