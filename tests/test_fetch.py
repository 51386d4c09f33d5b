"""Fetch tasks: state layout, determinism, the scripted experts, the success flag and pixels."""

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")

from protege.data.store import STATE  # noqa: E402
from protege.evaluate.rollout import rollout  # noqa: E402
from protege.tasks.fetch import TASKS  # noqa: E402
from protege.tasks.sim import IMAGE  # noqa: E402

NAMES = sorted(TASKS)


@pytest.mark.parametrize("name", NAMES)
def test_state_shapes_from_a_vector_env(name):
    task = TASKS[name]()
    env = task.make_env(4)
    try:
        obs, info = env.reset(seed=[0, 1, 2, 3])
        assert obs[STATE].shape == (4, task.state_dim) and obs[STATE].dtype == np.float32
        assert task.spec.obs_shapes == {STATE: (task.state_dim,)} and task.spec.action_dim == 4
        obs, reward, terminated, truncated, info = env.step(np.zeros((4, 4), dtype=np.float32))
        assert obs[STATE].shape == (4, task.state_dim)
        assert info["success"].shape == terminated.shape == truncated.shape == (4,)
    finally:
        env.close()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed_whatever_the_batch(name):
    task = TASKS[name]()
    seeds = [7, 8, 9]
    a = rollout(task, task.make_expert(), seeds, num_envs=3, record=True, progress=False)
    b = rollout(task, task.make_expert(), seeds, num_envs=2, record=True, progress=False)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.store.action, b.store.action)
    np.testing.assert_array_equal(a.store.obs[STATE], b.store.obs[STATE])


@pytest.mark.parametrize("name", NAMES)
def test_expert_succeeds(name):
    task = TASKS[name]()
    result = rollout(task, task.make_expert(), np.arange(10), num_envs=10, progress=False)
    assert result.success.all()
    assert (result.lengths < task.spec.max_steps).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_expert_succeeds_on_a_hundred_seeds(name):
    task = TASKS[name]()
    assert rollout(task, task.make_expert(), np.arange(100), num_envs=50, progress=False).success.mean() >= 0.95


def _replay(task, seed: int, act, steps: int) -> list[tuple[bool, bool]]:
    """Step our env and a fresh native env with the same actions; per-step (ours, simulator's) success."""
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
            flags.append((info["success"], bool(native_info["is_success"])))
            if terminated or truncated:
                assert terminated == info["success"]  # success ends the episode
                break
        return flags
    finally:
        ours.close()
        native.close()


@pytest.mark.parametrize("name", NAMES)
def test_success_is_the_simulators_flag(name):
    task = TASKS[name]()
    expert = task.make_expert()
    expert.reset(np.array([3]))
    flags = _replay(task, 3, lambda obs: expert.act({key: value[None] for key, value in obs.items()})[0], task.max_steps)
    assert flags[-1] == (True, True) and all(ours == theirs for ours, theirs in flags)
    idle = _replay(task, 3, lambda obs: np.zeros(4, dtype=np.float32), 5)
    assert all(ours == theirs for ours, theirs in idle)


def test_pixels_are_upright_frames_of_the_table():
    task = TASKS["fetch/push"](pixels=True)
    env = task.make_env(2)
    try:
        obs, _ = env.reset(seed=[0, 1])
        image = obs[IMAGE]
        assert image.shape == (2, 96, 96, 3) and image.dtype == np.uint8
        assert not np.array_equal(image[0], image[1])  # each env renders its own scene
        pixels = image.astype(int)
        background = (pixels[..., 1] - pixels[..., 0] > 60) & (pixels[..., 1] - pixels[..., 2] > 40)  # green sky
        grey = np.ptp(pixels, axis=-1) < 10  # table and floor
        assert (background[:, :10].mean() > 0.8) and (grey[:, -10:].mean() > 0.5)  # sky on top, table below
        assert (pixels.std(axis=(1, 2, 3)) > 20).all()
    finally:
        env.close()
