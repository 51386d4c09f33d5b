"""PushT: the gym-pusht adapter and its multimodal scripted expert."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gym_pusht")

import gymnasium as gym  # noqa: E402

from protege.cli import main  # noqa: E402
from protege.data.store import STATE  # noqa: E402
from protege.runner import rollout  # noqa: E402
from protege.tasks.pusht import GOAL_POSE, PushTTask  # noqa: E402
from protege.tasks.sim import IMAGE  # noqa: E402

SOLVED = np.arange(8)  # seeds the expert solves (it solves all of 0..99)


@pytest.fixture(scope="module")
def demos():
    """Expert episodes on SOLVED, recorded, run in two batches of four."""
    task = PushTTask()
    return rollout(task, task.make_expert(), SOLVED, num_envs=4, record=True, progress=False)


def test_state_shapes_and_dtypes():
    task = PushTTask()
    env = task.make_env(4)
    obs, info = env.reset(seed=[0, 1, 2, 3])
    assert obs[STATE].shape == (4, 6) and obs[STATE].dtype == np.float32
    assert set(obs) == {STATE} and info["success"].shape == (4,)
    np.testing.assert_allclose(np.hypot(obs[STATE][:, 4], obs[STATE][:, 5]), 1.0, atol=1e-6)
    assert ((obs[STATE][:, :4] >= 0) & (obs[STATE][:, :4] <= 512)).all()
    assert env.single_action_space.shape == (2,)
    assert (env.single_action_space.low == 0).all() and (env.single_action_space.high == 512).all()
    obs, reward, terminated, truncated, info = env.step(np.full((4, 2), 256.0, dtype=np.float32))
    assert obs[STATE].shape == (4, 6) and obs[STATE].dtype == np.float32
    assert reward.shape == terminated.shape == truncated.shape == info["success"].shape == (4,)
    assert ((reward >= 0) & (reward <= 1)).all()


def test_native_env_has_no_time_limit_and_ours_truncates():
    task = PushTTask()
    env = task.make_single_env()
    assert env.env is env.env.unwrapped  # no gymnasium wrappers: SimEnv owns the step limit
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(np.array([10.0, 10.0], dtype=np.float32))
        steps, done = steps + 1, terminated or truncated
    assert truncated and not terminated and steps == task.spec.max_steps


def test_expert_succeeds(demos):
    assert demos.success.all()
    assert (demos.lengths < PushTTask.max_steps).all()
    actions = demos.store.action
    assert ((actions >= 0) & (actions <= 512)).all()


def test_max_coverage_is_recorded_per_episode(demos):
    """PushT's standard score: the max over each episode of coverage / 0.95, capped at 1."""
    assert PushTTask().spec.progress == "coverage"
    assert demos.max_progress.shape == demos.success.shape
    np.testing.assert_array_equal(demos.max_progress[demos.success], 1.0)  # success is coverage > 0.95
    stuck = rollout(PushTTask(), StandStill(), np.arange(3), num_envs=3, progress=False)
    assert (stuck.max_progress < 1).all() and not stuck.success.any()
    native = gym.make("gym_pusht/PushT-v0", obs_type="state")  # the same score from gym-pusht's own reward
    for seed, score in zip(range(3), stuck.max_progress):
        native.reset(seed=seed)
        rewards = [native.step(np.array([10.0, 10.0]))[1] for _ in range(PushTTask.max_steps)]
        assert score == pytest.approx(max(rewards))


class StandStill:
    """An actor that parks the disc in the corner, so the block never moves."""

    def reset(self, seeds: np.ndarray) -> None:
        self.n = len(seeds)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.full((self.n, 2), 10.0, dtype=np.float32)


