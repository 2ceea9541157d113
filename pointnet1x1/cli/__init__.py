"""The ``pointnet1x1`` command line.

Each subcommand lives in its own module of this package, which defines
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import nothing
heavy at module level, so ``pointnet1x1 --help`` never imports torch; the work is
imported inside ``run``.

User mistakes raise :class:`UsageError` (or ``ValueError`` / ``FileNotFoundError``
from the library); :func:`main` prints them as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pointnet1x1 import __version__

# subcommand -> (module, one-line help). Only modules that exist are listed.
_COMMANDS: dict[str, tuple[str, str]] = {
    "train": (
        "pointnet1x1.cli._train",
        "train a model (default: the embedded dataset)",
    ),
    "eval": (
        "pointnet1x1.cli._eval",
        "whole-set accuracy of a checkpoint on its test split",
    ),
    "classify": (
        "pointnet1x1.cli._classify",
        "classify point-cloud files with a checkpoint",
    ),
    "show": ("pointnet1x1.cli._show", "draw point clouds to a PNG (headless)"),
    "data": ("pointnet1x1.cli._data", "download, prepare and inspect datasets"),
    "export": ("pointnet1x1.cli._export", "export a checkpoint to ONNX or TorchScript"),
    "convert": ("pointnet1x1.cli._convert", "convert fxia22 / yanx27 PointNet weights"),
    "scene": ("pointnet1x1.cli._scene", "split a scan into objects and classify each"),
}


class UsageError(Exception):
    """A mistake in how the command was called; printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pointnet1x1",
        description="PointNet on point clouds, built from 1x1 convolutions.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in _COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("pointnet1x1: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, FileNotFoundError, NotADirectoryError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        print(f"pointnet1x1 {args.command}: error: {message}", file=sys.stderr)
        return 2
