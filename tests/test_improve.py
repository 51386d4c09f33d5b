"""`protege improve`: every method writes a loadable, evaluable run with a learning curve; residual and
noise-space RL never touch the base's weights; a killed run resumes to the same curve; and (slow)
each method lifts a weak toy/reach policy within a small budget."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from protege.cli import main
from protege.config import EvalConfig, ImproveConfig
from protege.evaluate.evaluate import evaluate
from protege.improve import improve
from protege.improve import run as improve_run
from protege.policies.storage import load_policy

#: Rounds small enough for a unit test: a few episodes, 20 fine-tuning steps.
TINY_ROUNDS = {"episodes_per_round": 4, "round_steps": 20, "eval_episodes": 8, "progress": False}
#: SAC small enough for a unit test: a few hundred updates of 16-wide nets.
TINY_SAC = {"hidden": (16, 16), "batch_size": 32, "learning_starts": 50, "eval_episodes": 8, "num_envs": 8}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A weak mlp on toy/reach (20 demonstrations, 300 steps) and a tiny diffusion policy on it."""
    root = tmp_path_factory.mktemp("improve")
    data = root / "reach"
    main(["collect", "toy/reach", "--episodes", "20", "--out", str(data), "--no-progress"])
    common = ["--eval-every", "0", "--batch-size", "64", "--device", "cpu", "--no-progress"]
    main(["train", str(data), "policy:mlp", "--steps", "300", "--out", str(root / "mlp"), *common])
    main(
        [
            "train",
            str(data),
            "policy:diffusion",
            "--policy.hidden-dim",
            "16",
            "--policy.depth",
            "1",
            "--policy.horizon",
            "4",
            "--policy.n-action-steps",
            "2",
            "--steps",
            "30",
            "--out",
            str(root / "diffusion"),
            *common,
        ]
    )
    return {"mlp": root / "mlp", "diffusion": root / "diffusion", "data": data}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def curve(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]


def test_dagger_round_writes_a_run_that_loads_and_evaluates(bases: dict[str, Path], tmp_path: Path) -> None:
    out = improve(ImproveConfig(bases["mlp"], method="dagger", env_steps=100, out=tmp_path / "d", **TINY_ROUNDS))
    points = curve(out)
    assert [p["round"] for p in points] == list(range(len(points))) and len(points) >= 2
    assert points[0]["env_steps"] == points[0]["labels"] == 0
    assert all(b["labels"] > a["labels"] and b["env_steps"] > a["env_steps"] for a, b in zip(points, points[1:]))
    assert (out / "curve.svg").read_text().startswith("<?xml")
    assert load_policy(out).config.name == "mlp"
    report = evaluate(EvalConfig(checkpoints=(out,), episodes=4, num_envs=4, out=tmp_path / "eval", progress=False))
    latest = json.loads((out / "checkpoints" / "latest.json").read_text())["dir"]
    assert report["policies"]["mlp"]["checkpoint"]["folder"] == latest  # the improved policy, not the base


def test_intervention_labels_only_the_takeover_steps(bases: dict[str, Path], tmp_path: Path) -> None:
    settings = TINY_ROUNDS | {"episodes_per_round": 6}
    out = improve(ImproveConfig(bases["mlp"], method="intervene", env_steps=150, out=tmp_path / "i", **settings))
    last = curve(out)[-1]
    assert 0 < last["labels"] < last["env_steps"]  # the expert labelled only where it took over
    data = sorted((out / "data").iterdir())
    from protege.formats import read_dataset

    sources = set(read_dataset(data[0]).episodes["source"].tolist())
    assert "intervention" in sources


