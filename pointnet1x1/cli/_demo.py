"""Walk through the 1x1-convolution identities and print each numerical difference."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    from pointnet1x1.identities import run_all

    for name, diff in run_all(seed=args.seed):
        print(f"{name:<70s} max |diff| = {diff:.2e}")
    return 0
