"""Fetch robot-arm tasks (gymnasium-robotics): reach, push and pick-and-place with scripted experts.

``observation.state`` is the simulator's observation followed by the desired goal: 13 numbers
for reach (gripper position, finger openings, velocities, goal), 28 for push and pick-and-place
(plus the block's position, offset from the gripper, rotation and velocities). An action is
(dx, dy, dz, gripper) in [-1, 1]: a unit moves the gripper's target 5 cm, the last entry opens
(+1) or closes (-1) the fingers. Success is the simulator's ``is_success`` (gripper or block
within 5 cm of the goal); episodes last at most 50 steps of 40 ms.

The experts are stateless: each action is a function of the current state alone, so a policy
that sees the state has nothing hidden to infer.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from protege.data.store import STATE
from protege.extras import require
from protege.tasks.base import Actor
from protege.tasks.sim import MUJOCO_DRAWING_ENVS, GoalEnv, SimTask

# The table and the air above it; at 96 px the simulator's own view is mostly floor and robot.
CAMERA = {"distance": 1.6, "azimuth": 132.0, "elevation": -25.0, "lookat": np.array([1.3, 0.75, 0.6])}
MOVE_SCALE = 0.05  # metres of gripper-target motion per unit of action (the simulator's constant)
OPEN, CLOSE = 1.0, -1.0


@dataclass(frozen=True)
class FetchState:
    """Named views of a batch of Fetch states, (B, 13) or (B, 28); ``obj`` is (B, 0) for reach."""

    grip: np.ndarray  # (B, 3) gripper position
    fingers: np.ndarray  # (B,) sum of the finger openings: 0.1 open, 0.048 on the block, 0 on nothing
    goal: np.ndarray  # (B, 3)
    obj: np.ndarray  # (B, 3) block position

    @classmethod
    def parse(cls, state: np.ndarray) -> FetchState:
        state = np.asarray(state, dtype=np.float64)
        if state.shape[1] == 13:
            return cls(grip=state[:, 0:3], fingers=state[:, 3:5].sum(1), goal=state[:, 10:13], obj=state[:, :0])
        return cls(grip=state[:, 0:3], fingers=state[:, 9:11].sum(1), goal=state[:, 25:28], obj=state[:, 3:6])


def _action(grip: np.ndarray, target: np.ndarray, fingers: np.ndarray | float) -> np.ndarray:
    """Move the gripper toward ``target`` (proportional, each axis saturating at 5 cm) and set the fingers."""
    move = np.clip((target - grip) / MOVE_SCALE, -1.0, 1.0)
    return np.concatenate([move, np.broadcast_to(fingers, len(grip))[:, None]], axis=1).astype(np.float32)


class FetchExpert:
    """Batched scripted expert: subclasses map a parsed batch of states to actions."""

    def reset(self, seeds: np.ndarray) -> None:
        """Stateless: nothing to remember between steps."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.command(FetchState.parse(obs[STATE]))

    def command(self, s: FetchState) -> np.ndarray:
        raise NotImplementedError


class ReachExpert(FetchExpert):
    """Straight to the goal, fingers idle."""

    def command(self, s: FetchState) -> np.ndarray:
        return _action(s.grip, s.goal, 0.0)


class PickPlaceExpert(FetchExpert):
    """Line up over the block with open fingers, descend, close, then carry it to the goal.

    Whether the block is held is read from the state (gripper at the block, fingers closed on
    it), so a dropped block is simply picked up again.
    """

    HOVER = 0.06  # height over the block at which to line up
    LINED_UP = 0.01  # horizontal error that allows the descent
    AT_BLOCK = 0.012  # gripper-to-block distance at which the fingers close
    HOLDING = 0.06  # finger opening below which a block at the gripper is held

    def command(self, s: FetchState) -> np.ndarray:
        offset = s.obj - s.grip
        lined_up = np.linalg.norm(offset[:, :2], axis=1) < self.LINED_UP
        at_block = np.linalg.norm(offset, axis=1) < self.AT_BLOCK
        held = at_block & (s.fingers < self.HOLDING)
        target = np.where(lined_up[:, None], s.obj, s.obj + [0.0, 0.0, self.HOVER])
        target = np.where(held[:, None], s.goal, target)
        return _action(s.grip, target, np.where(at_block, CLOSE, OPEN))


