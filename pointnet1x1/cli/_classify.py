"""Classify point-cloud files with a trained checkpoint.

Every PATH is a file or a folder (its supported files, recursively). Each file is
read, preprocessed exactly as the checkpoint says, and classified in batches; one
line per file shows the label, its probability and the top-k. A file that cannot be
read gets a one-line error on stderr, the others are still classified, and the exit
code is 1.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "checkpoint",
        metavar="CKPT",
        help="model checkpoint (.safetensors), training state, or run folder",
    )
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
    a("--up-axis", choices=["y", "z"], default="y",
      help="up axis of the files: y (default, as ModelNet's resampled files) or z "
      "(Princeton OFF meshes, most scans); z files are turned to y up")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import json

    from pointnet1x1.engine.config import check_device

    check_device(args.device)
    for name in ("top_k", "batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(
                f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}"
            )

    from pointnet1x1.engine.predict import Classifier, find_files

    clf = Classifier.from_checkpoint(
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        input_up_axis=args.up_axis,
    )
    files, problems = find_files(args.paths)
    arrays, names = [], []
    for path in files:
        try:
            arrays.append(clf.preprocess(path))
            names.append(str(path))
        except (ValueError, OSError) as err:  # PointCloudFileError is a ValueError
            message = (
                str(err).strip().splitlines()[0]
                if str(err).strip()
                else type(err).__name__
            )
            problems.append((str(path), message))
    for where, message in problems:
        shown = message if message.startswith(where) else f"{where}: {message}"
        print(f"pointnet1x1 classify: error: {shown}", file=sys.stderr)
    probs = clf.predict_proba_preprocessed(arrays, batch_size=args.batch_size)
    preds = clf.to_predictions(probs, names, args.top_k)
    if args.json:
        objects = [p.to_dict() for p in preds]
        objects += [{"path": path, "error": message} for path, message in problems]
        print(json.dumps(objects, indent=2))
    else:
        width = max((len(n) for n in names), default=0)
        for p in preds:
            others = ", ".join(f"{label} {prob:.3f}" for label, prob in p.top_k)
            print(
                f"{p.path:<{width}}  {p.label:<12s} {p.probability:6.3f}   top-{len(p.top_k)}: {others}"
            )
    return 1 if problems else 0
