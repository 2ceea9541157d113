"""The ``pointnet1x1`` command line.

Each subcommand lives in its own module of this package, which defines
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import nothing
heavy at module level, so ``pointnet1x1 --help`` never imports torch; the work is
imported inside ``run``.

:func:`main` is the one place failures become messages: every exception ends
as one line ``pointnet1x1 CMD: error: ...`` (escaped, so a file name with a
newline stays on it) with exit code 2 for a user mistake (:class:`UsageError`, a
``ValueError`` such as a bad config value, a missing path) and 1 for a bad input
file (:class:`~pointnet1x1.io.errors.InputFileError`), a failure while running
(unreadable file, full disk, no memory) or a bug; bugs add a hint to rerun with
``POINTNET1X1_TRACEBACK=1``, which prints the traceback. Argument errors print
the usage of the subcommand that was given, with a close match ("did you mean
--epochs?"). :func:`describe_error` and :func:`error_line` are there for commands
that report several files (``classify``).
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import os
import struct
import sys
import traceback
import zipfile
import zlib
from collections.abc import Sequence
from typing import NoReturn

from pointnet1x1 import __version__
from pointnet1x1.io.errors import InputFileError, display_path, one_line

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
    "models": (
        "pointnet1x1.cli._models",
        "list the model architectures and the pretrained models with their figures",
    ),
}


class UsageError(Exception):
    """A mistake in how the command was called; printed as one line, exit code 2."""


TRACEBACK_ENV = "POINTNET1X1_TRACEBACK"
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, struct.error)
_USER_PATHS = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def error_line(command: str | None, message: str) -> str:
    """The one line every failure prints: ``pointnet1x1 CMD: error: MESSAGE``,
    with the message escaped so that it stays one line (see
    :func:`~pointnet1x1.io.errors.one_line`)."""
    where = f"pointnet1x1 {command}" if command else "pointnet1x1"
    return f"{where}: error: {one_line(message)}"


def _text(err: BaseException) -> str:
    text = str(err).strip()
    return text if text else type(err).__name__


def _os_message(err: OSError) -> str:
    if err.strerror is None:
        return _text(err)
    if err.filename is None:
        return f"{err.strerror} (errno {err.errno})"
    where = display_path(err.filename)
    if err.filename2 is not None:
        where += f" -> {display_path(err.filename2)}"
    return f"{where}: {err.strerror} (errno {err.errno})"


def describe_error(err: BaseException) -> tuple[int, str, bool]:
    """``(exit code, message, unexpected)`` for an exception that ended a command.

    Exit code 2 for a user mistake (a bad flag or config value, a missing path),
    1 for a bad input file or a failure while running (an unreadable or corrupt
    file, a full disk, no memory) and for bugs; ``unexpected`` marks bugs, whose
    line asks to rerun with ``POINTNET1X1_TRACEBACK=1``.
    """
    if isinstance(err, UsageError):
        return 2, _text(err), False
    if isinstance(err, InputFileError):
        return 1, _text(err), False
    if isinstance(err, _USER_PATHS):
        return 2, _os_message(err), False
    if isinstance(err, PermissionError):
        return 1, _os_message(err), False
    if isinstance(err, OSError):
        message = _os_message(err)
        if err.errno in _DISK_FULL:
            message += "; free some disk space (or choose another --out) and run again"
        return 1, message, False
    if isinstance(err, MemoryError):
        detail = f" ({err})" if str(err) else ""
        return (
            1,
            (
                f"out of memory{detail}; try a smaller --batch-size or --num-points, "
                "or fewer files at once"
            ),
            False,
        )
    if isinstance(err, ValueError):
        return 2, _text(err), False
    if isinstance(err, _CORRUPT):
        return 1, f"corrupt data: {type(err).__name__}: {_text(err)}", False
    if isinstance(err, ImportError) and err.name:
        return (
            1,
            (
                f"{_text(err)}; install the missing package (the extras are listed "
                "in the README)"
            ),
            False,
        )
    return (
        1,
        (
            f"internal error: {type(err).__name__}: {_text(err)} (a bug: rerun with "
            f"{TRACEBACK_ENV}=1 to see the traceback, and please report it)"
        ),
        True,
    )


class _Parser(argparse.ArgumentParser):
    """argparse with close-match suggestions, each error under its own usage."""

    def _check_value(self, action: argparse.Action, value: object) -> None:
        choices = action.choices
        if choices is not None and value not in choices:  # type: ignore[operator]
            names = [str(c) for c in choices]  # type: ignore[union-attr]
            close = difflib.get_close_matches(str(value), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            shown = ", ".join(repr(n) for n in names)
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r} (choose from {shown}){hint}"
            )

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def _chosen(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The deepest subcommand parser that ``args`` went through."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subs[0].dest, None) if subs else None
        if name is None or name not in subs[0].choices:
            return parser
        parser = subs[0].choices[name]


def _unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    options = [o for a in parser._actions for o in a.option_strings]
    hints = []
    for extra in extras:
        if extra.startswith("-"):
            close = difflib.get_close_matches(extra.split("=")[0], options, n=1)
            hints += [f"did you mean {close[0]}?"] if close else []
    message = f"unrecognized arguments: {' '.join(extras)}"
    return f"{message} ({'; '.join(hints)})" if hints else message


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    """Run the command line; every failure is one line on stderr (see
    :func:`describe_error` for the exit codes), never a traceback unless
    ``POINTNET1X1_TRACEBACK=1``."""
    command = None
    try:
        parser = build_parser()
        args, extras = parser.parse_known_args(argv)
        if extras:
            chosen = _chosen(parser, args)
            chosen.error(_unrecognized(chosen, extras))
        if args.command is None:
            parser.print_help()
            return 2
        command = args.command
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except SystemExit as done:  # argparse's errors, --help and --version
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        print("pointnet1x1: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pointnet1x1 classify ... | head`: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as err:
        code, message, _ = describe_error(err)
        if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
            traceback.print_exception(err, file=sys.stderr)
        print(error_line(command, message), file=sys.stderr)
        return code
