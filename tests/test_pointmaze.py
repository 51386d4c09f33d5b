"""PointMaze specifics (the task contract is in test_tasks.py): step limits, route choice, upright pixels."""

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")

from protege.tasks.pointmaze import TASKS, maze_map  # noqa: E402
from protege.tasks.sim import IMAGE  # noqa: E402

NAMES = sorted(TASKS)


@pytest.mark.parametrize("name", NAMES)
def test_step_limit_is_the_simulators(name):
    task = TASKS[name]()
    maze_map(task.env_id)  # registers the simulator's environments
    assert task.spec.max_steps == gym.spec(task.env_id).max_episode_steps


def test_expert_picks_one_of_the_shortest_routes_per_episode():
    """In the open room many routes are equally short: episodes differ, an episode sticks to its choice."""
    expert = TASKS["pointmaze/open"]().make_expert()
    seeds = np.arange(16)
    pos, goal = np.tile([[-2.0, 1.0]], (16, 1)), np.tile([[2.0, -1.0]], (16, 1))  # opposite corners
    expert.reset(seeds)
    first = expert.target(pos, goal)
    expert.reset(seeds)
    np.testing.assert_array_equal(expert.target(pos, goal), first)
    assert len(np.unique(first, axis=0)) >= 2


def test_pixels_are_an_upright_top_down_view_of_the_maze():
    """Walls (orange) and floor (blue) at the cell centres match the map; a flipped frame would not."""
    task = TASKS["pointmaze/medium"](pixels=True)
    env = task.make_env(2)
    try:
        obs, _ = env.reset(seed=[0, 1])
        image = obs[IMAGE]
        assert image.shape == (2, 96, 96, 3) and image.dtype == np.uint8
        walls = maze_map(task.env_id)
        rows, cols = np.indices(walls.shape).reshape(2, -1)
        size = 96 / max(walls.shape)  # the camera frames the larger side of the map
        top, left = (96 - size * np.array(walls.shape)) / 2
        pixel = image[:, (top + (rows + 0.5) * size).astype(int), (left + (cols + 0.5) * size).astype(int)].astype(int)
        seen = (pixel[..., 0] > pixel[..., 2]).reshape(2, *walls.shape)
        assert (seen == walls).mean() > 0.95 and (seen == walls[::-1]).mean() < 0.85
    finally:
        env.close()
