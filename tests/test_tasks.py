"""Contract tests, parametrized over every registered task (simulator tasks skip without their extra)."""

import numpy as np
import pytest

from protege.runner import rollout
from protege.tasks import TASKS, MissingExtraError, make_task

TASK_NAMES = sorted(TASKS)
TOY_NAMES = [name for name in TASK_NAMES if name.startswith("toy/")]

#: The simulator's own success flag in its native step info, per suite (independent of our adapter).
NATIVE_SUCCESS = {
    "metaworld": lambda info: info["success"] > 0,
    "pusht": lambda info: bool(info["is_success"]),
    "fetch": lambda info: info["is_success"] > 0,
    "pointmaze": lambda info: bool(info["success"]),
}


def built(name, num_envs):
    """The task and a vector env of it; skips when the simulator's extra is not installed."""
    task = make_task(name)
    try:
        return task, task.make_env(num_envs)
    except MissingExtraError as error:
        pytest.skip(str(error))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_reset_and_step_shapes(name):
    task, env = built(name, 3)
    obs, info = env.reset(seed=[0, 1, 2])
    for key, shape in task.spec.obs_shapes.items():
        assert obs[key].shape == (3, *shape) and obs[key].dtype == np.float32
        assert env.single_observation_space[key].shape == shape
        assert np.isfinite(obs[key]).all()
    assert env.single_action_space.shape == (task.spec.action_dim,)
    obs, reward, terminated, truncated, info = env.step(np.zeros((3, task.spec.action_dim), dtype=np.float32))
    assert reward.shape == terminated.shape == truncated.shape == info["success"].shape == (3,)
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step(np.zeros((3, task.spec.action_dim + 1)))
    env.close()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_deterministic_for_a_seed_whatever_the_batch(name):
    task, env = built(name, 1)
    env.close()
    seeds = np.arange(10, 16)
    a = rollout(task, task.make_expert(), seeds, num_envs=6, record=True, progress=False)
    b = rollout(task, task.make_expert(), seeds, num_envs=4, record=True, progress=False)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.store.action, b.store.action)
    for key in a.store.obs:
        np.testing.assert_array_equal(a.store.obs[key], b.store.obs[key])
    first = {key: value[a.store.episode_starts] for key, value in a.store.obs.items()}
    assert len(np.unique(first["observation.state"], axis=0)) == len(seeds)  # seeds differ


def test_subprocess_envs_match_in_process_ones():
    task, env = built("pointmaze/umaze", 1)
    env.close()
    runs = [
        rollout(task, task.make_expert(), np.arange(4), num_envs=2, record=True, progress=False, asynchronous=flag)
        for flag in (False, True)
    ]
    np.testing.assert_array_equal(runs[0].store.obs["observation.state"], runs[1].store.obs["observation.state"])
    np.testing.assert_array_equal(runs[0].success, runs[1].success)


@pytest.mark.parametrize("name", [n for n in TASK_NAMES if n not in TOY_NAMES])
def test_expert_succeeds_and_success_is_the_simulators_own(name):
    """The expert solves fixed seeds; replaying its actions in a fresh native env, the simulator's
    own flag first turns true exactly at the step where our episode ended with success."""
    task, env = built(name, 1)
    env.close()
    seeds = np.arange(6)
    result = rollout(task, task.make_expert(), seeds, num_envs=6, record=True, progress=False)
    assert result.success.all(), f"expert failed on seeds {seeds[~result.success]}"
    store, flag = result.store, NATIVE_SUCCESS[name.split("/")[0]]
    for episode, seed in enumerate(seeds):
        sim = task.make_single_env()
        sim.native_reset(int(seed))
        actions = store.action[store.episode_starts[episode] : store.episode_ends[episode]]
        flags = [flag(sim.env.step(action)[4]) for action in actions]
        sim.close()
        assert flags[-1] and not any(flags[:-1]), f"seed {seed}: native success at steps {np.flatnonzero(flags)}"


