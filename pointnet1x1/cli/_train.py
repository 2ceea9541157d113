"""Train a classifier or a part segmenter and write a run folder (report, metrics, plots, checkpoints).

With no --data it trains a classifier on the embedded default dataset in about a
minute on a laptop CPU. With --data (a ModelNet40/10 root in any published layout)
the defaults are the PointNet paper's recipe; --task partseg (or a part-segmentation
--model) trains on ShapeNetPart with the yanx27 port's recipe. Values come from the
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
        help="dataset root (default: the embedded default dataset)",
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
    a(
        "--recipe",
        choices=["auto", "paper", "fast", "partseg"],
        default=None,
        help="which defaults (auto: fast without --data, else the model's: paper or partseg)",
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
    a(
        "--progress",
        choices=["auto", "bar", "log", "none"],
        default=None,
        help="progress display",
    )


def run(args: argparse.Namespace) -> int:
    from pointnet1x1.engine.config import build_config

    overrides = {
        name: getattr(args, name)
        for name in (
            "task", "data", "classes", "modelnet10", "model", "epochs", "batch_size",
            "num_points", "normals", "lr", "seed", "device", "threads", "out", "resume", "recipe",
            "votes", "val_fraction", "optimizer", "scale", "shift", "sync_bn",
            "cache_dir", "progress",
        )
    }  # fmt: skip
    overrides["rotate"] = args.rotate
    config = build_config(args.config, **overrides)
    config.validate()  # one-line errors before torch is imported

    from pointnet1x1.engine.trainer import train

    train(config)
    return 0