def test_success_is_the_simulators_own_flag(demos):
    """Replaying the recorded actions in a fresh gym-pusht env gives the same states and success step."""
    store = demos.store
    for episode, seed in enumerate(SOLVED):
        native = gym.make("gym_pusht/PushT-v0", obs_type="state")
        native_obs, _ = native.reset(seed=int(seed))
        start, end = store.episode_starts[episode], store.episode_ends[episode]
        flags = []
        for step in range(start, end):
            recorded = store.obs[STATE][step]
            np.testing.assert_allclose(recorded[:4], native_obs[:4], atol=1e-3)
            np.testing.assert_allclose(np.arctan2(recorded[5], recorded[4]) % (2 * np.pi), native_obs[4], atol=1e-4)
            native_obs, _, _, _, info = native.step(store.action[step])
            flags.append(info["is_success"])
        assert flags[-1] == demos.success[episode] and not any(flags[:-1])


def test_pixel_frames_are_upright_renderings():
    task = PushTTask(pixels=True, image_size=96)
    obs, _ = task.make_env(1).reset(seed=[3])
    image, state = obs[IMAGE][0], obs[STATE][0]
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert len(np.unique(image.reshape(-1, 3), axis=0)) >= 4  # background, goal, block, agent
    # the agent disc (RoyalBlue) sits where the state puts it: x -> column, y -> row, y down
    agent_x, agent_y = state[:2]
    assert abs(agent_x - agent_y) > 100  # a transposed or flipped frame would misplace it
    blue = (image[..., 2] > 180) & (image[..., 0] < 120)
    rows, cols = np.nonzero(blue)
    assert len(rows) > 10
    np.testing.assert_allclose([cols.mean(), rows.mean()], [agent_x * 96 / 512, agent_y * 96 / 512], atol=1.5)
    # the goal T (LightGreen) around its pose: its bar lies up and to the right of its stem
    green = (image[..., 1] > 200) & (image[..., 0] > 100) & (image[..., 0] < 180) & (image[..., 2] < 180)
    rows, cols = np.nonzero(green)
    assert len(rows) > 50
    goal_cog = GOAL_POSE[:2] + 45.0 * np.array([-np.sin(GOAL_POSE[2]), np.cos(GOAL_POSE[2])])
    np.testing.assert_allclose([cols.mean(), rows.mean()], goal_cog * 96 / 512, atol=4.0)


def test_expert_is_multimodal():
    """One start, eight expert seeds: the episodes take different routes (and still succeed)."""
    task = PushTTask()
    env, expert = task.make_env(8), task.make_expert()
    obs, _ = env.reset(seed=[5] * 8)
    expert.reset(np.arange(8))
    done, success, paths = np.zeros(8, dtype=bool), np.zeros(8, dtype=bool), []
    for _ in range(task.spec.max_steps):
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        paths.append(obs[STATE][:, :2].copy())
        success |= ~done & info["success"]
        done |= terminated | truncated
        if done.all():
            break
    spread = np.stack(paths[:40]).std(axis=1).max()  # px between the episodes' agents, early on
    assert spread > 30.0
    assert success.mean() >= 0.75


def test_eval_reports_mean_max_coverage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Per-episode max coverage in episodes.csv; the summary and the printout give its mean and interval."""
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    main(["collect", "pusht", "--episodes", "4", "--num-envs", "4", "--out", str(data), "--no-progress"])
    main(
        ["train", str(data), "--steps", "5", "--eval-every", "0", "--out", str(run), "--no-progress"]
        + ["policy:mlp", "--policy.hidden-dim", "16", "--policy.depth", "1"]
    )
    main(["eval", str(run), "--episodes", "6", "--num-envs", "3", "--out", str(out), "--no-progress"])
    with (out / "episodes.csv").open(newline="") as f:
        scores = [float(row["max_progress"]) for row in csv.DictReader(f)]
    summary = json.loads((out / "summary.json").read_text())
    result = summary["policies"]["mlp"]
    assert summary["progress"] == "coverage" and len(scores) == 6 and all(0 <= s <= 1 for s in scores)
    assert result["mean_max_progress"] == pytest.approx(np.mean(scores))
    low, high = result["max_progress_ci95"]
    assert 0 <= low <= result["mean_max_progress"] <= high <= 1
    assert "max coverage" in capsys.readouterr().out
