"""PointMaze (gymnasium-robotics): a force-driven ball finds its way through a maze to a goal.

``observation.state`` is ``[x, y, vx, vy, goal_x, goal_y]`` and an action is a force in
[-1, 1]^2, applied every 10 ms (100 Hz). Start and goal are random free cells, each moved up to a
quarter cell in x and y. Success is the simulator's own flag (within 0.45 of the goal) and ends
the episode: the simulator runs with ``continuing_task=False``. The step limit is the simulator's
own for the maze. Pixel mode renders a top-down view of the whole maze, map row 0 at the top.

The expert plans on the grid of cells: a shortest route to the goal cell, with ties between
equally short routes broken at random per episode (so the demonstrations are multimodal where the
maze has loops), followed by a PD controller from one straight run of cells to the next.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from protege.data.store import STATE
from protege.extras import require
from protege.tasks.base import Actor
from protege.tasks.sim import MUJOCO_DRAWING_ENVS, GoalEnv, SimTask

STEPS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])  # grid moves: (row, column)
UNREACHABLE = np.iinfo(np.int64).max // 2


def _simulator() -> None:
    gym.register_envs(require("gymnasium_robotics", "robotics"))


def maze_map(env_id: str) -> np.ndarray:
    """(rows, columns) bool grid of walls of a registered PointMaze (row 0 is the top, +y)."""
    _simulator()
    return np.array([[cell == 1 for cell in row] for row in gym.spec(env_id).kwargs["maze_map"]])


def _grid_distances(walls: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    """Steps from every cell to ``goal`` through free cells (breadth-first); walls are unreachable."""
    dist = np.full(walls.shape, UNREACHABLE, dtype=np.int64)
    dist[goal] = 0
    queue = deque([goal])
    while queue:
        cell = queue.popleft()
        for step in STEPS:
            i, j = cell[0] + step[0], cell[1] + step[1]
            if 0 <= i < walls.shape[0] and 0 <= j < walls.shape[1] and not walls[i, j] and dist[i, j] == UNREACHABLE:
                dist[i, j] = dist[cell] + 1
                queue.append((i, j))
    return dist


class MazeExpert:
    """Batched shortest-route expert with a PD controller.

    Each step it finds the agent's cell, walks the route toward the goal cell for as long as the
    route runs straight, and steers to the centre of the last cell of that run (the goal itself
    once the run ends in the goal cell). A straight run of cells is a convex corridor, so the
    straight line to its end never crosses a wall. Where neighbours are equally close to the goal,
    the one with the lowest per-episode random priority wins, which fixes one route per episode.
    """

    KP, KD = 2.0, 0.5  # force per metre of error, per m/s of velocity: about critically damped

    def __init__(self, walls: np.ndarray):
        self.walls = walls
        rows, cols = walls.shape
        self.dist = np.stack([_grid_distances(walls, (i, j)) for i in range(rows) for j in range(cols)])  # (R*C, R, C)
        self.priority = np.zeros((0, rows, cols))

    def reset(self, seeds: np.ndarray) -> None:
        self.priority = np.stack([np.random.default_rng([int(s), 1]).random(self.walls.shape) for s in seeds])

    def cell(self, xy: np.ndarray) -> np.ndarray:
        """Grid (row, column) of each position, (B, 2) -> (B, 2); row 0 is the top (largest y)."""
        rows, cols = self.walls.shape
        rc = np.stack([rows / 2 - xy[:, 1], xy[:, 0] + cols / 2], axis=1)
        return np.clip(np.floor(rc).astype(np.int64), 0, [rows - 1, cols - 1])

    def centre(self, cells: np.ndarray) -> np.ndarray:
        """Position of each cell's centre, (B, 2) -> (B, 2); inverse of ``cell``."""
        rows, cols = self.walls.shape
        return np.stack([cells[:, 1] + 0.5 - cols / 2, rows / 2 - cells[:, 0] - 0.5], axis=1)

    def _next(self, cells: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """The neighbour one step closer to the goal (ties: lowest priority); the goal cell stays."""
        batch = np.arange(len(cells))
        near = np.clip(cells[:, None, :] + STEPS, 0, np.array(self.walls.shape) - 1)  # (B, 4, 2)
        here = dist[batch, cells[:, 0], cells[:, 1]]
        closer = dist[batch[:, None], near[..., 0], near[..., 1]] == here[:, None] - 1
        key = np.where(closer, self.priority[batch[:, None], near[..., 0], near[..., 1]], np.inf)
        step = near[batch, key.argmin(axis=1)]
        return np.where((here == 0)[:, None], cells, step)

    def target(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Where to steer now: the centre of the last cell of the straight run ahead, or the goal."""
        rows, cols = self.walls.shape
        goal_cell = self.cell(goal)
        dist = self.dist[goal_cell[:, 0] * cols + goal_cell[:, 1]]  # (B, R, C)
        here = self.cell(pos)
        end = self._next(here, dist)
        heading = end - here
        running = (heading != 0).any(axis=1)  # not in the goal cell yet
        for _ in range(max(rows, cols)):
            ahead = self._next(end, dist)
            running &= (ahead - end == heading).all(axis=1)
            if not running.any():
                break
            end = np.where(running[:, None], ahead, end)
        at_goal = (end == goal_cell).all(axis=1)
        return np.where(at_goal[:, None], goal, self.centre(end))

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs[STATE], dtype=np.float64)
        pos, vel, goal = state[:, 0:2], state[:, 2:4], state[:, 4:6]
        force = self.KP * (self.target(pos, goal) - pos) - self.KD * vel
        return np.clip(force, -1.0, 1.0).astype(np.float32)


def top_down_camera(walls: np.ndarray, fovy_degrees: float) -> dict[str, Any]:
    """A camera straight above the maze centre that frames the whole map, x to the right, y up."""
    distance = 0.5 * max(walls.shape) / np.tan(np.radians(fovy_degrees) / 2)
    return {"distance": distance, "azimuth": 90.0, "elevation": -90.0, "lookat": np.zeros(3)}


class PointMazeEnv(GoalEnv):
    """One PointMaze episode: state = [x, y, vx, vy, goal], success = the simulator's ``success``."""

    def __init__(self, task: PointMazeTask, render: bool = False):
        super().__init__(task.spec)
        _simulator()
        render = render or task.pixels
        pixels = {"render_mode": "rgb_array", "width": task.image_size, "height": task.image_size} if render else {}
        self.env = gym.make(
            task.env_id,
            continuing_task=False,
            reset_target=False,
            max_episode_steps=-1,
            disable_env_checker=True,
            **pixels,
        )
        if render:
            point_env = self.env.unwrapped.point_env
            camera = top_down_camera(maze_map(task.env_id), point_env.model.vis.global_.fovy)
            self.use_mujoco_rendering(point_env.mujoco_renderer, camera)

    def success(self, native_info: dict) -> bool:
        return bool(native_info["success"])


class PointMazeTask(SimTask):
    """A PointMaze task; subclasses name the maze (as in ``PointMaze_<maze>-v3``) and its step limit."""

    drawing_envs = MUJOCO_DRAWING_ENVS

    maze: str
    state_dim = 6
    proprio = (0, 1, 2, 3)  # the ball's position and velocity
    action_dim = 2
    fps = 100  # one 10 ms physics step per action

    @property
    def env_id(self) -> str:
        return f"PointMaze_{self.maze}-v3"

    def make_single_env(self, render: bool = False) -> PointMazeEnv:
        return PointMazeEnv(self, render)

    def make_expert(self) -> Actor:
        return MazeExpert(maze_map(self.env_id))


class UMazeTask(PointMazeTask):
    name, maze, max_steps = "pointmaze/umaze", "UMaze", 300
    description = "Steer a ball around the wall of a U-shaped maze to a goal."


class MediumMazeTask(PointMazeTask):
    name, maze, max_steps = "pointmaze/medium", "Medium", 600
    description = "Steer a ball through an 8x8 maze (several equally short routes) to a goal."


class LargeMazeTask(PointMazeTask):
    name, maze, max_steps = "pointmaze/large", "Large", 800
    description = "Steer a ball through a 9x12 maze (several equally short routes) to a goal."


class OpenMazeTask(PointMazeTask):
    name, maze, max_steps = "pointmaze/open", "Open", 300
    description = "Steer a ball across an open 3x5 room to a goal."


TASKS: dict[str, type[PointMazeTask]] = {
    task.name: task for task in (UMazeTask, MediumMazeTask, LargeMazeTask, OpenMazeTask)
}
