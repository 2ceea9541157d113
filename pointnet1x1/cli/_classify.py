"""Classify point-cloud files with a trained checkpoint.

Every PATH is a file or a folder (its supported files, recursively). Each file is
read, preprocessed exactly as the checkpoint says, and classified in batches; one
line per file shows the label, its probability and the top-k. A file that cannot be
read gets a one-line error on stderr, the others are still classified, and the exit
code is 1.

With a part-segmentation checkpoint (``train --task partseg``) every file gets
per-point part labels instead: ``--category`` names the object category, the
labels are written to ``--parts-dir`` (PLY with a ``label`` property, or NPY) and a
summary (parts and point counts per file) is printed and saved as
``summary.json`` beside them.
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
    a(
        "--category",
        help="segmentation checkpoints: the object category (e.g. Airplane)",
    )
    a("--parts-dir", default="parts",
      help="segmentation checkpoints: where per-point labels go (default: ./parts)")  # fmt: skip
    a("--parts-format", choices=["ply", "npy"], default="ply",
      help="segmentation checkpoints: PLY with a label property (default) or NPY")  # fmt: skip


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _report_problems(problems: list[tuple[str, str]]) -> None:
    for where, message in problems:
        shown = message if message.startswith(where) else f"{where}: {message}"
        print(f"pointnet1x1 classify: error: {shown}", file=sys.stderr)


def _segment(args: argparse.Namespace) -> int:
    """Per-point part labels for every file, written to ``--parts-dir``."""
    import json
    from pathlib import Path

    import numpy as np

    from pointnet1x1._atomic import atomic_write_json
    from pointnet1x1.cli import UsageError
    from pointnet1x1.engine.checkpoint import load_model_checkpoint
    from pointnet1x1.engine.partseg import predict_parts, write_part_labels
    from pointnet1x1.engine.predict import find_files
    from pointnet1x1.io import read_points

    loaded = load_model_checkpoint(args.checkpoint)
    extra = loaded.metadata.get("extra", {})
    if args.category is None:
        names = ", ".join(extra.get("category_names", []))
        raise UsageError(
            f"{args.checkpoint} is a part segmenter: pass --category (one of: {names})"
        )
    part_names = extra.get("part_names") or loaded.metadata["class_names"]
    out_dir = Path(args.parts_dir)
    files, problems = find_files(args.paths)
    results: list[dict[str, object]] = []
    used: set[str] = set()
    for path in files:
        try:
            cloud = read_points(path)
            pts = cloud.points
            if cloud.normals is not None:
                pts = np.concatenate([pts, cloud.normals], axis=1)
            model_input = pts.copy()
            if args.up_axis == "z":  # (x, y, z) -> (x, z, y), as the datasets do
                model_input[:, [1, 2]] = model_input[:, [2, 1]]
                if model_input.shape[1] >= 6:
                    model_input[:, [4, 5]] = model_input[:, [5, 4]]
            labels = predict_parts(loaded.model, model_input, args.category)
        except (ValueError, OSError) as err:
            problems.append((str(path), _one_line(err)))
            continue
        stem = path.stem
        while f"{stem}.parts.{args.parts_format}" in used:  # same name, other folder
            stem += "_"
        used.add(f"{stem}.parts.{args.parts_format}")
        target = write_part_labels(
            out_dir / f"{stem}.parts.{args.parts_format}", pts, labels
        )
        found, counts = np.unique(labels, return_counts=True)
        results.append(
            {
                "path": str(path),
                "category": args.category,
                "num_points": len(pts),
                "labels": str(target),
                "parts": {
                    part_names[i]: int(n) for i, n in zip(found, counts, strict=True)
                },
            }
        )
    _report_problems(problems)
    if results:
        atomic_write_json(out_dir / "summary.json", results)
    if args.json:
        errors = [{"path": p, "error": m} for p, m in problems]
        print(json.dumps(results + errors, indent=2))
    else:
        for r in results:
            parts = ", ".join(f"{k} {v}" for k, v in r["parts"].items())  # type: ignore[attr-defined]
            print(f"{r['path']}  {r['num_points']} points -> {r['labels']}  ({parts})")
    return 1 if problems else 0


def run(args: argparse.Namespace) -> int:
    import json

    from pointnet1x1.engine.config import check_device

    check_device(args.device)
    for name in ("top_k", "batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(
                f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}"
            )

    from pointnet1x1.engine.checkpoint import read_checkpoint_metadata

    metadata = read_checkpoint_metadata(args.checkpoint)
    if metadata.get("extra", {}).get("task") == "partseg":
        return _segment(args)

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
            problems.append((str(path), _one_line(err)))
    _report_problems(problems)
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
