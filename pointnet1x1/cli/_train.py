"""Train a point-cloud classifier and write a run folder (report, metrics, plots, checkpoints).

With no --data it trains on the embedded default dataset in about a minute on a
laptop CPU. With --data (a ModelNet40/10 root in any published layout) the defaults
are the PointNet paper's recipe. Values come from the defaults, then --config FILE
(TOML or YAML), then the flags. Under torchrun it trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--task",
        choices=["cls", "partseg"],
        default=None,
        help="classification (default) or part segmentation",
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
        help="train on these classes only",
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
        choices=["auto", "paper", "fast"],
        default=None,
        help="which defaults (auto: paper with --data)",
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
        help="training rotation (paper: up)",
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
    if args.rotate is not None:
        overrides["rotate"] = None if args.rotate == "none" else args.rotate
    config = build_config(args.config, **overrides)
    if args.rotate == "none":
        config.rotate = None
    config.validate()  # one-line errors before torch is imported

    from pointnet1x1.engine.trainer import train

    train(config)
    return 0