class PushExpert(FetchExpert):
    """Get behind the block, then push it toward the goal, in strides that shrink near the goal.

    "Behind" is on the goal-to-block line, past the block, so a push moves the block toward the
    goal. When the block turns or slides off the line by more than ``ALIGNED``, the gripper goes
    behind it again: low when the way is clear of the block, else up, over and down.
    """

    CONTACT = 0.045  # gripper-to-block-centre distance while pushing
    BEHIND = 0.06  # where to stand before a push
    ALIGNED = 0.015  # lateral error tolerated while pushing (and for standing behind)
    STRIDE = 0.05  # how far past the contact point to aim: at most the block's distance to the goal
    LOW = 0.02  # gripper height over the block centre that counts as low enough to push
    HIGH = 0.08  # travel height over the block
    CLEAR = 0.06  # a low path must pass this far from the block centre

    def command(self, s: FetchState) -> np.ndarray:
        grip, obj = s.grip[:, :2], s.obj[:, :2]
        to_goal = s.goal[:, :2] - obj
        dist = np.linalg.norm(to_goal, axis=1, keepdims=True)
        u = to_goal / np.maximum(dist, 1e-9)
        rel = grip - obj
        along, lateral = (rel * u).sum(1), rel[:, 1] * u[:, 0] - rel[:, 0] * u[:, 1]
        low = s.grip[:, 2] < s.obj[:, 2] + self.LOW
        behind = obj - u * self.BEHIND
        pushing = low & (along < -0.02) & (np.abs(lateral) < self.ALIGNED)
        descend = np.linalg.norm(grip - behind, axis=1) < self.ALIGNED
        slide = low & (_segment_distance(obj, grip, behind) > self.CLEAR)
        fly = ~(pushing | descend | slide)
        xy = np.where(pushing[:, None], obj + u * (np.minimum(dist, self.STRIDE) - self.CONTACT), behind)
        xy = np.where((fly & low)[:, None], grip, xy)  # low beside the block: straight up first
        z = s.obj[:, 2] + np.where(fly, self.HIGH, 0.0)
        return _action(s.grip, np.concatenate([xy, z[:, None]], axis=1), 0.0)


def _segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise distance from ``point`` to the segment from ``a`` to ``b``."""
    ab = b - a
    t = np.clip(((point - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(a + t[:, None] * ab - point, axis=1)


class FetchEnv(GoalEnv):
    """One Fetch episode: state = observation + desired goal, success = the simulator's ``is_success``."""

    def __init__(self, task: FetchTask, render: bool = False):
        super().__init__(task.spec)
        gym.register_envs(require("gymnasium_robotics", "robotics"))
        render = render or task.pixels
        pixels = {"render_mode": "rgb_array", "width": task.image_size, "height": task.image_size} if render else {}
        self.env = gym.make(task.env_id, max_episode_steps=-1, disable_env_checker=True, **pixels)
        if render:
            self.use_mujoco_rendering(self.env.unwrapped.mujoco_renderer, CAMERA)

    def success(self, native_info: dict) -> bool:
        return bool(native_info["is_success"])


class FetchTask(SimTask):
    """A Fetch task: which simulator environment, and which scripted expert."""

    drawing_envs = MUJOCO_DRAWING_ENVS

    env_id: str
    expert: type[FetchExpert]
    action_dim = 4
    max_steps = 50  # the simulator's own limit
    #: the gripper's position, finger opening, velocity and finger velocity (not the block's columns)
    proprio = (0, 1, 2, 9, 10, 20, 21, 22, 23, 24)
    fps = 25  # a step is 20 physics substeps of 2 ms

    def make_single_env(self, render: bool = False) -> FetchEnv:
        return FetchEnv(self, render)

    def make_expert(self) -> Actor:
        return self.expert()


class FetchReachTask(FetchTask):
    name, env_id, state_dim, expert = "fetch/reach", "FetchReach-v4", 13, ReachExpert
    proprio = tuple(range(10))  # every observation column is the gripper's (the goal follows)
    description = "Move the Fetch gripper to a random point in the air (within 5 cm)."


class FetchPushTask(FetchTask):
    name, env_id, state_dim, expert = "fetch/push", "FetchPush-v4", 28, PushExpert
    description = "Push a block across the table to a goal (within 5 cm); the fingers stay closed."


class FetchPickPlaceTask(FetchTask):
    name, env_id, state_dim, expert = "fetch/pick-place", "FetchPickAndPlace-v4", 28, PickPlaceExpert
    description = "Pick up a block and put it at a goal on the table or in the air (within 5 cm)."


TASKS: dict[str, type[FetchTask]] = {task.name: task for task in (FetchReachTask, FetchPushTask, FetchPickPlaceTask)}
