"""Simulator suites under the task contract: one adapter instead of one per simulator.

A ``SimEnv`` wraps one native Gymnasium environment and gives the collector and the runner what
they rely on: LeRobot observation keys (``observation.state``, and ``observation.image`` in pixel
mode), ``info["success"]`` from the simulator's own flag, termination on success, our own step
limit, and a frozen episode once it is done (vector envs run with autoreset disabled and keep
stepping finished members; some simulators raise when stepped past their limit).
Rollout videos use the same frames as pixel mode (``SimEnv.frame``), from envs built to render.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from protege.data.store import IMAGE, PROPRIO, STATE
from protege.tasks.base import Task, TaskSpec

# Headless rendering: EGL needs no display. Set before any simulator imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


#: Members drawing at once in one process for MuJoCo suites: each renderer holds its own GL context,
#: measured at ~160 MB (Meta-World push) to ~240 MB (peg-insert-side) per env on the CPU, so the
#: default 100 envs of a pixel collection needed 24 GB and were killed for memory; 16 stay under 4 GB.
MUJOCO_DRAWING_ENVS = 16


def fast_mujoco_rendering(renderer: Any, camera: dict | None = None) -> Any:
    """Drop the shadow map, reflections and multisampling, which dominate offscreen frames at 96 px.

    ``camera`` (Gymnasium's ``default_cam_config``) must be set before the viewer is made, which
    this does; returns the offscreen viewer.
    """
    import mujoco

    if camera is not None:
        renderer.default_cam_config = camera
    renderer.model.vis.quality.offsamples = 0
    viewer = renderer._get_viewer("rgb_array")
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    return viewer


class SimEnv(gym.Env):
    """One episode of a native simulator under the task contract.

    Subclasses set ``self.env`` (the native env, without its own time limit) and implement
    ``state`` (native observation -> flat float vector), ``success`` (native step info -> the
    simulator's own success flag), for pixel mode ``frame``, and for a task with a progress signal
    ``progress`` (native step info -> [0, 1]).
    """

    env: gym.Env
    _mujoco: tuple[Any, dict | None] | None = None  # MuJoCo renderer and camera, when this env renders with MuJoCo
    _viewer: Any = None  # its offscreen viewer, made at the first frame

    def __init__(self, spec: TaskSpec):
        self.task_spec = spec
        shapes = spec.obs_shapes
        spaces = {STATE: gym.spaces.Box(-np.inf, np.inf, shape=shapes[STATE], dtype=np.float32)}
        if IMAGE in shapes:
            spaces[IMAGE] = gym.spaces.Box(0, 255, shape=shapes[IMAGE], dtype=np.uint8)
        if PROPRIO in shapes:
            spaces[PROPRIO] = gym.spaces.Box(-np.inf, np.inf, shape=shapes[PROPRIO], dtype=np.float32)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(
            spec.action_low, spec.action_high, shape=(spec.action_dim,), dtype=np.float32
        )
        self._steps, self._done, self._last, self._info = 0, True, {}, {"success": False}

    @abstractmethod
    def state(self, native_obs: Any) -> np.ndarray: ...

    @abstractmethod
    def success(self, native_info: dict) -> bool: ...

    def progress(self, native_info: dict) -> float:
        """The task's progress signal in [0, 1] after a step (tasks whose spec names one)."""
        raise NotImplementedError(f"{type(self).__name__} reports no progress signal")

    def use_mujoco_rendering(self, renderer: Any, camera: dict | None = None) -> None:
        """Render through ``renderer`` fast, in this env's own GL context, made at the first frame:
        an env built but never rendered (Gymnasium's async vector env builds one in the parent to
        read its spaces) then leaves no GL state for forked workers to inherit, which hangs them."""
        self._mujoco = (renderer, camera)

    def frame(self) -> np.ndarray:
        """(H, W, 3) uint8 image of the current scene, upright.

        Every MuJoCo env in a process has its own GL context and Gymnasium does not switch to it
        before drawing; any other context may be current (frames came out black).
        """
        if self._mujoco is not None:
            if self._viewer is None:
                self._viewer = fast_mujoco_rendering(*self._mujoco)
            self._viewer.make_context_current()
        return self.env.render()

    def native_reset(self, seed: int | None) -> Any:
        """Start the native episode for ``seed``; its observation."""
        return self.env.reset(seed=seed)[0]

    def _observe(self, native_obs: Any) -> dict[str, np.ndarray]:
        obs = {STATE: np.asarray(self.state(native_obs), dtype=np.float32)}
        if PROPRIO in self.observation_space.spaces:
            obs[PROPRIO] = obs[STATE][list(self.task_spec.proprio)]
        if IMAGE in self.observation_space.spaces:
            obs[IMAGE] = np.ascontiguousarray(self.frame(), dtype=np.uint8)
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._last = self._observe(self.native_reset(seed))
        self._steps, self._done = 0, False
        return self._last, {"success": False}

    def step(self, action):
        if self._done:  # frozen: the runner ignores steps of finished episodes
            return self._last, 0.0, self._terminated, self._truncated, {**self._info, "success": False}
        native_obs, reward, terminated, _, info = self.env.step(np.asarray(action, dtype=np.float32))
        self._steps += 1
        success = bool(self.success(info))
        self._terminated = bool(terminated) or success
        self._truncated = not self._terminated and self._steps >= self.task_spec.max_steps
        self._done = self._terminated or self._truncated
        self._last = self._observe(native_obs)
        self._info = {"success": success}
        if self.task_spec.progress:
            self._info["progress"] = float(self.progress(info))
        return self._last, float(reward), self._terminated, self._truncated, dict(self._info)

    def close(self):
        """Free GL objects in our own context: freed later by garbage collection, they would be
        deleted from whichever context is current then, where another env's objects share their ids."""
        if self._viewer is not None:
            self._viewer.make_context_current()
            self._viewer.con.free()
            self._viewer = None
        self.env.close()


class GoalEnv(SimEnv):
    """Gymnasium-Robotics goal-conditioned envs: state = the observation followed by the desired goal."""

    def state(self, native_obs: Any) -> np.ndarray:
        return np.concatenate([native_obs["observation"], native_obs["desired_goal"]])


class SimTask(Task):
    """A task whose episodes run in a ``SimEnv``; vector envs are Gymnasium's sync or async ones.

    ``pixels`` adds an ``observation.image`` of ``image_size`` px to every step and the agent's own
    state columns (``proprio``) as ``observation.proprio``; the full state stays (scripted experts
    read it).
    """

    def __init__(self, pixels: bool = False, image_size: int = 96):
        self.pixels, self.image_size = pixels, image_size
        shapes = {STATE: (self.state_dim,)}
        if pixels:
            shapes[IMAGE] = (image_size, image_size, 3)
            if self.proprio:
                shapes[PROPRIO] = (len(self.proprio),)
        self.spec = TaskSpec(
            obs_shapes=shapes,
            action_dim=self.action_dim,
            max_steps=self.max_steps,
            fps=self.fps,
            action_low=self.action_low,
            action_high=self.action_high,
            description=self.description,
            progress=self.progress,
            proprio=self.proprio,
        )

    state_dim: int
    action_dim: int
    max_steps: int
    progress: str = ""  # name of the env's progress signal (SimEnv.progress), "" for none
    proprio: tuple[int, ...] = ()  # state columns of the agent itself (TaskSpec.proprio)
    fps: int = 10
    action_low: float = -1.0
    action_high: float = 1.0
    description: str = ""
    drawing_envs: int | None = None
    """Members one process runs at once when they draw (pixels, videos); None: no limit."""

    def env_limit(self, render: bool = False) -> int | None:
        return self.drawing_envs if self.pixels or render else None

    @abstractmethod
    def make_single_env(self, render: bool = False) -> SimEnv:
        """One ``SimEnv`` for this task (called once per vector-env member, maybe in a subprocess);
        ``render`` builds it to draw ``frame()`` of ``image_size`` px even without pixel observations."""

    def make_env(self, num_envs: int, asynchronous: bool = False) -> VectorEnv:
        """``num_envs`` members stepped in this process, or one subprocess each with ``asynchronous``."""
        if not asynchronous:
            return SimVectorEnv([self.make_single_env() for _ in range(num_envs)])
        fns: list[Callable[[], gym.Env]] = [partial(_build, self) for _ in range(num_envs)]
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)

    def make_render_env(self, num_envs: int) -> SimRenderVectorEnv:
        """In-process members built to render, so ``render()`` gives the simulator's own frames."""
        return SimRenderVectorEnv([self.make_single_env(render=True) for _ in range(num_envs)])


def _build(task: SimTask) -> SimEnv:
    return task.make_single_env()


class SimVectorEnv(VectorEnv):
    """In-process vector env that steps only unfinished members (Gymnasium's sync env refuses to
    step a finished member with autoreset disabled, and stepping it would waste simulation)."""

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}

    def __init__(self, envs: list[SimEnv]):
        self.envs, self.num_envs = envs, len(envs)
        self.single_observation_space = envs[0].observation_space
        self.single_action_space = envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._obs = [env._last for env in envs]
        self._done = np.zeros(self.num_envs, dtype=bool)

    def _batch(self) -> dict[str, np.ndarray]:
        out = create_empty_array(self.single_observation_space, self.num_envs)
        return concatenate(self.single_observation_space, self._obs, out)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed or [None] * self.num_envs
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} environments")
        self._obs = [env.reset(seed=s)[0] for env, s in zip(self.envs, seeds)]
        self._done[:] = False
        return self._batch(), {"success": np.zeros(self.num_envs, dtype=bool)}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {actions.shape}")
        reward, progress = np.zeros(self.num_envs), np.zeros(self.num_envs)
        terminated, truncated, success = (np.zeros(self.num_envs, dtype=bool) for _ in range(3))
        for i in np.flatnonzero(~self._done):
            self._obs[i], reward[i], terminated[i], truncated[i], info = self.envs[i].step(actions[i])
            success[i], progress[i] = info["success"], info.get("progress", 0.0)
        self._done |= terminated | truncated
        info = {"success": success, **({"progress": progress} if self.envs[0].task_spec.progress else {})}
        return self._batch(), reward, terminated, truncated, info

    def close_extras(self, **kwargs):
        for env in self.envs:
            env.close()


class SimRenderVectorEnv(SimVectorEnv):
    """A ``SimVectorEnv`` of members built to render, whose ``render()`` gives every member's frame.

    A member not stepped since the last render (finished, so frozen) keeps its picture instead of
    being drawn again: a batch's short episodes cost no frames while its long ones play out.
    """

    def __init__(self, envs: list[SimEnv]):
        super().__init__(envs)
        self._frames: list[np.ndarray | None] = [None] * self.num_envs  # None: draw it at the next render

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        self._frames = [None] * self.num_envs
        return super().reset(seed=seed, options=options)

    def step(self, actions):
        for i in np.flatnonzero(~self._done):  # the members this step moves
            self._frames[i] = None
        return super().step(actions)

    def render(self) -> np.ndarray:
        """(B, H, W, 3) uint8 current frames."""
        for i, env in enumerate(self.envs):
            if self._frames[i] is None:
                self._frames[i] = np.ascontiguousarray(env.frame(), dtype=np.uint8)
        return np.stack(self._frames)
