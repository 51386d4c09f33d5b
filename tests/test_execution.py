"""Chunk execution strategies of PolicyActor (receding, ensemble, adaptive) and `protege eval --execution`.

Most tests drive the actor with a fake policy whose chunks are known functions of the call index
and the offset in the chunk, so every executed action can be predicted by hand.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from protege.cli import main
from protege.data.store import EpisodeStore
from protege.evaluate.actor import PolicyActor
from protege.policies import FeatureSpec, make_policy
from protege.policies.base import Generators, per_row
from protege.policies.diffusion import DiffusionConfig

STATE = "observation.state"
TRAIN = ["--steps", "20", "--batch-size", "32", "--eval-every", "0", "--device", "cpu", "--no-progress"]


class FakePolicy:
    """Policy-like: ``chunk_fn(call, state) -> (B, H, A)``; counts calls; draws noise like a generative policy."""

    def __init__(self, chunk_fn, horizon: int = 4, n_action_steps: int = 2, scale: float = 1.0):
        self.chunk_fn, self.calls = chunk_fn, 0
        self.config = SimpleNamespace(n_obs=1, horizon=horizon, n_action_steps=n_action_steps)
        self.spec = SimpleNamespace(obs_shapes={STATE: (1,)}, action_dim=2)
        self.device = torch.device("cpu")
        self.normalizer = SimpleNamespace(normalize=lambda key, x: x / scale)

    def sample_noise(self, batch_size: int, generator: Generators = None) -> torch.Tensor:
        return per_row(lambda g, n: torch.randn(n, generator=g), batch_size, generator)

    def predict(self, obs: dict, noise: torch.Tensor | None = None) -> torch.Tensor:
        chunk = torch.as_tensor(self.chunk_fn(self.calls, obs[STATE][:, -1, 0].numpy()), dtype=torch.float32)
        self.calls += 1
        return chunk

    def correct(self, obs: dict, action: torch.Tensor) -> torch.Tensor:
        return action  # no per-step correction (Policy's own default)


def run_actor(actor: PolicyActor, steps: int, batch: int = 3) -> np.ndarray:
    """(T, B, A) actions of one episode whose state is the step index."""
    actor.reset(np.arange(batch))
    return np.stack([actor.act({STATE: np.full((batch, 1), t, dtype=np.float32)}) for t in range(steps)])


def tagged(batch: int, horizon: int):
    """Chunk of call s: action j of env b is (s, j + 10 b) - says which call and offset was executed."""

    def fn(s, state):
        j = np.arange(horizon)
        return np.stack([np.full((batch, horizon), s), j[None] + 10 * np.arange(batch)[:, None]], -1)

    return fn


# --------------------------------------------------------------------------------- receding


def test_receding_executes_first_k_then_replans() -> None:
    batch, horizon, k, steps = 3, 6, 4, 11
    policy = FakePolicy(tagged(batch, horizon), horizon=horizon, n_action_steps=k)
    actions = run_actor(PolicyActor(policy), steps, batch)
    t = np.arange(steps)
    assert (actions[:, :, 0] == (t // k)[:, None]).all()  # call index: a new chunk every k steps
    assert (actions[:, :, 1] == (t % k)[:, None] + 10 * np.arange(batch)).all()  # chunk[0:k] in order
    assert policy.calls == math.ceil(steps / k)
    actor = PolicyActor(policy, n_action_steps=2)
    run_actor(actor, steps, batch)
    calls, replans = actor.take_counts(np.array([11, 5, 1]))
    assert calls.tolist() == replans.tolist() == [6, 3, 1]


def test_counts_follow_waves_in_seed_order() -> None:
    policy = FakePolicy(tagged(2, 4), horizon=4, n_action_steps=4)
    actor = PolicyActor(policy)
    run_actor(actor, 9, batch=2)  # wave 1: episodes 0, 1
    run_actor(actor, 5, batch=2)  # wave 2: episode 2 (env 1 pads the wave)
    calls, _ = actor.take_counts(np.array([9, 4, 5]))
    assert calls.tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match="logged 0 episodes"):
        actor.take_counts(np.array([3]))


# --------------------------------------------------------------------------------- ensemble


def table_chunks(batch: int, horizon: int, steps: int):
    table = np.random.default_rng(0).normal(size=(steps, batch, horizon, 2))
    return table, lambda s, state: table[s]


@pytest.mark.parametrize("decay", [0.0, 0.01, 0.7, -0.3])
def test_ensemble_is_the_weighted_mean_of_overlapping_predictions(decay: float) -> None:
    batch, horizon, steps = 3, 5, 12
    table, fn = table_chunks(batch, horizon, steps)
    policy = FakePolicy(fn, horizon=horizon)
    actor = PolicyActor(policy, execution="ensemble", ensemble_decay=decay)
    actions = run_actor(actor, steps, batch)
    assert policy.calls == steps
    for t in range(steps):
        sources = range(max(0, t - horizon + 1), t + 1)  # oldest first
        weights = np.exp(-decay * np.arange(len(sources)))
        expected = sum(w * table[s, :, t - s] for w, s in zip(weights, sources)) / weights.sum()
        np.testing.assert_allclose(actions[t], expected, rtol=1e-5, atol=1e-6)
        if decay == 0:
            np.testing.assert_allclose(
                actions[t], np.mean([table[s, :, t - s] for s in sources], axis=0), rtol=1e-5, atol=1e-6
            )
    calls, replans = actor.take_counts(np.full(batch, steps))
    assert (calls == steps).all() and (replans == steps).all()  # one policy call per step


def test_ensemble_of_a_constant_chunk_executes_the_constant() -> None:
    const = np.array([[0.25, -0.5], [1.0, 0.75]], dtype=np.float32)
    policy = FakePolicy(lambda s, state: np.repeat(const[:, None], 4, axis=1), horizon=4)
    actions = run_actor(PolicyActor(policy, execution="ensemble"), 10, batch=2)
    np.testing.assert_allclose(actions, np.broadcast_to(const, actions.shape), rtol=1e-6)


# --------------------------------------------------------------------------------- adaptive


def test_adaptive_with_infinite_threshold_executes_whole_chunks() -> None:
    batch, horizon, steps = 2, 4, 11
    policy = FakePolicy(tagged(batch, horizon), horizon=horizon, n_action_steps=1)
    actor = PolicyActor(policy, execution="adaptive", replan_threshold=math.inf)
    actions = run_actor(actor, steps, batch)
    t = np.arange(steps)
    assert (actions[:, :, 0] == (t // horizon * horizon)[:, None]).all()  # the chunk predicted when the queue ran out
    assert (actions[:, :, 1] == (t % horizon)[:, None] + 10 * np.arange(batch)).all()
    calls, replans = actor.take_counts(np.full(batch, steps))
    assert (calls == steps).all()  # still predicts (checks) every step
    assert (replans == math.ceil(steps / horizon)).all()


@pytest.mark.parametrize("check_every", [1, 3])
def test_adaptive_with_zero_threshold_replans_at_every_check(check_every: int) -> None:
    batch, horizon, steps = 2, 4, 10
    policy = FakePolicy(tagged(batch, horizon), horizon=horizon)
    actor = PolicyActor(policy, execution="adaptive", replan_threshold=0.0, check_every=check_every)
    actions = run_actor(actor, steps, batch)
    t = np.arange(steps)
    assert (actions[:, :, 0] == (t // check_every)[:, None]).all()  # every call replaced the queue
    assert (actions[:, :, 1] == (t % check_every)[:, None] + 10 * np.arange(batch)).all()
    calls, replans = actor.take_counts(np.full(batch, steps))
    assert (calls == replans).all() and (calls == math.ceil(steps / check_every)).all()


def test_adaptive_decides_per_env_on_normalized_disagreement() -> None:
    """Env 0 always predicts the same plan (no disagreement); env 1's plan jumps by 1 on odd calls."""
    horizon, steps, scale = 4, 9, 2.0

    def fn(s, state):
        plan = (state[:, None] + np.arange(horizon)[None]).astype(np.float32)  # action for step t + j = t + j
        chunk = np.stack([plan, np.zeros_like(plan)], -1)
        chunk[1, :, 1] += s % 2  # env 1: odd calls disagree by 1 (0.5 normalized) with even calls
        return chunk

    for threshold, env1_replans in ((0.4, steps), (0.6, 3)):
        policy = FakePolicy(fn, horizon=horizon, scale=scale)
        actor = PolicyActor(policy, execution="adaptive", replan_threshold=threshold)
        actions = run_actor(actor, steps, batch=2)
        assert (actions[:, 0, 0] == np.arange(steps)).all() and (actions[:, 0, 1] == 0).all()
        _, replans = actor.take_counts(np.full(2, steps))
        assert replans.tolist() == [3, env1_replans]  # env 0 only when its queue runs out (steps 0, 4, 8)


