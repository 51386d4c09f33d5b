"""The task contract: what the collector and the evaluation runner need from a simulator suite."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

import gymnasium as gym
import numpy as np


class Actor(Protocol):
    """Anything that acts in a batch of environments: a scripted expert or a policy runner.

    ``reset`` starts one episode per environment (the seeds say which); ``act`` maps a batch of
    observations (key -> (B, *shape)) to actions (B, A).
    """

    def reset(self, seeds: np.ndarray) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


class Perturbation(Protocol):
    """Changes the actions a batch of environments executes (exploration noise for collection).

    ``reset`` is called with each wave's seeds, so the perturbation of an episode depends only on
    its seed.
    """

    def reset(self, seeds: np.ndarray) -> None: ...

    def __call__(self, actions: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class TaskSpec:
    """Shapes and timing of a task, enough to build a policy without touching the simulator.

    obs_shapes: observation key (LeRobot naming) -> per-step shape.
    action_dim: size of the flat action vector.
    max_steps: episode step limit (episodes may end earlier on success or failure).
    fps: control frequency, recorded in datasets.
    progress: name of the task's progress signal in [0, 1] (PushT: "coverage"), reported by
        ``step`` as ``info["progress"]`` and summarized as the max over each episode; "" for none.
    proprio: the columns of ``observation.state`` that describe the agent itself (PushT's disc
        position, a gripper's pose and opening); pixel mode repeats them as ``observation.proprio``,
        so that a policy can see the scene through the camera only, as LeRobot's pixel PushT does.
    """

    obs_shapes: dict[str, tuple[int, ...]]
    action_dim: int
    max_steps: int
    fps: int = 10
    action_low: float = -1.0
    action_high: float = 1.0
    description: str = field(default="", compare=False)
    progress: str = ""
    proprio: tuple[int, ...] = ()


class Task(ABC):
    """A named task: vector env factory, batched scripted expert, success signal in ``info``.

    Environments returned by ``make_env`` follow Gymnasium's VectorEnv API with autoreset
    disabled: ``reset(seed=[s0, s1, ...])`` starts one episode per seed, deterministic for a
    seed, and ``step`` reports ``info["success"]`` (B,) bool for every environment, and
    ``info["progress"]`` (B,) float in [0, 1] when the task has a progress signal
    (``spec.progress``). ``make_render_env`` gives the same episodes with pictures, for videos.
    """

    name: str
    spec: TaskSpec

    @abstractmethod
    def make_env(self, num_envs: int, asynchronous: bool = False) -> gym.vector.VectorEnv:
        """``num_envs`` environments; ``asynchronous`` steps them in subprocesses where supported."""

    @abstractmethod
    def make_expert(self) -> Actor: ...

    def env_limit(self, render: bool = False) -> int | None:
        """The most environments one process runs at once (None: as many as asked), with cameras or
        rendering on (``render``) where each member's renderer costs memory."""
        return None

    def make_render_env(self, num_envs: int) -> gym.vector.VectorEnv:
        """``num_envs`` in-process environments like ``make_env``'s (same episodes for the same seeds)
        whose ``render()`` returns the current picture of every member, (B, H, W, 3) uint8.

        Separate from ``make_env`` so that rollouts without videos never pay for drawing; a task
        that cannot draw its scene refuses here, before any episode runs.
        """
        raise NotImplementedError(f"task '{self.name}' cannot render its scene, so it has no rollout videos")
