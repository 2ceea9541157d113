"""Classify point-cloud files with a trained checkpoint (or its ONNX export).

Every PATH is a file or a folder (its supported files, recursively). Each file is
read, preprocessed exactly as the checkpoint says, and classified in batches; one
line per file shows the label, its probability and the top-k. A file that cannot be
read gets a one-line error on stderr, the others are still classified, and the exit
code is 1.

Files are taken to be z up (Princeton ModelNet OFF meshes, the ModelNet40 npy
tree, most scans) and are converted to the up axis the model was trained in;
give --up-axis y for y-up files (modelnet40_normal_resampled, the hdf5 exports).

With a part-segmentation checkpoint (``train --task partseg``) every file gets
per-point part labels instead: ``--category`` names the object category, the
labels are written to ``--parts-dir`` (PLY with a ``label`` property, or NPY) and a
summary (parts and point counts per file) is printed and saved as
``summary.json`` beside them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# pointnet1x1.io.axes.FILE_UP_AXIS, spelled out so that --help imports nothing
# heavy (tests/cli check that the two agree)
UP_AXIS_HELP = (
    "up axis of the files (default: z, as ModelNet's OFF meshes, the ModelNet40 npy "
    "tree and most scans; y for modelnet40_normal_resampled and the hdf5 files); "
    "they are converted to the model's up axis"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("checkpoint", metavar="CKPT",
      help="model checkpoint (.safetensors), training state, run folder, or .onnx export")  # fmt: skip
    a("paths", nargs="+", metavar="PATH", help="point-cloud / mesh files or folders")
    a(
        "--top-k",
        type=int,
        default=3,
        help="how many classes to show per file (default: 3)",
    )
    a("--json", action="store_true", help="print JSON: a list with one object per file")
    a("--batch-size", type=int, default=32)
    a("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    a("--precision", choices=["fp32", "bf16"], default="fp32")
    a("--up-axis", choices=["x", "y", "z"], default=None, help=UP_AXIS_HELP)
    a(
        "--category",
        help="segmentation checkpoints: the object category (e.g. Airplane)",
    )
    a("--parts-dir", default="parts",
      help="segmentation checkpoints: where per-point labels go (default: ./parts)")  # fmt: skip
    a("--parts-format", choices=["ply", "npy"], default="ply",
      help="segmentation checkpoints: PLY with a label property (default) or NPY")  # fmt: skip


def _report_problems(problems: list[tuple[str, str]]) -> None:
    for where, message in problems:
        shown = message if message.startswith(where) else f"{where}: {message}"
        print(f"pointnet1x1 classify: error: {shown}", file=sys.stderr)


def _axes(predictor: Any) -> dict[str, str]:
    return {
        "input_up_axis": predictor.input_up_axis,
        "model_up_axis": predictor.preprocessing.up_axis,
    }


def _segment(args: argparse.Namespace, segmenter: Any) -> int:
    import json

    from pointnet1x1.cli import UsageError

    if args.category is None:
        names = ", ".join(segmenter.category_names)
        raise UsageError(
            f"{args.checkpoint} is a part segmenter: pass --category (one of: {names})"
        )
    results, problems = segmenter.segment_files(
        args.paths, args.category, args.parts_dir, file_format=args.parts_format
    )
    _report_problems(problems)
    if args.json:
        objects = [{**r, **_axes(segmenter)} for r in results]
        objects += [{"path": p, "error": m} for p, m in problems]
        print(json.dumps(objects, indent=2))
    else:
        for r in results:
            parts = ", ".join(f"{k} {v}" for k, v in r["parts"].items())
            print(f"{r['path']}  {r['num_points']} points -> {r['labels']}  ({parts})")
    return 1 if problems else 0


def run(args: argparse.Namespace) -> int:
    import json

    from pointnet1x1.engine.config import check_device

    check_device(args.device)
    for name in ("top_k", "batch_size"):
        if getattr(args, name) <= 0:
            flag = name.replace("_", "-")
            raise ValueError(f"--{flag} must be positive, got {getattr(args, name)}")

    from pointnet1x1.engine.predict import load_predictor
    from pointnet1x1.io.axes import FILE_UP_AXIS

    predictor = load_predictor(
        args.checkpoint, device=args.device, precision=args.precision,
        input_up_axis=args.up_axis or FILE_UP_AXIS,
    )  # fmt: skip
    if predictor.task == "partseg":
        return _segment(args, predictor)
    preds, problems = predictor.classify_files(
        args.paths, top_k=args.top_k, batch_size=args.batch_size
    )
    _report_problems(problems)
    if args.json:
        objects = [{**p.to_dict(), **_axes(predictor)} for p in preds]
        objects += [{"path": path, "error": message} for path, message in problems]
        print(json.dumps(objects, indent=2))
    else:
        width = max((len(p.path or "") for p in preds), default=0)
        for p in preds:
            others = ", ".join(f"{label} {prob:.3f}" for label, prob in p.top_k)
            print(
                f"{p.path:<{width}}  {p.label:<12s} {p.probability:6.3f}   "
                f"top-{len(p.top_k)}: {others}"
            )
    return 1 if problems else 0
