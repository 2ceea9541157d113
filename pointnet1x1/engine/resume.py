"""Resuming a run, owning its folder, and checking options.

A run is resumed from its ``checkpoints/state.pt`` with the configuration it was
started with. Only :data:`RESUMABLE` fields may be given anew (how far to train,
where and how verbosely); any other field given with a value that differs from
the run's is refused with one line naming it, never silently dropped. Likewise a
field the task does not read (:attr:`Task.unused_options`) is refused.

A run owns its ``--out`` folder (:func:`claim_run_folder`): it holds an exclusive
``flock`` on ``<out>/.lock`` for as long as it runs, so a second ``train`` on the
same folder fails at once with one line instead of mixing its files into the
first's; and a folder that holds a finished run (``report.json``) is refused
unless the run resumes it (``--resume``) or replaces it (``--force``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pointnet1x1.engine.checkpoint import load_training_state
from pointnet1x1.engine.config import TrainConfig

__all__ = [
    "LOCK_NAME",
    "RESUMABLE",
    "check_options",
    "claim_run_folder",
    "resume_config",
]

LOCK_NAME = ".lock"
# what a run writes into its folder (trainer.py's docstring): removed by --force,
# so that a replaced run never looks finished before the new one is
_RUN_FILES = (
    "report.json", "metrics.jsonl", "config.json", "curves.png", "confusion.png",
    "checkpoints/last.safetensors", "checkpoints/best.safetensors",
    "checkpoints/state.pt",
)  # fmt: skip

# Fields a run keeps when it is resumed unless given again; the others cannot change.
RESUMABLE = ("epochs", "device", "progress", "votes", "threads", "out", "resume")


def _state_path(resume: str | bool, out: str | None) -> Path:
    if resume is True:
        if out is None:
            raise ValueError(
                "--resume without a path needs --out RUN_DIR (the run to continue)"
            )
        base = Path(out)
    else:
        base = Path(str(resume))
    path = base / "checkpoints" / "state.pt" if base.is_dir() else base
    if not path.exists():
        raise FileNotFoundError(f"nothing to resume: no training state at {path}")
    return path


def _same(name: str, a: Any, b: Any) -> bool:
    if name in ("data", "cache_dir") and a is not None and b is not None:
        return (
            Path(str(a)).expanduser().resolve() == Path(str(b)).expanduser().resolve()
        )
    return bool(a == b)


def resume_config(cfg: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
    """The saved run's config (with the resumable fields given now) and its state.

    A field given now that differs from the run's and cannot change on resume is
    refused with one line naming it.
    """
    path = _state_path(cfg.resume, cfg.out)
    state = load_training_state(path)
    values = _check_state(state, path)
    if values.get("rotate") is None:  # runs saved before "none" spelled no rotation
        values["rotate"] = "none"
    saved = TrainConfig.from_dict(values)
    changed = [
        f"{name} (the run has {getattr(saved, name)!r}, given {getattr(cfg, name)!r})"
        for name in cfg.given()
        if name not in RESUMABLE
        and not _same(name, getattr(cfg, name), getattr(saved, name))
    ]
    if changed:
        raise ValueError(
            f"{path}: cannot change on --resume: {'; '.join(changed)}; drop them, or "
            "start a new run with another --out"
        )
    keep = {
        k: getattr(cfg, k)
        for k in RESUMABLE
        if k in cfg.given() and k not in ("out", "resume")
    }
    run_dir = str(path.parent.parent)
    return dataclasses.replace(saved, **keep, out=run_dir, resume=False), state


# training-state entries that resuming reads, and their types
_STATE_TYPES: dict[str, Any] = {
    "config": str, "epoch": int, "history": list[dict[str, Any]],
    "best": dict[str, Any], "optimizer": dict[str, Any],
}  # fmt: skip


def _check_state(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """The saved config's values, every entry that resuming reads type-checked
    (the config's values against :class:`TrainConfig`'s annotations)."""
    from pointnet1x1.engine.metadata import CheckpointError
    from pointnet1x1.io.errors import check_value

    try:
        for key, annotation in _STATE_TYPES.items():
            if key not in state:
                raise ValueError(f"{key!r} is missing")
            check_value(state[key], annotation, key)
        try:
            values = json.loads(state["config"])
        except json.JSONDecodeError as err:
            raise ValueError(f"config is not valid JSON ({err})") from None
        check_value(values, dict[str, Any], "config")
        hints = typing.get_type_hints(TrainConfig)
        for key, value in values.items():
            if key in hints:
                values[key] = check_value(value, hints[key], f"config {key}")
    except ValueError as err:
        raise CheckpointError(f"training state: {err}", path) from None
    return values


def check_options(cfg: TrainConfig) -> None:
    """Refuse, in one line, the options the task does not use."""
    from pointnet1x1.engine.tasks import get_task

    task = get_task(str(cfg.task))
    unused = [name for name in cfg.given() if name in task.unused_options]
    if unused:
        raise ValueError(
            f"--task {task.name} does not use {', '.join(unused)}; drop "
            f"{'it' if len(unused) == 1 else 'them'}"
        )


@contextlib.contextmanager
def claim_run_folder(
    out: str | os.PathLike[str] | None, *, resuming: bool = False, force: bool = False
) -> Iterator[None]:
    """Own the run folder ``out`` while the block runs (see the module docstring).

    Args:
        out: The run folder (created); ``None``: nothing to claim (another rank's).
        resuming: The run continues the one in ``out`` (``--resume``).
        force: Replace a finished run in ``out`` (its files are removed first).

    Raises:
        ValueError: Another process holds the folder, or it holds a finished run
            and neither ``resuming`` nor ``force`` is given.
    """
    if out is None:
        yield
        return
    folder = Path(out).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, folder)
        if (folder / "report.json").exists() and not resuming:
            if not force:
                raise ValueError(
                    f"{folder} holds a finished run (report.json); continue it with "
                    "--resume, replace it with --force, or choose another --out"
                )
            for name in _RUN_FILES:
                (folder / name).unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, folder: Path) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the report.json check still holds
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ValueError(
            f"{folder} is in use by another `pointnet1x1 train` (it holds "
            f"{folder / LOCK_NAME}); wait for it to finish, or choose another --out"
        ) from None
