"""The training tasks the engine runs: classification and part segmentation.

:class:`~pointnet1x1.engine.tasks.base.Task` is the interface; :data:`TASKS` maps
``TrainConfig.task`` to the class that implements it.
"""

from __future__ import annotations

from pointnet1x1.engine.tasks.base import Batch, Task
from pointnet1x1.engine.tasks.classification import ClassificationTask
from pointnet1x1.engine.tasks.partseg import PartSegTask

__all__ = ["TASKS", "Batch", "ClassificationTask", "PartSegTask", "Task", "get_task"]

TASKS: dict[str, type[Task]] = {"cls": ClassificationTask, "partseg": PartSegTask}


def get_task(name: str) -> type[Task]:
    """The task class for ``name``; an unknown name is one line listing the known."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(
            f"unknown task {name!r}; choose one of: {', '.join(TASKS)}"
        ) from None