def test_disagreement_is_the_mean_l2_over_the_overlap() -> None:
    policy = FakePolicy(lambda s, state: np.zeros((2, 4, 2)), horizon=4, scale=2.0)
    actor = PolicyActor(policy, execution="adaptive")
    actor.queue = torch.zeros(2, 4, 2)
    actor.remaining = torch.tensor([2, 4])
    new = torch.zeros(2, 4, 2)
    new[:, :, 0] = torch.tensor([2.0, 4.0, 6.0, 8.0])  # normalized: 1, 2, 3, 4
    new[:, :, 1] = torch.tensor([0.0, 0.0, 0.0, 6.0])  # normalized: 0, 0, 0, 3
    d = actor.disagreement(new)
    torch.testing.assert_close(d, torch.tensor([(1 + 2) / 2, (1 + 2 + 3 + 5) / 4]))


# ----------------------------------------------------------------------- real policy, determinism


@pytest.fixture(scope="module")
def diffusion():
    rng = np.random.default_rng(0)
    store = EpisodeStore(
        obs={STATE: rng.normal(size=(40, 1)).astype(np.float32)},
        action=rng.uniform(-1, 1, size=(40, 2)).astype(np.float32),
        episode_ends=np.array([20, 40]),
    )
    torch.manual_seed(0)
    policy = make_policy(
        DiffusionConfig(n_obs=2, horizon=6, n_action_steps=3, hidden_dim=16, depth=1, num_inference_steps=3),
        FeatureSpec.from_store(store),
    )
    policy.fit(store)
    return policy.eval()


