"""One-line error messages, the exception of a bad input file, and typed values.

Every message the package shows about a file goes through :func:`display_path`
and :func:`one_line`, so that it stays one line whatever the file's name holds
(newlines, terminal escapes, undecodable bytes, thousands of characters):
characters that are not printable are written as Python escapes (``\\n``,
``\\x1b``, ``\\udcff``), and very long names keep their start and their end.

:class:`InputFileError` is "this input file is bad" (corrupt, truncated,
inconsistent, unsafe): the CLI exits with status 1 for it, and with status 2 for
other ``ValueError`` (a bad argument or config value). Readers of point clouds
raise its subclass :class:`~pointnet1x1.io.PointCloudFileError`; checkpoint and
archive readers raise it too.

:func:`check_value` checks a value read from a file (a config, a checkpoint's
metadata) against its type annotation before it is used.
"""

from __future__ import annotations

import os
import types
import typing
from typing import Any

_MAX_PATH = 240  # characters of a path shown before its middle is elided
_MAX_LINE = 2000  # characters of a whole message


def _escape(char: str) -> str:
    if char.isprintable() or char == " ":
        return char
    return char.encode("unicode_escape").decode("ascii")


def one_line(text: str, max_length: int = _MAX_LINE) -> str:
    """``text`` as one printable line: non-printable characters escaped
    (``repr``-style), runs of spaces kept, the middle elided beyond
    ``max_length`` characters."""
    line = "".join(_escape(c) for c in str(text).strip())
    if len(line) > max_length:
        keep = (max_length - 5) // 2
        line = f"{line[:keep]} ... {line[-keep:]}"
    return line


def display_path(path: str | os.PathLike[str] | bytes) -> str:
    """A file name as it appears in messages: escaped and at most ~240 characters."""
    name = os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)
    return one_line(name, _MAX_PATH)


class InputFileError(ValueError):
    """An input file that cannot be used: corrupt, truncated, inconsistent, unsafe.

    The message is one line: ``"<file>: <problem>"``.

    Args:
        problem: What is wrong, with the offending value and the fix when known.
        path: The file concerned; prefixed to the message when given.
    """

    def __init__(self, problem: str, path: str | os.PathLike[str] | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        text = " ".join(str(problem).split())  # the problem's own layout: one line
        message = text if path is None else f"{display_path(path)}: {text}"
        super().__init__(one_line(message))


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace(
        "typing.", ""
    )


def check_value(value: Any, annotation: Any, name: str) -> Any:
    """Check ``value`` (read from a file or typed by a user) against ``annotation``.

    Supported annotations: ``bool``, ``int`` (a bool or a non-integral float is
    refused; an integral float such as ``100.0`` is not an ``int`` either),
    ``float`` (ints accepted and converted), ``str``, ``None``, unions
    (``int | None``), ``Literal[...]``, ``list[X]``, ``tuple[X, ...]``,
    ``tuple[X, Y]``, ``dict[str, X]`` and ``Any``.

    Args:
        value: The value to check.
        annotation: The expected type, resolved (``typing.get_type_hints``).
        name: What the value is, for the message (``"epochs in run.toml"``).

    Returns:
        ``value``, with ints converted to float where a float is expected and
        lists to tuples where a tuple is expected.

    Raises:
        ValueError: The value does not have the expected type; the message names
            it, the expected type and the value received.
    """
    ok, converted = _match(value, annotation)
    if not ok:
        shown = one_line(repr(value), 80)
        raise ValueError(
            f"{name} must be {_describe(annotation)}, got {shown} "
            f"({type(value).__name__})"
        )
    return converted


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "a string"
    if annotation is type(None) or annotation is None:
        return "null"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values ({', '.join(map(_describe, args))})"
        return f"a list of {_describe(args[0]) if args else 'values'}"
    if origin is dict:
        return "a table (mapping)"
    return _type_name(annotation)


def _match(value: Any, annotation: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True, value
    if annotation is type(None) or annotation is None:
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number, float(value) if number else value
    if annotation is str:
        return isinstance(value, str), value
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        return any(type(value) is type(a) and value == a for a in allowed), value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            ok, converted = _match(value, option)
            if ok:
                return True, converted
        return False, value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return False, value
        args = typing.get_args(annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return False, value
            pairs = list(zip(value, args, strict=True))
        else:
            item = args[0] if args else Any
            pairs = [(v, item) for v in value]
        out = []
        for v, a in pairs:
            ok, converted = _match(v, a)
            if not ok:
                return False, value
            out.append(converted)
        return True, tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            return False, value
        key_type, item_type = typing.get_args(annotation) or (Any, Any)
        out_dict = {}
        for k, v in value.items():
            ok_key, _ = _match(k, key_type)
            ok, converted = _match(v, item_type)
            if not (ok_key and ok):
                return False, value
            out_dict[k] = converted
        return True, out_dict
    if isinstance(annotation, type):
        return isinstance(value, annotation), value
    raise TypeError(f"check_value does not support the annotation {annotation!r}")
