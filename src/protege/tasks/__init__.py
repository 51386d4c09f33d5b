"""Task registry: every built-in task by name (``toy/fork``, ``metaworld/push``). A new suite adds
one file and one line here; its simulator is imported only when one of its tasks is made."""

from __future__ import annotations

from collections.abc import Callable

from protege.data.store import PROPRIO
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


def task_for(name: str, *obs_shapes: dict[str, tuple[int, ...]]) -> Task:
    """The task ``name`` as policies with these observation shapes see it: with its camera at their
    image size when any of them reads (H, W, 3) frames, else state only (no drawing cost)."""
    sizes = sorted({(shape[0], shape[1]) for shapes in obs_shapes for shape in shapes.values() if len(shape) == 3})
    if not sizes:  # observation.proprio exists in pixel mode only
        return make_task(name, pixels=any(PROPRIO in shapes for shapes in obs_shapes))
    if len(sizes) > 1 or sizes[0][0] != sizes[0][1]:
        raise ValueError(
            f"task '{name}' renders one square camera image, but the policies read frames of {[list(s) for s in sizes]}"
        )
    return make_task(name, pixels=True, image_size=sizes[0][0])


__all__ = ["TASKS", "Actor", "MissingExtraError", "Task", "TaskSpec", "make_task", "task_for"]
