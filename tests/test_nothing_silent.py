"""Bad options, diverging runs, kills and evaluation batches: each one an error before work, a
kept result, or the same outcome (issue 14). Damaged files are tests/test_corruption.py's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import assert_clean_error, protege_command

from protege.atomic import clean_stale, sibling
from protege.bench.suites import bench_folder
from protege.cli import main
from protege.config import BenchConfig, EvalConfig
from protege.evaluate.actor import PolicyActor
from protege.evaluate.evaluate import evaluate
from protege.formats import read_dataset
from protege.policies.storage import load_policy, resolve_checkpoint
from protege.train import trainer

TRAIN = ["--batch-size", "32", "--eval-every", "0", "--device", "cpu", "--no-progress", "--val-fraction", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("silent") / "fork"
    main(["collect", "toy/fork", "--episodes", "12", "--num-envs", "12", "--out", str(out), "--no-progress"])
    return out


@pytest.fixture(scope="module")
def diffusion_run(data: Path) -> Path:
    out = data.parent / "diffusion"
    main(["train", str(data), *TRAIN, "--steps", "30", "--out", str(out), "policy:diffusion"])
    return out


@pytest.mark.parametrize(
    "options, flag",
    [
        (["--steps", "0"], "--steps must be >= 1"),
        (["--steps", "-1"], "--steps must be >= 1"),
        (["--val-fraction", "-0.5"], "--val-fraction must be in [0, 1)"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--eval-task", "toy/forks", "--eval-every", "10"], "--eval-task 'toy/forks' is not a task"),
        (["--eval-task", "metaworld/push", "--eval-every", "10"], "2-D actions where the task takes 4-D"),
    ],
)
def test_bad_training_options_fail_before_any_step(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], flag: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as err:
        main(["train", str(data), *TRAIN, "--steps", "5", *options, "--out", str(out), "policy:mlp"])
    assert_clean_error(err, capsys.readouterr(), flag)
    assert not (out / "checkpoints").exists()


def test_diverging_run_stops_and_keeps_the_last_finite_checkpoint(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(data), *TRAIN, "--save-every", "10", "--out", str(out)]
    main([*args, "--steps", "10", "policy:mlp"])  # a finite checkpoint at step 10
    with pytest.raises(SystemExit, match="training stopped, the last finite checkpoint is kept: .*step-0000010"):
        main(
            [
                *args,
                "--steps",
                "40",
                "--resume",
                "--lr",
                "1e30",
                "--warmup-steps",
                "0",
                "--grad-clip",
                "0",
                "policy:mlp",
            ]
        )
    assert resolve_checkpoint(out).name == "step-0000010"
    assert all(torch.isfinite(v).all() for v in load_policy(out).state_dict().values() if v.is_floating_point())
    for line in (out / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in metrics.jsonl"))  # strict JSON


def test_nonfinite_steps_are_skipped_and_counted_when_asked(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every third loss is NaN: with --on-nonfinite skip those updates are skipped and counted."""
    from protege.curation.curate import Curation

    reduce, calls = Curation.reduce, [0]

    def every_third_nan(self, losses, batch):
        calls[0] += 1
        loss = reduce(self, losses, batch)
        return loss * float("nan") if calls[0] % 3 == 0 else loss

    monkeypatch.setattr(Curation, "reduce", every_third_nan)
    out = tmp_path / "run"
    main(["train", str(data), *TRAIN, "--steps", "12", "--log-every", "6", "--on-nonfinite", "skip", "--out", str(out)])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("skipped_steps") for r in rows] == [2, 2]
    assert all(np.isfinite(r["loss"]) for r in rows)
    assert all(torch.isfinite(v).all() for v in load_policy(out).state_dict().values() if v.is_floating_point())


def test_failed_evaluation_keeps_the_trained_checkpoint(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise ValueError("simulated evaluation failure")

    monkeypatch.setattr(trainer, "closed_loop", broken)
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match="simulated evaluation failure"):
        main(["train", str(data), *TRAIN, "--steps", "8", "--eval-every", "100", "--out", str(out), "policy:mlp"])
    assert resolve_checkpoint(out).name == "step-0000008"


def test_resumed_metrics_match_when_save_every_is_not_a_multiple_of_log_every(data: Path, tmp_path: Path) -> None:
    """Logged every 4 steps, saved every 6: the checkpoint at step 18 falls inside the row of steps
    17-20, which a run resumed there must log as the uninterrupted run did."""
    args = [*TRAIN, "--steps", "24", "--log-every", "4", "--save-every", "6"]
    for name in ("full", "part"):
        main(["train", str(data), *args, "--out", str(tmp_path / name), "policy:mlp"])
    part = tmp_path / "part"
    shutil.rmtree(part / "checkpoints" / "step-0000024")  # as if killed between step 18 and step 24
    (part / "checkpoints" / "latest.json").write_text(json.dumps({"step": 18, "dir": "step-0000018"}))
    main(["train", str(data), *args, "--out", str(part), "--resume", "policy:mlp"])

    def losses(run: Path) -> list[tuple]:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [(r["step"], r["loss"], r["grad_norm"], r["lr"]) for r in rows if "loss" in r]

    assert [row[0] for row in losses(part)] == [4, 8, 12, 16, 20, 24]
    assert losses(part) == losses(tmp_path / "full")