#: Measured over seeds 0..99 (2026-11-24): Meta-World's own door-open and peg-insert-side policies
#: fail some placements (97% and 88%); every other expert solved 100/100.
EXPERT_FLOOR = {"metaworld/door-open": 0.9, "metaworld/peg-insert-side": 0.8}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TASK_NAMES if n not in TOY_NAMES])
def test_expert_succeeds_on_a_hundred_seeds(name):
    task, env = built(name, 1)
    env.close()
    result = rollout(task, task.make_expert(), np.arange(100), num_envs=50, progress=False)
    assert result.success.mean() >= EXPERT_FLOOR.get(name, 0.95)


@pytest.mark.parametrize("name", TOY_NAMES)
def test_toy_expert_succeeds_and_success_matches_the_env(name):
    task = make_task(name)
    result = rollout(task, task.make_expert(), np.arange(50), num_envs=25, record=True, progress=False)
    assert result.success.all()
    assert (result.lengths < task.spec.max_steps).all()
    store = result.store
    np.testing.assert_array_equal(store.episodes["success"], result.success)
    np.testing.assert_array_equal(store.episode_lengths, result.lengths)
    # reward is 1 exactly on the success step: the recorded return equals success
    np.testing.assert_allclose(store.episodes["return"], result.success.astype(float))
    # the last recorded state of each episode is within one step of its goal
    state = store.obs["observation.state"][store.episode_ends - 1]
    layout = task.layout
    dist = np.linalg.norm(state[:, :2] - state[:, 2:4], axis=1)
    assert (dist < layout.goal_tolerance + layout.speed + 1e-6).all()


def test_fork_modes_share_every_state_before_the_fork():
    """Before the fork point the expert's actions do not depend on its mode (nothing to memorize)."""
    task = make_task("toy/fork")
    store = rollout(task, task.make_expert(), np.arange(40), num_envs=40, record=True, progress=False).store
    state = store.obs["observation.state"]
    fork_y = task.routes[0][0][1]
    before = state[:, 1] < fork_y - 1e-6
    np.testing.assert_allclose(state[~before][:, 1].min(), fork_y, atol=1e-5)  # everyone lands on it
    at_fork = np.isclose(state[:, 1], fork_y, atol=1e-5) & np.isclose(state[:, 0], 0.0, atol=1e-5)
    assert at_fork.sum() >= 40  # every episode passes through the same fork state


def test_fork_expert_is_bimodal():
    task = make_task("toy/fork")
    store = rollout(task, task.make_expert(), np.arange(200), num_envs=100, record=True, progress=False).store
    mid = store.episode_starts + store.episode_lengths // 2
    side = np.sign(store.obs["observation.state"][mid, 0])
    assert 0.35 < (side > 0).mean() < 0.65  # both ways around the obstacle, about evenly


def test_averaging_the_fork_modes_crashes():
    """The premise of toy/fork: the mean of the two expert modes runs into the obstacle."""
    task = make_task("toy/fork")
    expert = task.make_expert()

    class Average:
        def reset(self, seeds):
            expert.reset(seeds)

        def act(self, obs):
            n = len(obs["observation.state"])
            actions = []
            for route in expert.routes:
                expert.route = np.repeat(route[None], n, axis=0)
                actions.append(expert.act(obs))
            return np.mean(actions, axis=0)

    assert rollout(task, Average(), np.arange(50), num_envs=50, progress=False).success.mean() == 0.0


def test_unknown_task_lists_known_ones():
    with pytest.raises(KeyError, match="unknown task 'toy/nope'.*toy/fork"):
        make_task("toy/nope")


ASYNC_PIXELS = """
import numpy as np
from protege.runner import rollout
from protege.tasks import make_task
task = make_task("pointmaze/umaze", pixels=True, image_size=32)
runs = [rollout(task, task.make_expert(), np.arange(2), num_envs=2, record=True, progress=False, asynchronous=flag)
        for flag in (True, False)]  # subprocesses first: a parent that rendered before would pass on its GL state
images = [r.store.obs["observation.image"] for r in runs]
assert np.array_equal(images[0], images[1]) and images[0].std() > 0
print("ok")
"""


def test_subprocess_envs_render_pixels():
    """Gymnasium's async env builds one env in the parent; rendering must not start there (a forked
    worker inheriting a GL context hangs), so this runs in a fresh interpreter under a timeout."""
    pytest.importorskip("gymnasium_robotics")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", ASYNC_PIXELS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