@pytest.mark.parametrize("execution", ["receding", "ensemble", "adaptive"])
def test_a_seed_fixes_every_strategy(diffusion, execution: str) -> None:
    a, b, c = (run_actor(PolicyActor(diffusion, seed=seed, execution=execution), 8) for seed in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_adaptive_at_threshold_zero_is_receding_one_step(diffusion) -> None:
    receding = run_actor(PolicyActor(diffusion, n_action_steps=1), 9)
    adaptive = run_actor(PolicyActor(diffusion, execution="adaptive", replan_threshold=0.0), 9)
    assert np.array_equal(receding, adaptive)


def test_bad_settings_are_refused(diffusion) -> None:
    with pytest.raises(ValueError, match="receding execution only"):
        PolicyActor(diffusion, n_action_steps=2, execution="ensemble")
    with pytest.raises(ValueError, match="execution must be one of"):
        PolicyActor(diffusion, execution="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="replan_threshold"):
        PolicyActor(diffusion, execution="adaptive", replan_threshold=-1.0)
    with pytest.raises(ValueError, match="check_every"):
        PolicyActor(diffusion, execution="adaptive", check_every=0)


# ------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("execution")
    main(["collect", "toy/fork", "--episodes", "20", "--num-envs", "20", "--out", str(work / "fork"), "--no-progress"])
    main(
        [
            "train",
            str(work / "fork"),
            *TRAIN,
            "--out",
            str(work / "run"),
            "policy:diffusion",
            "--policy.hidden-dim",
            "32",
            "--policy.num-inference-steps",
            "3",
        ]
    )
    return work / "run"


def evaluate_cli(run: Path, out: Path, *args: str) -> tuple[dict, list[dict]]:
    main(
        [
            "eval",
            str(run),
            "--episodes",
            "10",
            "--num-envs",
            "10",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
            *args,
        ]
    )
    with (out / "episodes.csv").open(newline="") as f:
        return json.loads((out / "summary.json").read_text()), list(csv.DictReader(f))


def test_eval_execution_ensemble_end_to_end(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary, rows = evaluate_cli(run, tmp_path / "ens", "--execution", "ensemble", "--ensemble-decay", "0.05")
    assert summary["execution"] == {"strategy": "ensemble", "ensemble_decay": 0.05}
    (s,) = summary["policies"].values()
    assert s["policy_calls_per_step"] == s["replans_per_step"] == 1.0 and len(rows) == 10
    assert "execution: ensemble (ensemble_decay 0.05)" in capsys.readouterr().out


def test_eval_receding_counts_one_call_per_k_steps(run: Path, tmp_path: Path) -> None:
    summary, rows = evaluate_cli(run, tmp_path / "rec")
    assert summary["progress"] == "" and all(row["max_progress"] == "" for row in rows)  # toy/fork has none
    assert "mean_max_progress" not in summary["policies"]["diffusion"]
    assert summary["execution"] == {"strategy": "receding", "n_action_steps": 0}
    (s,) = summary["policies"].values()
    k = s["n_action_steps"]
    lengths = [int(r["length"]) for r in rows]
    trained_with = json.loads((run / "config.json").read_text())["policy"]["n_action_steps"]
    assert k == trained_with and s["policy_calls_per_step"] == sum(math.ceil(n / k) for n in lengths) / sum(lengths)


def test_eval_adaptive_records_its_settings(run: Path, tmp_path: Path) -> None:
    summary, rows = evaluate_cli(
        run, tmp_path / "ada", "--execution", "adaptive", "--replan-threshold", "inf", "--check-every", "2"
    )
    assert summary["execution"] == {"strategy": "adaptive", "replan_threshold": "inf", "check_every": 2}
    (s,) = summary["policies"].values()
    lengths = [int(r["length"]) for r in rows]
    assert s["policy_calls_per_step"] == sum(math.ceil(n / 2) for n in lengths) / sum(lengths)  # a check every 2 steps
    assert s["replans_per_step"] == sum(math.ceil(n / 16) for n in lengths) / sum(lengths)  # whole 16-step chunks


def test_eval_refuses_n_action_steps_with_ensemble(run: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as err:
        main(
            [
                "eval",
                str(run),
                "--execution",
                "ensemble",
                "--n-action-steps",
                "4",
                "--episodes",
                "2",
                "--out",
                str(tmp_path / "e"),
                "--no-progress",
            ]
        )
    assert "receding execution only" in str(err.value.code) and "\n" not in str(err.value.code).strip()
