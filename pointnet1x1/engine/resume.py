"""Resuming a run and checking options: what may change, and what a task refuses.

A run is resumed from its ``checkpoints/state.pt`` with the configuration it was
started with. Only :data:`RESUMABLE` fields may be given anew (how far to train,
where and how verbosely); any other field given with a value that differs from
the run's is refused with one line naming it, never silently dropped. Likewise a
field the task does not read (:attr:`Task.unused_options`) is refused.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pointnet1x1.engine.checkpoint import load_training_state
from pointnet1x1.engine.config import TrainConfig

__all__ = ["RESUMABLE", "check_options", "resume_config"]

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
    values = json.loads(state["config"])
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
