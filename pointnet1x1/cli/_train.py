"""Train a classifier or a part segmenter and write a run folder (report, metrics, plots, checkpoints).

With no --data it trains a classifier on the embedded default dataset in about a
minute on a laptop CPU. With --data (a ModelNet40/10 root in any published
layout, or any folder of point-cloud/mesh files per class: see `pointnet1x1 data
info`) the defaults are the PointNet paper's recipe; --task partseg (or a
part-segmentation --model) trains on ShapeNetPart with the yanx27 port's recipe. Values come from the
defaults, then the recipe, then --config FILE (TOML or YAML), then the flags; a flag
the task does not use, or one that cannot change on --resume, is refused. Under
torchrun it trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--task",
        choices=["cls", "partseg"],
        default=None,
        help="cls (classification, default) or partseg (part segmentation); "
        "default: the --model's task",
    )
    a(
        "--data",
        metavar="ROOT",
        default=None,
        help="dataset root: a ModelNet40/10 layout, or folders of files per class "
        "(<class>/{train,test}/<file>, {train,test}/<class>/<file>, <class>/<file>); "
        "default: the embedded default dataset",
    )
    a(
        "--classes",
        nargs="+",
        metavar="NAME",
        default=None,
        help="train on these classes only (partseg: these categories)",
    )
    a(
        "--modelnet10",
        action="store_true",
        default=None,
        help="use the ModelNet10 lists of a ModelNet40 root",
    )
    a("--model", default=None, help="registered model name (paper recipe: pointnet)")
    a("--epochs", type=int, default=None)
    a("--batch-size", type=int, default=None, help="per process")
    a("--num-points", type=int, default=None, help="points per cloud")
    a("--normals", action="store_true", default=None, help="use xyz + normals as input")
    a("--lr", type=float, default=None, help="initial learning rate")
    a("--seed", type=int, default=None)
    a("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    a(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML or YAML file of TrainConfig values",
    )
    a(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (0: torch's default; fast recipe: 1)",
    )
    a(
        "--out",
        metavar="DIR",
        default=None,
        help="run folder (default: runs/<model>-<data>-<time>)",
    )
    a("--resume", nargs="?", const=True, default=None, metavar="RUN_OR_STATE",
      help="continue an interrupted run: the --out folder, or a run folder / state.pt path")  # fmt: skip
    a("--force", action="store_true", default=None,
      help="replace a finished run in --out (without it, such a folder is refused)")  # fmt: skip
    from pointnet1x1.engine.recipes import RECIPES

    a(
        "--recipe",
        choices=["auto", *RECIPES],
        default=None,
        help="which defaults (auto: fast without --data, else the model's: paper or "
        "partseg; modelnet40-cpu: the paper PointNet on ModelNet40 in under an hour "
        "on 2 CPU cores)",
    )
    a(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default=None,
        help="compute of the fused PointNet training step (auto: bf16 where the "
        "hardware has native bf16, else fp32; the report says which and why)",
    )
    a(
        "--lr-schedule",
        choices=["step", "cosine"],
        default=None,
        help="step (paper: lr x0.7 every 200k samples) or cosine (to the lr floor)",
    )
    a(
        "--train-points",
        type=_train_points,
        default=None,
        metavar="EPOCH:POINTS,...",
        help="training points by epoch, e.g. 1:256,17:512 (evaluation keeps "
        "--num-points)",
    )
    a(
        "--votes",
        type=int,
        default=None,
        help="test-time votes (rotations about the up axis)",
    )
    a(
        "--val-fraction",
        type=float,
        default=None,
        help="fraction of train held out for validation",
    )
    a("--optimizer", choices=["adam", "sgd"], default=None)
    a(
        "--rotate",
        choices=["up", "so3", "none"],
        default=None,
        help="training rotation about the up axis, any rotation, or none (paper: up)",
    )
    a(
        "--scale",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        default=None,
        help="random scale (ports: 0.8 1.25)",
    )
    a("--shift", type=float, default=None, help="random shift (ports: 0.1)")
    a(
        "--sync-bn",
        action="store_true",
        default=None,
        help="SyncBatchNorm under torchrun",
    )
    a("--cache-dir", default=None, help="where prepared dataset arrays are cached")
    a("--skip-bad", action="store_true", default=None,
      help="train without the files that cannot be read and list them in "
      "report.json (default: stop and name them)")  # fmt: skip
    a(
        "--progress",
        choices=["auto", "bar", "log", "none"],
        default=None,
        help="progress display",
    )


def _train_points(text: str) -> list[list[int]]:
    """``"1:256,17:512"`` -> ``[[1, 256], [17, 512]]`` (argparse type)."""
    try:
        plan = [[int(v) for v in part.split(":")] for part in text.split(",")]
    except ValueError:
        plan = []
    if not plan or any(len(row) != 2 for row in plan):
        raise argparse.ArgumentTypeError(
            f"expected EPOCH:POINTS[,EPOCH:POINTS...] such as 1:256,17:512, got {text!r}"
        )
    return plan


def run(args: argparse.Namespace) -> int:
    from pointnet1x1.engine.config import build_config

    overrides = {
        name: getattr(args, name)
        for name in (
            "task", "data", "classes", "modelnet10", "model", "epochs", "batch_size",
            "num_points", "normals", "lr", "seed", "device", "threads", "out", "resume", "force", "recipe",
            "votes", "val_fraction", "optimizer", "scale", "shift", "sync_bn",
            "cache_dir", "skip_bad", "progress", "precision", "lr_schedule", "train_points",
        )
    }  # fmt: skip
    overrides["rotate"] = args.rotate
    config = build_config(args.config, **overrides)
    config.validate()  # one-line errors before torch is imported

    from pointnet1x1.engine.trainer import train

    train(config)
    return 0