@pytest.mark.parametrize(("method", "base"), [("residual", "mlp"), ("noise", "diffusion"), ("sac", "mlp")])
def test_rl_methods_leave_the_base_bit_identical(bases: dict[str, Path], tmp_path: Path, method: str, base: str):
    files = {p: digest(p) for p in bases[base].rglob("*.safetensors")}
    original = load_policy(bases[base])
    out = improve(
        ImproveConfig(
            bases[base], method=method, env_steps=400, eval_every=200, out=tmp_path / method, progress=False, **TINY_SAC
        )
    )
    assert {p: digest(p) for p in bases[base].rglob("*.safetensors")} == files
    improved = load_policy(out)
    assert improved.config.name == {"residual": "residual", "noise": "dsrl", "sac": "residual"}[method]
    if method != "sac":
        for key, value in original.state_dict().items():
            assert torch.equal(improved.base.state_dict()[key], value), key
    points = curve(out)
    assert points[0]["env_steps"] == 0 and points[-1]["env_steps"] >= 400 and points[-1]["rl_steps"] > 0
    evaluate(EvalConfig(checkpoints=(out,), episodes=4, num_envs=4, out=tmp_path / "eval", progress=False))


def test_deployed_actor_is_sacs_deterministic_actor(bases: dict[str, Path], tmp_path: Path) -> None:
    from protege.improve.residual import ResidualProblem, residual_policy
    from protege.improve.run import ImproveRun
    from protege.improve.sac import copy_actor, make_sac

    run = ImproveRun(ImproveConfig(bases["mlp"], method="residual", out=tmp_path / "r", progress=False, **TINY_SAC))
    problem = ResidualProblem(run, residual_policy(run, run.base, 0.2))
    model = make_sac(run, problem)
    torch.nn.init.normal_(model.actor.mu.weight)  # off the zero start, so a wrong copy shows
    copy_actor(model, problem.policy.actor)
    x = np.random.default_rng(0).normal(size=(5, problem.obs_dim)).astype(np.float32)
    expected, _ = model.predict(x, deterministic=True)
    with torch.no_grad():
        deployed = torch.tanh(problem.policy.actor(torch.as_tensor(x))).numpy()
    np.testing.assert_allclose(deployed, expected, atol=1e-5)


