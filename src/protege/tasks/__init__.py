"""Task registry: every built-in task by name (``toy/fork``). A new suite adds one file and one line."""

from __future__ import annotations

from collections.abc import Callable

from protege.tasks.base import Actor, Task, TaskSpec
from protege.tasks.toy import ForkTask, ReachTask

TASKS: dict[str, Callable[[], Task]] = {
    "toy/fork": ForkTask,
    "toy/reach": ReachTask,
}


def make_task(name: str) -> Task:
    """The task registered under ``name``; an unknown name lists the known ones."""
    if name not in TASKS:
        raise KeyError(f"unknown task '{name}'; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]()


__all__ = ["TASKS", "Actor", "Task", "TaskSpec", "make_task"]
