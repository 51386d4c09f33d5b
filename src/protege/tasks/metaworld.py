"""Meta-World v3 manipulation tasks (Sawyer arm, MuJoCo) with the scripted policies it ships.

Each reset draws a new object and goal placement from the episode's seed (the goal-observable
setting, ``_freeze_rand_vec`` off), so demonstrations cover the task's whole distribution. The
39-D observation holds the hand, gripper, object poses of this and the previous step, and the
goal. Pixel frames come from the ``corner`` camera, whose up vector points down in the model:
frames are rotated by 180 degrees to come out upright.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import numpy as np

from protege.data.store import STATE
from protege.extras import require
from protege.tasks.base import Actor
from protege.tasks.sim import MUJOCO_DRAWING_ENVS, SimEnv, SimTask

#: The MT10 benchmark set; names are Meta-World's without the version suffix.
MT10 = (
    "reach",
    "push",
    "pick-place",
    "door-open",
    "drawer-open",
    "drawer-close",
    "button-press-topdown",
    "peg-insert-side",
    "window-open",
    "window-close",
)
VERSION = "v3"


class MetaWorldEnv(SimEnv):
    """One Meta-World environment with a fresh random placement per seed."""

    def __init__(self, task: MetaWorldTask, render: bool = False):
        super().__init__(task.spec)
        render = render or task.pixels
        require("metaworld", "metaworld")
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        camera = {
            "render_mode": "rgb_array",
            "width": task.image_size,
            "height": task.image_size,
            "camera_name": "corner",
        }
        env = ALL_V3_ENVIRONMENTS[task.env_name](**(camera if render else {}))
        # What Meta-World's goal-observable classes do, but with seeded (not frozen) placements.
        env._partially_observable = False
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env._set_task_called = True
        del env.sawyer_observation_space
        self.env = env
        if render:
            self.use_mujoco_rendering(env.mujoco_renderer)

    def native_reset(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self.env.seed(int(seed))
        return self.env.reset()[0]

    def state(self, native_obs: np.ndarray) -> np.ndarray:
        return native_obs

    def success(self, native_info: dict) -> bool:
        return bool(native_info["success"])

    def frame(self) -> np.ndarray:
        return super().frame()[::-1, ::-1]


class MetaWorldExpert:
    """Meta-World's own scripted policy for the task, applied to every environment of the batch."""

    def __init__(self, env_name: str):
        require("metaworld", "metaworld")
        from metaworld.policies import ENV_POLICY_MAP

        self.policy = ENV_POLICY_MAP[env_name]()

    def reset(self, seeds: np.ndarray) -> None:
        """The shipped policies are stateless."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        states = np.asarray(obs[STATE], dtype=np.float64)
        with warnings.catch_warnings():  # "constants may be too high": we clip, as the env does
            warnings.simplefilter("ignore", UserWarning)
            return np.clip(np.stack([self.policy.get_action(s) for s in states]), -1.0, 1.0).astype(np.float32)


class MetaWorldTask(SimTask):
    """``metaworld/<task>``: 39-D state, 4-D action (hand xyz delta, gripper), 500 steps, 80 fps sim."""

    drawing_envs = MUJOCO_DRAWING_ENVS

    state_dim, action_dim, max_steps, fps = 39, 4, 500, 80
    proprio = (0, 1, 2, 3)  # the hand's position and the gripper's opening

    def __init__(self, task: str, pixels: bool = False, image_size: int = 96):
        self.name = f"metaworld/{task}"
        self.env_name = f"{task}-{VERSION}"
        self.description = f"Meta-World {self.env_name}: Sawyer arm, random object and goal placement per seed"
        super().__init__(pixels, image_size)

    def make_single_env(self, render: bool = False) -> MetaWorldEnv:
        return MetaWorldEnv(self, render)

    def make_expert(self) -> Actor:
        return MetaWorldExpert(self.env_name)


TASKS: dict[str, Any] = {f"metaworld/{name}": partial(MetaWorldTask, name) for name in MT10}