def test_noise_space_needs_a_generative_base(bases: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no noise space"):
        improve(ImproveConfig(bases["mlp"], method="noise", env_steps=10, out=tmp_path / "n", progress=False))


class Killed(Exception):
    """Stands in for SIGKILL at a chosen curve point."""


KILLED_SETTINGS = {
    "residual": {"env_steps": 600, "eval_every": 150, **TINY_SAC},
    "dagger": {"env_steps": 200, **TINY_ROUNDS},
}


@pytest.mark.parametrize("method", KILLED_SETTINGS)
def test_killed_improve_resumes_to_the_same_curve(bases: dict[str, Path], tmp_path: Path, monkeypatch, method) -> None:
    settings = {"method": method, "progress": False, **KILLED_SETTINGS[method]}
    whole = curve(improve(ImproveConfig(bases["mlp"], out=tmp_path / "whole", **settings)))
    record = improve_run.ImproveRun.record
    calls = []

    def dies_at_third_point(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return record(self, *args, **kwargs)

    monkeypatch.setattr(improve_run.ImproveRun, "record", dies_at_third_point)
    with pytest.raises(Killed):
        improve(ImproveConfig(bases["mlp"], out=tmp_path / "cut", **settings))
    monkeypatch.setattr(improve_run.ImproveRun, "record", record)
    with pytest.raises(FileExistsError, match="--resume"):
        improve(ImproveConfig(bases["mlp"], out=tmp_path / "cut", **settings))
    resumed = curve(improve(ImproveConfig(bases["mlp"], out=tmp_path / "cut", resume=True, **settings)))
    strip = [{k: v for k, v in p.items() if k != "wall_s"} for p in whole]
    assert [{k: v for k, v in p.items() if k != "wall_s"} for p in resumed] == strip
    assert np.isclose(sum(p["success"] for p in resumed), sum(p["success"] for p in whole))


def test_cli_improve_names_a_bad_run(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="protege improve: error: no checkpoint found"):
        main(["improve", str(tmp_path / "missing"), "--method", "dagger", "--no-progress"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dagger", "intervene", "bc"])
def test_expert_methods_lift_a_weak_policy(bases: dict[str, Path], tmp_path: Path, method: str) -> None:
    out = improve(
        ImproveConfig(
            bases["mlp"],
            method=method,
            env_steps=1500,
            episodes_per_round=20,
            round_steps=300,
            eval_episodes=50,
            out=tmp_path / method,
            progress=False,
        )
    )
    points = curve(out)
    assert points[0]["success"] < 0.5
    assert points[-1]["success_ci95"][0] > points[0]["success_ci95"][1], points  # intervals apart


@pytest.mark.slow
def test_bench_improve_suite_tiny(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    args = [
        "bench",
        "--suite",
        "improve",
        "--tasks",
        "toy/reach",
        "--methods",
        "dagger",
        "sac",
        "--num-seeds",
        "2",
        "--env-steps",
        "200",
        "--eval-episodes",
        "20",
        "--out",
        str(out),
        "--no-progress",
    ]
    main(args)
    summary = json.loads((out / "summary.json").read_text())["tasks"]["toy/reach"]
    assert set(summary) == {"base", "dagger", "sac"}
    for method in ("dagger", "sac"):
        row = summary[method]
        assert len(row["per_seed"]) == 2 and row["env_steps"] >= 200
        assert row["success_ci95"][0] <= row["success"] <= row["success_ci95"][1]
        assert len(row["vs_base"]["mcnemar_p"]) == 2 and all(0 <= p <= 1 for p in row["vs_base"]["mcnemar_p"])
        low, high = row["vs_base"]["difference_ci95"]
        assert low <= row["vs_base"]["difference"] <= high
        assert np.isclose(row["vs_base"]["difference"], row["success"] - summary["base"]["success"])
    table = (out / "table.txt").read_text()
    assert "dagger" in table and "McNemar p" in table
    main(args)  # finished: nothing is run again, the same table comes back
    assert (out / "table.txt").read_text() == table


def test_intervention_segments_weigh_the_expert_up_and_drop_failed_policy_steps() -> None:
    from protege.data.store import EpisodeStore
    from protege.improve.intervene import segments

    store = EpisodeStore(
        obs={"observation.state": np.arange(10, dtype=np.float32)[:, None]},
        action=np.arange(10, dtype=np.float32)[:, None],
        episode_ends=np.array([6, 10]),
        episodes={"success": np.array([True, False]), "seed": np.array([7, 8])},
    )
    expert = np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 0], dtype=bool)
    out = segments(store, expert, weight=3)
    # episode 0 (success): policy [0, 1], expert [2, 3] x3, policy [4, 5]; episode 1 (failed): expert [7, 8] x3 only
    assert out.action[:, 0].tolist() == [0, 1, 2, 3, 2, 3, 2, 3, 4, 5, 7, 8, 7, 8, 7, 8]
    assert out.episodes["source"].tolist() == ["policy", *["intervention"] * 3, "policy", *["intervention"] * 3]
    assert out.episodes["seed"].tolist() == [7, 7, 7, 7, 7, 8, 8, 8]
    assert segments(store, np.zeros(10, dtype=bool), weight=3).num_frames == 6  # no takeover: the success only


@pytest.mark.slow
def test_residual_sac_lifts_a_weak_diffusion_policy(tmp_path: Path) -> None:
    """The suite's toy/fork recipe (20 demonstrations, 300 steps: about 0.6) and residual SAC at its budget."""
    data, base = tmp_path / "fork", tmp_path / "base"
    main(["collect", "toy/fork", "--episodes", "20", "--out", str(data), "--no-progress"])
    main(
        [
            "train",
            str(data),
            "policy:diffusion",
            "--steps",
            "300",
            "--eval-every",
            "0",
            "--out",
            str(base),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    out = improve(ImproveConfig(base, method="residual", env_steps=3000, eval_every=750, device="cpu", progress=False))
    report = evaluate(
        EvalConfig(
            checkpoints=(base, out),
            labels=("base", "residual"),
            episodes=100,
            out=tmp_path / "eval",
            device="cpu",
            progress=False,
        )
    )
    base_rate, improved = (report["policies"][k]["success_rate"] for k in ("base", "residual"))
    assert base_rate < 0.8
    assert improved - base_rate >= 0.1 and report["paired"][0]["p_value"] < 0.01, report["paired"]
