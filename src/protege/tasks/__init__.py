"""Task registry: every built-in task by name (``toy/fork``, ``metaworld/push``). A new suite adds
one file and one line here; its simulator is imported only when one of its tasks is made."""

from __future__ import annotations

from collections.abc import Callable

from protege.extras import MissingExtraError
from protege.tasks import fetch, metaworld, pointmaze, pusht
from protege.tasks.base import Actor, Task, TaskSpec
from protege.tasks.toy import ForkTask, ReachTask

TASKS: dict[str, Callable[..., Task]] = {
    "toy/fork": ForkTask,
    "toy/reach": ReachTask,
    **metaworld.TASKS,
    **pusht.TASKS,
    **fetch.TASKS,
    **pointmaze.TASKS,
}


def make_task(name: str, pixels: bool = False, image_size: int = 96) -> Task:
    """The task registered under ``name``; ``pixels`` adds image observations of ``image_size`` px."""
    if name not in TASKS:
        raise KeyError(f"unknown task '{name}'; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name](pixels=pixels, image_size=image_size)


__all__ = ["TASKS", "Actor", "MissingExtraError", "Task", "TaskSpec", "make_task"]
