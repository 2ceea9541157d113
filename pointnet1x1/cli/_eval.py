"""Evaluate a checkpoint: whole-set overall and mean class accuracy on the test split.

Uses the data the checkpoint was trained on (recorded in it) unless --data is given,
with the checkpoint's own preprocessing. A model trained on a <class>/<file> tree
(no split on disk) is scored on the test files of its split manifest (stored in
the checkpoint; files added to the folder since are counted, not scored). --votes N
averages over N rotations about the up axis. Prints a per-class table; --json FILE writes the figures as JSON.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "checkpoint",
        metavar="CKPT",
        help="model checkpoint (.safetensors), training state, or run folder",
    )
    a(
        "--data",
        metavar="ROOT",
        default=None,
        help="dataset root (default: the one recorded in CKPT)",
    )
    a(
        "--split",
        default="test",
        choices=["test", "train", "val"],
        help="which split (default: test; val: part segmentation's official list)",
    )
    a(
        "--votes",
        type=int,
        default=1,
        help="votes over rotations about the up axis (default: 1)",
    )
    a("--batch-size", type=int, default=64)
    a("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    a("--precision", choices=["fp32", "bf16"], default="fp32")
    a(
        "--json",
        metavar="FILE",
        default=None,
        help="also write the results as JSON ('-' for stdout)",
    )
    a(
        "--render-errors",
        metavar="DIR",
        default=None,
        help="draw the misclassified clouds into DIR",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from pointnet1x1.engine.config import check_device

    check_device(args.device)
    for name in ("votes", "batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(
                f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}"
            )

    from pointnet1x1._atomic import atomic_write_text
    from pointnet1x1.engine.evaluate import evaluate_checkpoint
    from pointnet1x1.engine.metrics import ClassificationMetrics, format_table

    result = evaluate_checkpoint(
        args.checkpoint, data=args.data, split=args.split, votes=args.votes,
        batch_size=args.batch_size, device=args.device, precision=args.precision,
        render_errors=args.render_errors,
    )  # fmt: skip
    text = json.dumps(result, indent=2) + "\n"
    if args.json == "-":
        print(text, end="")
        return 0
    if result["task"] == "partseg":
        print(
            f"{args.checkpoint} on {result['data']} ({args.split}, {result['shapes']} shapes)"
        )
        for name, miou in result["per_category"].items():
            print(f"{name:<12s}  {100 * miou:6.2f}%")
        print(f"{'instance mIoU':<12s}  {100 * result['instance_miou']:6.2f}%")
        print(f"{'class mIoU':<12s}  {100 * result['class_miou']:6.2f}%")
    else:
        names = result["class_names"]
        metrics = ClassificationMetrics(
            result["oa"], result["macc"], [result["per_class"][n] for n in names],
            result["confusion"],
        )  # fmt: skip
        print(
            f"{args.checkpoint} on {result['data']} ({args.split}, "
            f"{result['num_samples']} clouds, {args.votes} vote(s))"
        )
        print(f"split: {result['split_source']}")
        print(format_table(metrics, names))
    if args.json:
        atomic_write_text(args.json, text)
        print(f"wrote {args.json}")
    if args.render_errors and "rendered_errors" in result:
        print(
            f"drew {len(result['rendered_errors'])} misclassified clouds into {args.render_errors}"
        )
    return 0
