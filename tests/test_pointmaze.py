"""PointMaze tasks: state layout, step limits, determinism, the route expert, the success flag and pixels."""

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")

from protege.data.store import STATE  # noqa: E402
from protege.evaluate.rollout import rollout  # noqa: E402
from protege.tasks.pointmaze import TASKS, maze_map  # noqa: E402
from protege.tasks.sim import IMAGE  # noqa: E402

NAMES = sorted(TASKS)


def test_state_shapes_from_a_vector_env():
    task = TASKS["pointmaze/umaze"]()
    env = task.make_env(4)
    try:
        obs, _ = env.reset(seed=[0, 1, 2, 3])
        assert obs[STATE].shape == (4, 6) and obs[STATE].dtype == np.float32
        np.testing.assert_array_equal(obs[STATE][:, 2:4], 0.0)  # starts at rest
        obs, reward, terminated, truncated, info = env.step(np.ones((4, 2), dtype=np.float32))
        assert obs[STATE].shape == (4, 6) and (obs[STATE][:, 2:4] > 0).all()  # the force moved the ball
        assert info["success"].shape == terminated.shape == truncated.shape == (4,)
    finally:
        env.close()


@pytest.mark.parametrize("name", NAMES)
def test_step_limit_is_the_simulators(name):
    task = TASKS[name]()
    maze_map(task.env_id)  # registers the simulator's environments
    assert task.spec.max_steps == gym.spec(task.env_id).max_episode_steps


def test_deterministic_for_a_seed_whatever_the_batch():
    task = TASKS["pointmaze/medium"]()
    seeds = [5, 6, 7]
    a = rollout(task, task.make_expert(), seeds, num_envs=3, record=True, progress=False)
    b = rollout(task, task.make_expert(), seeds, num_envs=2, record=True, progress=False)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.store.action, b.store.action)
    np.testing.assert_array_equal(a.store.obs[STATE], b.store.obs[STATE])


@pytest.mark.parametrize("name", NAMES)
def test_expert_succeeds(name):
    task = TASKS[name]()
    result = rollout(task, task.make_expert(), np.arange(5), num_envs=5, progress=False)
    assert result.success.all()


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


def _replay(task, seed: int, act, steps: int) -> list[tuple[bool, bool]]:
    """Step our env and a fresh native env (registered defaults) with the same actions; per-step
    (ours, simulator's) success."""
    ours, native = task.make_single_env(), gym.make(task.env_id)
    try:
        obs, _ = ours.reset(seed=seed)
        native_obs, _ = native.reset(seed=seed)
        flags = []
        for _ in range(steps):
            action = act(obs)
            obs, _, terminated, truncated, info = ours.step(action)
            native_obs, _, _, _, native_info = native.step(action)
            expected = np.concatenate([native_obs["observation"], native_obs["desired_goal"]]).astype(np.float32)
            np.testing.assert_array_equal(obs[STATE], expected)
            flags.append((info["success"], native_info["success"]))
            if terminated or truncated:
                assert terminated == info["success"]  # success ends the episode
                break
        return flags
    finally:
        ours.close()
        native.close()


def test_success_is_the_simulators_flag():
    task = TASKS["pointmaze/umaze"]()
    expert = task.make_expert()
    expert.reset(np.array([2]))
    flags = _replay(task, 2, lambda obs: expert.act({key: value[None] for key, value in obs.items()})[0], task.max_steps)
    assert flags[-1] == (True, True) and all(ours == theirs for ours, theirs in flags)
    idle = _replay(task, 2, lambda obs: np.zeros(2, dtype=np.float32), 5)
    assert all(ours == theirs for ours, theirs in idle)


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


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_expert_succeeds_on_a_hundred_seeds(name):
    task = TASKS[name]()
    assert rollout(task, task.make_expert(), np.arange(100), num_envs=50, progress=False).success.mean() >= 0.95
