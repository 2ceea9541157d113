"""Classify point-cloud files with a trained checkpoint (or its ONNX export).

``pointnet1x1 classify [CKPT] PATH...``: when the first argument is not a model
file (``.safetensors``, ``.onnx``, a training state ``.pt``/``.pth``, or a run
folder holding ``checkpoints/best.safetensors``), every argument is a PATH and the
pretrained model installed with the package is used (``--pretrained NAME``, default
``pointnet-modelnet40``: the paper's PointNet trained on the whole ModelNet40;
``pointnet1x1 models`` lists the installed ones with their figures).

Every PATH is a file or a folder (its supported files, recursively). Files are
read --batch-size at a time, preprocessed exactly as the checkpoint says, and
classified; each batch's lines (label, probability, top-k) are printed as soon as
it is done, in the order of the files, so memory holds one batch and results
stream. --json prints one JSON list, written item by item. On a terminal a
progress bar (files/s, ETA) runs on stderr; otherwise a progress line goes to
stderr every 30 s. With --min-probability P a file whose most probable class has
a probability below P is labelled ``unknown`` (JSON: ``"label": null``, the
probabilities kept). A file that cannot be read gets a one-line error on stderr,
the others are still classified, and the exit code is 1.

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
    a("paths", nargs="+", metavar="[CKPT] PATH",
      help="optional model checkpoint (.safetensors), training state, run folder or "
      ".onnx export (default: the installed pretrained model), then point-cloud / "
      "mesh files or folders")  # fmt: skip
    a("--pretrained", metavar="NAME", default=None,
      help="the installed pretrained model to use when no CKPT is given "
      "(default: pointnet-modelnet40; see `pointnet1x1 models`)")  # fmt: skip
    a(
        "--top-k",
        type=int,
        default=3,
        help="how many classes to show per file (default: 3)",
    )
    a("--json", action="store_true", help="print JSON: a list with one object per file")
    a("--min-probability", type=float, default=0.0, metavar="P",
      help="label a file 'unknown' (JSON: null) when its top probability is below P "
      "(default: 0, off)")  # fmt: skip
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


def _problem_line(where: str, message: str) -> str:
    """``pointnet1x1 classify: error: <file>: <problem>``, one line, the file
    named once (messages of InputFileError name it already)."""
    from pointnet1x1.cli import error_line
    from pointnet1x1.io.errors import display_path

    shown = display_path(where)
    text = message if message.startswith((shown, where)) else f"{shown}: {message}"
    return error_line("classify", text)


def _axes(predictor: Any) -> dict[str, str]:
    return {
        "input_up_axis": predictor.input_up_axis,
        "model_up_axis": predictor.preprocessing.up_axis,
    }


def _segment(args: argparse.Namespace, segmenter: Any) -> int:
    from pointnet1x1.cli import UsageError

    if args.category is None:
        names = ", ".join(segmenter.category_names)
        raise UsageError(
            f"{args.checkpoint} is a part segmenter: pass --category (one of: {names})"
        )
    from pointnet1x1.cli._stream import _JsonList

    listing = _JsonList() if args.json else None
    failed = False
    for path, r, problem in segmenter.iter_segment_files(
        args.paths, args.category, args.parts_dir, file_format=args.parts_format
    ):  # streamed: each file's line as soon as its labels are written
        if r is None:
            failed = True
            print(_problem_line(path, str(problem)), file=sys.stderr, flush=True)
            text = (
                ""
                if listing is None
                else listing.item({"path": path, "error": problem})
            )
        elif listing is not None:
            text = listing.item({**r, **_axes(segmenter)})
        else:
            parts = ", ".join(f"{k} {v}" for k, v in r["parts"].items())
            text = (
                f"{r['path']}  {r['num_points']} points -> {r['labels']}  ({parts})\n"
            )
        sys.stdout.write(text)
        sys.stdout.flush()
    if listing is not None:
        sys.stdout.write(listing.end())
    return 1 if failed else 0


_MODEL_SUFFIXES = (".safetensors", ".onnx", ".pt", ".pth")


def is_model_path(text: str) -> bool:
    """Whether a command-line argument names a model rather than point-cloud files:
    a model file by its suffix, or a run folder (``checkpoints/best.safetensors``)."""
    from pathlib import Path

    path = Path(text)
    if path.suffix.lower() in _MODEL_SUFFIXES:
        return True
    return path.is_dir() and (path / "checkpoints" / "best.safetensors").is_file()


def split_model_argument(args: argparse.Namespace) -> None:
    """Set ``args.checkpoint`` (the first argument or the pretrained model's file)
    and ``args.paths`` (the files and folders to classify)."""
    from pointnet1x1.cli import UsageError

    first, *rest = args.paths
    if is_model_path(first):
        if args.pretrained:
            raise UsageError(f"give a checkpoint ({first}) or --pretrained, not both")
        if not rest:
            raise UsageError(f"no files to classify after the checkpoint {first}")
        args.checkpoint, args.paths = first, rest
        return
    from pointnet1x1.weights import DEFAULT_PRETRAINED, pretrained_path

    args.checkpoint = str(pretrained_path(args.pretrained or DEFAULT_PRETRAINED))


def run(args: argparse.Namespace) -> int:
    from pointnet1x1.engine.config import check_device

    split_model_argument(args)
    check_device(args.device)
    for name in ("top_k", "batch_size"):
        if getattr(args, name) <= 0:
            flag = name.replace("_", "-")
            raise ValueError(f"--{flag} must be positive, got {getattr(args, name)}")
    if not 0.0 <= args.min_probability <= 1.0:
        raise ValueError(
            f"--min-probability must be in [0, 1], got {args.min_probability}"
        )

    from pointnet1x1.engine.predict import load_predictor
    from pointnet1x1.io.axes import FILE_UP_AXIS

    predictor = load_predictor(
        args.checkpoint, device=args.device, precision=args.precision,
        input_up_axis=args.up_axis or FILE_UP_AXIS,
    )  # fmt: skip
    if predictor.task == "partseg":
        return _segment(args, predictor)
    from pointnet1x1.cli._stream import classify_stream

    return classify_stream(args, predictor, _axes(predictor))
