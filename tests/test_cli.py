"""`protege` end to end with tiny budgets: every command runs, writes what it promises, reproduces
bit for bit, and answers bad input with one line naming the problem instead of a traceback.

Commands run in-process through ``protege.cli.main`` (fast); one test goes through the installed
entry point in a real subprocess.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from protege.cli import main
from protege.config import BenchConfig
from protege.data.windows import WindowSampler
from protege.evaluate.evaluate import EPISODE_FIELDS
from protege.formats import read_dataset
from protege.policies import POLICIES, policy_class
from protege.policies.storage import load_policy

#: Small enough for seconds on two busy CPU cores.
TRAIN = ["--steps", "20", "--batch-size", "32", "--eval-every", "0", "--device", "cpu", "--no-progress"]
STEP_FILES = ("model.safetensors", "ema.safetensors", "config.json", "train_state.safetensors", "train_state.json")
METRIC_KEYS = {"step", "loss", "lr", "samples_per_s", "data_s_per_step", "update_s_per_step", "train_s"}


def policy_args(name: str, teacher: Path | None = None) -> list[str]:
    """Select a family and shrink its network, whatever its size field is called; a student
    family (distilled) gets ``teacher``."""
    fields = policy_class(name).config_class.__dataclass_fields__
    small = [f"--policy.{key.replace('_', '-')}" for key in ("hidden_dim", "embed_dim") if key in fields]
    student = ["--policy.teacher", str(teacher)] if "teacher" in fields else []
    return [f"policy:{name}", *(arg for flag in small for arg in (flag, "32")), *student]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def fork_data(work: Path) -> Path:
    out = work / "fork"
    main(["collect", "toy/fork", "--episodes", "20", "--num-envs", "20", "--out", str(out), "--no-progress"])
    return out


@pytest.fixture(scope="module")
def runs(work: Path, fork_data: Path) -> dict[str, Path]:
    """One tiny run per registered policy family."""
    out = {}
    for name in sorted(POLICIES, key=lambda n: n == "distilled"):  # the student needs its flow teacher first
        out[name] = work / f"run-{name}"
        main(["train", str(fork_data), *TRAIN, "--out", str(out[name]), *policy_args(name, work / "run-flow")])
    return out


def protege_command() -> list[str]:
    script = Path(sys.executable).with_name("protege")
    return [str(script)] if script.exists() else [sys.executable, "-m", "protege.cli"]


def run_protege(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PROTEGE_DEBUG"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([*protege_command(), *args], capture_output=True, text=True, env=env, timeout=120)


def assert_clean_error(err: pytest.ExceptionInfo[SystemExit], captured: pytest.CaptureResult, *fragments: str) -> str:
    """A one-line SystemExit message containing every fragment, and no traceback anywhere."""
    message = err.value.code
    assert isinstance(message, str), f"expected an error message, got exit code {message!r}"
    assert "\n" not in message.strip(), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    for text in (message, captured.out, captured.err):
        for marker in ("Traceback", 'File "', "numpy.", "pyarrow.", "site-packages"):
            assert marker not in text, f"{marker!r} leaked into {text!r}"
    return message


def state_dicts_equal(a: Path, b: Path) -> bool:
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def latest_step_dir(run: Path) -> Path:
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    return run / "checkpoints" / latest["dir"]


# ------------------------------------------------------------------------------------ usage


def test_no_args_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    main([])
    out = capsys.readouterr().out
    assert out.startswith("usage: protege COMMAND")
    for command in ("collect", "train", "eval", "inspect", "bench"):
        assert command in out


def test_unknown_command_exits_nonzero_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["frobnicate", "--steps", "3"])
    assert_clean_error(err, capsys.readouterr(), "frobnicate", "collect")


def test_entry_point_in_a_subprocess(work: Path) -> None:
    """The installed `protege` script works: a real collect of toy/reach, and a failing command."""
    out = work / "reach"
    done = run_protege("collect", "toy/reach", "--episodes", "20", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "wrote 20 episodes" in done.stdout
    assert (out / "meta" / "info.json").is_file()
    store = read_dataset(out)
    assert store.num_episodes == 20 and store.task == "toy/reach"

    failed = run_protege("frobnicate")
    assert failed.returncode != 0
    assert "unknown command 'frobnicate'" in failed.stderr
    assert "Traceback" not in failed.stderr


# ------------------------------------------------------------------------- collect, inspect


def test_collect_and_inspect(fork_data: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (fork_data / "meta" / "info.json").is_file()
    assert sorted(fork_data.glob("data/chunk-*/file-*.parquet"))
    store = read_dataset(fork_data)
    assert store.num_episodes == 20 and store.task == "toy/fork"

    capsys.readouterr()
    desc_path = work / "fork-description.json"
    main(["inspect", str(fork_data), "--json", str(desc_path)])
    out = capsys.readouterr().out
    assert "episodes  20" in out
    assert f"frames    {store.num_frames}" in out
    for feature in ("observation.state", "action", "next.reward", "expert"):
        assert feature in out
    desc = json.loads(desc_path.read_text())
    assert desc["episodes"] == 20 and desc["frames"] == store.num_frames and desc["task"] == "toy/fork"
    assert {f["name"] for f in desc["features"]} >= {"observation.state", "action"}


# ------------------------------------------------------------------------------------ train


@pytest.mark.parametrize("name", list(POLICIES))
def test_train_writes_a_complete_run_folder(runs: dict[str, Path], name: str) -> None:
    run = runs[name]
    config = json.loads((run / "config.json").read_text())
    assert config["policy"]["name"] == name and config["steps"] == 20
    assert all(config["policy"][key] == 32 for key in ("hidden_dim", "embed_dim") if key in config["policy"])
    # a nonparametric family (knn) is complete once fitted: a step-0 checkpoint, no EMA copy
    steps = 20 if any(p.requires_grad for p in load_policy(run).parameters()) else 0

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert bool(train_rows) == (steps > 0), rows
    for row in train_rows:
        assert METRIC_KEYS <= row.keys(), row
    assert not train_rows or train_rows[-1]["step"] == steps

    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == steps
    step_dir = latest_step_dir(run)
    assert step_dir.is_dir() and step_dir.name == latest["dir"] == f"step-{steps:07d}"
    for filename in STEP_FILES:
        assert (step_dir / filename).is_file() == (steps > 0 or filename != "ema.safetensors"), filename
    assert json.loads((step_dir / "train_state.json").read_text())["step"] == steps


def test_train_help_lists_options_and_policies(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["train", "--help"])
    assert err.value.code in (0, None)
    out = capsys.readouterr().out
    assert "--steps" in out
    for name in POLICIES:
        assert f"policy:{name}" in out


# ------------------------------------------------------------------------------------- eval


def test_eval_two_runs_pairs_them_on_one_seed_list(runs: dict[str, Path], work: Path) -> None:
    names = list(POLICIES)[:2]
    out = work / "eval"
    main(
        [
            "eval",
            *(str(runs[n]) for n in names),
            "--episodes",
            "10",
            "--num-envs",
            "10",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
        ]
    )

    with (out / "episodes.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert (
            reader.fieldnames
            == EPISODE_FIELDS
            == ["task", "policy", "checkpoint", "seed", "success", "return", "length", "max_progress", "wall_time_s"]
        )
        rows = list(reader)
    assert len(rows) == 10 * len(names)
    seeds = {n: [int(r["seed"]) for r in rows if r["policy"] == n] for n in names}
    assert all(len(s) == 10 for s in seeds.values()), seeds
    assert seeds[names[0]] == seeds[names[1]] and len(set(seeds[names[0]])) == 10
    assert {r["task"] for r in rows} == {"toy/fork"}
    for r in rows:
        assert r["success"] in ("True", "False") and int(r["length"]) > 0 and float(r["wall_time_s"]) >= 0
        assert Path(r["checkpoint"]).name == "step-0000020"

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["policies"]) == set(names)
    for s in summary["policies"].values():
        lo, hi = s["success_ci95"]
        assert 0.0 <= lo <= s["success_rate"] <= hi <= 1.0
        assert s["episodes"] == 10
    (pair,) = summary["paired"]
    assert {pair["a"], pair["b"]} == set(names)
    assert 0.0 <= pair["p_value"] <= 1.0


# ------------------------------------------------------------------------------------ bench


def test_bench_tiny(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "bench"
    main(
        [
            "bench",
            "--episodes",
            "20",
            "--steps",
            "20",
            "--batch-size",
            "32",
            "--eval-episodes",
            "10",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert "samples/s" in capsys.readouterr().out
    assert (out / "data" / "meta" / "info.json").is_file()
    policies = BenchConfig().families()
    for name in policies:
        assert (latest_step_dir(out / name) / "model.safetensors").is_file()
    with (out / "eval" / "episodes.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 * len(policies)
    table = (out / "table.txt").read_text()
    for name in policies:
        assert name in table


# ---------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("name", list(POLICIES))
def test_train_is_bit_reproducible_and_config_replays_it(
    fork_data: Path, work: Path, runs: dict[str, Path], name: str
) -> None:
    first, second, replay = (work / f"repro-{name}-{i}" for i in range(3))
    for out in (first, second):
        main(["train", str(fork_data), *TRAIN, "--seed", "3", "--out", str(out), *policy_args(name, runs["flow"])])
    main(["train", "--config", str(first / "config.json"), "--out", str(replay)])

    assert json.loads((replay / "config.json").read_text())["seed"] == 3
    for other in (second, replay):
        for weights in ("model.safetensors", "ema.safetensors")[
            : 1 + (latest_step_dir(first) / "ema.safetensors").exists()
        ]:
            assert state_dicts_equal(latest_step_dir(first) / weights, latest_step_dir(other) / weights), (
                other,
                weights,
            )
    # a different seed really is a different run, so the equality above means something
    main(
        [
            "train",
            str(fork_data),
            *TRAIN,
            "--seed",
            "4",
            "--out",
            str(work / f"repro-{name}-seed4"),
            *policy_args(name, runs["flow"]),
        ]
    )
    assert not state_dicts_equal(
        latest_step_dir(first) / "model.safetensors",
        latest_step_dir(work / f"repro-{name}-seed4") / "model.safetensors",
    )


# ----------------------------------------------------------------------------- clear errors


def test_collect_unknown_task_lists_known_ones(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["collect", "toy/nope", "--episodes", "2", "--out", str(work / "nope"), "--no-progress"])
    assert_clean_error(err, capsys.readouterr(), "unknown task 'toy/nope'", "toy/fork", "toy/reach")
    assert not (work / "nope").exists()


def test_bench_unknown_policy_fails_before_any_work(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "bench-nope"
    with pytest.raises(SystemExit) as err:
        main(["bench", "--policies", "mlp", "nope", "--episodes", "2", "--out", str(out), "--no-progress"])
    assert_clean_error(err, capsys.readouterr(), "unknown policy 'nope'", *POLICIES)
    assert not out.exists()


def test_bench_default_suite_trains_a_student_after_its_teacher(work: Path) -> None:
    out = work / "bench-student"
    tiny = ["--episodes", "10", "--steps", "5", "--eval-episodes", "4", "--device", "cpu", "--no-progress"]
    main(["bench", "--policies", "distilled", "flow", *tiny, "--out", str(out)])
    teacher = json.loads((out / "distilled" / "config.json").read_text())["policy"]["teacher"]
    assert Path(teacher) == out / "flow"
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert set(summary["policies"]) == {"flow", "distilled"}


def test_bench_default_suite_student_needs_its_teacher(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "bench-no-teacher"
    with pytest.raises(SystemExit) as err:
        main(["bench", "--policies", "mlp", "distilled", "--episodes", "2", "--out", str(out), "--no-progress"])
    assert_clean_error(err, capsys.readouterr(), "distils a 'flow' teacher")
    assert not out.exists()


def malformed_datasets(root: Path) -> dict[str, tuple[Path, str]]:
    """Folder -> fragment the error must contain."""
    empty = root / "empty"
    empty.mkdir(exist_ok=True)
    garbage = root / "garbage"
    (garbage / "meta").mkdir(parents=True, exist_ok=True)
    (garbage / "meta" / "info.json").write_text("{this is not json")
    not_object = root / "not-object"
    (not_object / "meta").mkdir(parents=True, exist_ok=True)
    (not_object / "meta" / "info.json").write_text("[1, 2, 3]")
    return {
        "empty": (empty, "info.json: missing"),
        "garbage": (garbage, "info.json: not valid JSON"),
        "not-object": (not_object, "info.json: expected a JSON object"),
        "nonexistent": (root / "does-not-exist", "no such dataset folder"),
    }


@pytest.mark.parametrize("command", ["train", "inspect"])
@pytest.mark.parametrize("case", ["empty", "garbage", "not-object", "nonexistent"])
def test_malformed_dataset_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, case: str
) -> None:
    folder, fragment = malformed_datasets(tmp_path)[case]
    extra = [*TRAIN, "--out", str(tmp_path / "run"), *policy_args("mlp")] if command == "train" else []
    with pytest.raises(SystemExit) as err:
        main([command, str(folder), *extra])
    message = assert_clean_error(err, capsys.readouterr(), f"protege {command}: error:", fragment)
    assert folder.name in message
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_run_folder_with_checkpoints(
    runs: dict[str, Path], fork_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = runs["mlp"]
    before = (latest_step_dir(run) / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit) as err:
        main(["train", str(fork_data), *TRAIN, "--out", str(run), *policy_args("mlp")])
    assert_clean_error(err, capsys.readouterr(), "already has checkpoints", "--resume", str(run))
    assert (latest_step_dir(run) / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("task", [[], ["--task", "toy/fork"]])
def test_eval_without_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str], task: list[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["eval", str(tmp_path), *task, "--episodes", "2", "--no-progress"])
    assert_clean_error(err, capsys.readouterr(), "no checkpoint found", str(tmp_path))


def test_bad_numbers_and_config(
    runs: dict[str, Path], fork_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as err:
        main(["eval", str(runs["mlp"]), "--episodes", "0", "--out", str(tmp_path / "e"), "--no-progress"])
    assert_clean_error(err, capsys.readouterr(), "--episodes must be >= 1")

    with pytest.raises(SystemExit) as err:
        main(["train", str(fork_data), *TRAIN, "--save-every", "0", "--out", str(tmp_path / "r"), *policy_args("mlp")])
    assert_clean_error(err, capsys.readouterr(), "--save-every must be >= 1")

    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as err:
        main(["train", "--config", str(bad), "--out", str(tmp_path / "r2")])
    assert_clean_error(err, capsys.readouterr(), "--config", str(bad))
    with pytest.raises(SystemExit) as err:
        main(["train", "--config", str(tmp_path / "missing.json")])
    assert_clean_error(err, capsys.readouterr(), "--config", "missing.json")


# ---------------------------------------------------------------------------- policy API shapes


@pytest.mark.parametrize("name", list(POLICIES))
def test_policy_rejects_wrong_action_and_observation_shapes(runs: dict[str, Path], fork_data: Path, name: str) -> None:
    policy = load_policy(runs[name])
    cfg = policy.config
    store = read_dataset(fork_data)
    batch = WindowSampler(store, cfg.n_obs, cfg.horizon).gather(torch.arange(4))
    assert policy.loss(batch).shape == (4,)

    wrong_action = {**batch, "action": torch.zeros(4, cfg.horizon, 3)}
    with pytest.raises(ValueError, match=r"dimension 3 .*expects 2"):
        policy.loss(wrong_action)

    obs = {"observation.state": batch["observation.state"]}
    assert policy.predict(obs).shape == (4, cfg.horizon, 2)
    wrong_obs = {"observation.state": torch.zeros(4, cfg.n_obs, 5)}
    with pytest.raises(ValueError) as err:
        policy.predict(wrong_obs)
    message = str(err.value)
    assert "observation.state" in message and f"(B, {cfg.n_obs}, 4)" in message and "5" in message


def test_bench_policies_suite_tiny_and_resumable(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "matrix"
    args = [
        "bench",
        "--suite",
        "policies",
        "--tasks",
        "toy/fork",
        "toy/reach",
        "--policies",
        "mlp",
        "knn",
        "flow",
        "distilled",
        "--num-seeds",
        "2",
        "--episodes",
        "20",
        "--steps",
        "20",
        "--batch-size",
        "32",
        "--eval-episodes",
        "10",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--no-progress",
    ]
    main(args)
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["tasks"]) == {"toy/fork", "toy/reach"} and "machine" in summary
    for task, families in summary["tasks"].items():
        assert set(families) == {"mlp", "knn", "flow", "distilled"}
        for name, r in families.items():
            assert len(r["per_seed"]) == 2 and r["t95_over_seeds"][0] <= r["mean_success"] <= r["t95_over_seeds"][1]
            assert r["inference_ms_per_action"]["batch_64"] > 0 and f"| `{task}` | {name} |" in printed
        assert families["knn"]["train_samples_per_s"] is None  # fitted, not trained
        # every family of a seed ran on the same seed list: one paired table per seed
        with (out / task.replace("/", "-") / "seed1" / "eval" / "episodes.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 4 * 10 and len({r["seed"] for r in rows}) == 10
        flow_returns = []  # the summary's return is pooled over every seed's episodes
        for seed in ("seed0", "seed1"):
            with (out / task.replace("/", "-") / seed / "eval" / "episodes.csv").open(newline="") as f:
                flow_returns += [float(r["return"]) for r in csv.DictReader(f) if r["policy"] == "flow"]
        assert families["flow"]["mean_return"] == pytest.approx(sum(flow_returns) / 20)
    teacher = json.loads((out / "toy-fork" / "seed0" / "distilled" / "config.json").read_text())["policy"]["teacher"]
    assert teacher.endswith("seed0/flow")
    stamp = (out / "toy-fork" / "seed0" / "mlp" / "checkpoints" / "latest.json").stat().st_mtime_ns
    main(args)  # a finished matrix is reused, not retrained
    assert (out / "toy-fork" / "seed0" / "mlp" / "checkpoints" / "latest.json").stat().st_mtime_ns == stamp
    assert (
        json.loads((out / "summary.json").read_text())["tasks"]["toy/fork"]["mlp"]["per_seed"]
        == summary["tasks"]["toy/fork"]["mlp"]["per_seed"]
    )


def test_bench_policies_suite_pairs_families_against_a_baseline(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--suite", "policies", "--tasks", "toy/fork", "--policies", "mlp", "knn", "--baseline", "mlp"]
    tiny = ["--num-seeds", "2", "--episodes", "10", "--steps", "5", "--eval-episodes", "6", "--no-progress"]
    main([*args, *tiny, "--device", "cpu", "--out", str(work / "paired")])
    families = json.loads((work / "paired" / "summary.json").read_text())["tasks"]["toy/fork"]
    vs = families["knn"]["vs_baseline"]
    assert "vs_baseline" not in families["mlp"] and 0 <= vs["mcnemar"]["p_value"] <= 1
    assert vs["difference"] == pytest.approx(families["knn"]["mean_success"] - families["mlp"]["mean_success"])
    assert "vs mlp: difference" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        main([*args[:-1], "gmm", *tiny, "--out", str(work / "bad")])
    assert_clean_error(err, capsys.readouterr(), "baseline 'gmm' is not one of the arms")


def test_bench_policies_student_needs_its_teacher(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(
            [
                "bench",
                "--suite",
                "policies",
                "--tasks",
                "toy/fork",
                "--policies",
                "distilled",
                "--out",
                str(work / "nt"),
                "--no-progress",
            ]
        )
    assert_clean_error(err, capsys.readouterr(), "distils a 'flow' teacher")


@pytest.mark.parametrize("spelling", [["--threads", "1"], ["--threads=1"]])
def test_threads_option_sets_torch_threads_for_any_command(fork_data: Path, spelling: list[str]) -> None:
    before = torch.get_num_threads()
    try:
        main(["inspect", str(fork_data), *spelling])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for bad in (["--threads", "0"], ["--threads"], ["--threads=two"]):
        with pytest.raises(SystemExit, match="--threads needs a positive number"):
            main(["inspect", str(fork_data), *bad])