def test_episode_noise_depends_on_its_seed_not_on_its_batch(diffusion_run: Path) -> None:
    policy = load_policy(diffusion_run)
    obs = {"observation.state": np.zeros((1, 4), np.float32)}

    def chunk_of_seed_7(seeds: list[int]) -> torch.Tensor:
        actor = PolicyActor(policy)
        actor.reset(np.array(seeds))
        actor.observe({k: np.repeat(v, len(seeds), axis=0) for k, v in obs.items()})
        return actor._predict()[seeds.index(7)]

    alone = chunk_of_seed_7([7])
    assert torch.allclose(chunk_of_seed_7([3, 7, 11]), alone, atol=1e-5)
    assert torch.allclose(chunk_of_seed_7([7, 0, 1, 2, 5]), alone, atol=1e-5)


def test_evaluation_outcomes_do_not_depend_on_num_envs(diffusion_run: Path, tmp_path: Path) -> None:
    def rows(num_envs: int) -> list[tuple]:
        cfg = EvalConfig(
            checkpoints=(diffusion_run,), episodes=6, num_envs=num_envs, out=tmp_path / str(num_envs), progress=False
        )
        evaluate(cfg)
        lines = (tmp_path / str(num_envs) / "episodes.csv").read_text().splitlines()[1:]
        return [tuple(line.split(",")[3:7]) for line in lines]  # seed, success, return, length

    one = rows(1)
    assert rows(4) == one and rows(6) == one


def test_evaluation_refuses_nan_actions(diffusion_run: Path, tmp_path: Path) -> None:
    """NaN weights are refused at load (tests/test_corruption.py); NaN produced at run time stops too."""
    policy = load_policy(diffusion_run)
    policy.predict_normalized = lambda features, noise: torch.full((len(features), 16, 2), float("nan"))
    actor = PolicyActor(policy)
    actor.reset(np.array([0]))
    with pytest.raises(ValueError, match="NaN/inf actions"):
        actor.act({"observation.state": np.zeros((1, 4), np.float32)})


def test_num_envs_zero_is_refused(diffusion_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["eval", str(diffusion_run), "--episodes", "2", "--num-envs", "0", "--out", str(tmp_path / "e")])
    assert_clean_error(err, capsys.readouterr(), "--num-envs must be >= 1, got 0")


def test_unusable_output_path_is_one_line(diffusion_run: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit) as err:
        main(["eval", str(diffusion_run), "--episodes", "1", "--out", str(tmp_path / "file" / "eval"), "--no-progress"])
    assert_clean_error(err, capsys.readouterr(), str(tmp_path / "file"))


def test_existing_destination_names_the_flag(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dest").mkdir()
    with pytest.raises(SystemExit) as err:
        main(["import", str(data), str(tmp_path / "dest"), "--no-progress"])
    assert_clean_error(err, capsys.readouterr(), "pass --overwrite to replace it")


def test_collect_with_nothing_succeeding_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["collect", "toy/fork", "--episodes", "2", "--epsilon", "1", "--success-only", "--no-progress"])
    assert_clean_error(err, capsys.readouterr(), "--success-only keeps nothing")


# ------------------------------------------------------------------------------------ kills


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_old_copy_left_by_a_kill_between_renames_is_restored(tmp_path: Path) -> None:
    """Where renameat2 is missing, --overwrite renames the old folder aside, then the new one in; a
    kill between the two leaves only `.NAME.old-HOST-PID`. The next write beside it puts it back."""
    old = sibling(tmp_path / "dest", "old", pid=dead_pid())
    old.mkdir()
    (old / "kept").write_text("old data")
    leftover = sibling(tmp_path / "dest", "tmp", pid=dead_pid())
    elsewhere = tmp_path / f".dest.tmp-othermachine-{dead_pid()}"  # a writer on another machine: not judged here
    elsewhere.mkdir()
    leftover.mkdir()
    alive = sibling(tmp_path / "other", "tmp")  # this process's own, still being written
    alive.mkdir()
    clean_stale(tmp_path)
    assert (tmp_path / "dest" / "kept").read_text() == "old data"
    assert not old.exists() and not leftover.exists() and alive.exists() and elsewhere.exists()


def test_overwrite_killed_at_any_moment_leaves_a_readable_destination(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    main(["import", str(data), str(dest), "--no-progress"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for delay in (0.8, 1.2, 1.6, 2.0, 2.5, 3.0):
        process = subprocess.Popen(
            [*protege_command(), "import", str(data), str(dest), "--overwrite", "--no-progress"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert read_dataset(dest).num_episodes == 12  # the old copy or the new one, never none
    main(["import", str(data), str(dest), "--overwrite", "--no-progress"])
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".dest.")]


# ------------------------------------------------------------------------------------ bench


def test_bench_resumes_its_unfinished_folder_without_out(tmp_path: Path) -> None:
    cfg = BenchConfig(episodes=4, steps=2, eval_episodes=2, progress=False)
    first = bench_folder(cfg, finished="table.txt")
    assert bench_folder(cfg, finished="table.txt") == first  # same settings, not finished: resumed
    assert bench_folder(BenchConfig(episodes=5, steps=2, progress=False), finished="table.txt") != first
    (first / "table.txt").write_text("done")
    assert bench_folder(cfg, finished="table.txt") != first  # a finished one is never reused
    with pytest.raises(ValueError, match="started with other settings \\(episodes differ\\)"):
        bench_folder(BenchConfig(episodes=9, steps=2, eval_episodes=2, out=first, progress=False), finished="table.txt")
