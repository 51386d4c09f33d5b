"""A training run killed with SIGKILL leaves a consistent run folder, and `--resume` finishes it
bit-identically to a run that was never interrupted (weights, EMA, optimizer and RNG state)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from protege.cli import main
from protege.policies.storage import load_policy, resolve_checkpoint

STEP_FILES = ("model.safetensors", "ema.safetensors", "config.json", "train_state.safetensors", "train_state.json")
LOG_EVERY = 10
KILL_AFTER = 100


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "fork"
    main(["collect", "toy/fork", "--episodes", "30", "--num-envs", "30", "--out", str(out), "--no-progress"])
    return out


def train_args(data: Path, steps: int, save_every: int = 50, policy: str = "mlp") -> list[str]:
    return [
        "train",
        str(data),
        "--steps",
        str(steps),
        "--save-every",
        str(save_every),
        "--log-every",
        str(LOG_EVERY),
        "--eval-every",
        "0",
        "--batch-size",
        "64",
        "--device",
        "cpu",
        "--no-progress",
        f"policy:{policy}",
        "--policy.hidden-dim",
        "64",
    ]


def protege_command() -> list[str]:
    script = Path(sys.executable).with_name("protege")
    return [str(script)] if script.exists() else [sys.executable, "-m", "protege.cli"]


def latest(run: Path) -> dict:
    return json.loads((run / "checkpoints" / "latest.json").read_text())


def step_dir(run: Path) -> Path:
    return run / "checkpoints" / latest(run)["dir"]


def assert_same_tensors(a: Path, b: Path) -> None:
    x, y = load_file(a), load_file(b)
    assert x.keys() == y.keys(), (a, b)
    different = [k for k in x if not torch.equal(x[k], y[k])]
    assert not different, f"{a} and {b} differ in {different}"


def assert_consistent(run: Path) -> int:
    """latest.json names a complete step folder whose files all load; returns its step."""
    info = latest(run)
    step = info["step"]
    folder = run / "checkpoints" / info["dir"]
    assert info["dir"] == f"step-{step:07d}"
    assert folder.is_dir(), f"latest.json points to missing {folder}"
    for name in STEP_FILES:
        assert (folder / name).is_file(), f"{folder} lacks {name}"
    assert json.loads((folder / "train_state.json").read_text())["step"] == step
    json.loads((folder / "config.json").read_text())
    for name in ("model.safetensors", "ema.safetensors", "train_state.safetensors"):
        assert load_file(folder / name)
    assert resolve_checkpoint(run) == folder
    load_policy(run)
    return step


def metric_rows(run: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl, a torn last line left out."""
    rows = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def metric_steps(run: Path) -> list[int]:
    return [r["step"] for r in metric_rows(run) if "loss" in r]


def train_and_kill(data: Path, run: Path, steps: int) -> int | None:
    """Start `protege train` as a subprocess and SIGKILL it once a checkpoint >= KILL_AFTER exists.

    Returns the latest checkpointed step at kill time, or None if the run finished before the kill.
    """
    env = {**{k: v for k, v in os.environ.items() if k != "PROTEGE_DEBUG"}, "OMP_NUM_THREADS": "1"}
    log = run.with_suffix(".log")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*protege_command(), *train_args(data, steps), "--out", str(run)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 120
        latest_json = run / "checkpoints" / "latest.json"
        while proc.poll() is None:
            if latest_json.exists() and json.loads(latest_json.read_text())["step"] >= KILL_AFTER:
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, f"no checkpoint >= {KILL_AFTER} after 120 s:\n{log.read_text()}"
            time.sleep(0.002)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode == 0:
        return None
    assert proc.returncode == -signal.SIGKILL, f"train failed (rc {proc.returncode}):\n{log.read_text()}"
    return latest(run)["step"]


def test_killed_run_resumes_bit_identically(data: Path, tmp_path: Path) -> None:
    for steps in (1000, 4000, 16000):  # a longer run if the machine was fast enough to finish first
        run = tmp_path / f"killed-{steps}"
        killed_at = train_and_kill(data, run, steps)
        if killed_at is not None:
            break
    else:
        pytest.fail("training always finished before it could be killed")
    assert KILL_AFTER <= killed_at < steps, "the run must be killed mid-way"

    # the folder a SIGKILL left behind is consistent: latest.json names a complete step folder
    assert assert_consistent(run) == killed_at
    for leftover in (run / "checkpoints").glob(".step-*"):
        assert leftover.name != latest(run)["dir"]

    main([*train_args(data, steps), "--out", str(run), "--resume"])
    assert assert_consistent(run) == steps
    # metrics continue from the resumed step: every logging step once, in order, no gap
    assert metric_steps(run) == list(range(LOG_EVERY, steps + 1, LOG_EVERY))
    assert json.loads((run / "config.json").read_text())["steps"] == steps

    full = tmp_path / "uninterrupted"
    main([*train_args(data, steps), "--out", str(full)])
    assert latest(full)["step"] == steps
    for name in ("model.safetensors", "ema.safetensors", "train_state.safetensors"):
        assert_same_tensors(step_dir(run) / name, step_dir(full) / name)
    assert json.loads((step_dir(run) / "train_state.json").read_text()) == json.loads(
        (step_dir(full) / "train_state.json").read_text()
    )


@pytest.mark.parametrize("policy", ["mlp", "diffusion"])
def test_leftover_temporary_step_folder_is_ignored(data: Path, tmp_path: Path, policy: str) -> None:
    """Simulate a kill during the write of step 80: the folder was still `.step-0000080.tmp-<pid>`,
    so latest.json names step 40. Loading and resuming must use step 40 and ignore the leftover, and
    the result matches the uninterrupted run (diffusion also draws training noise from torch's RNG)."""
    full = tmp_path / "full"
    main([*train_args(data, 80, save_every=40, policy=policy), "--out", str(full)])

    run = tmp_path / "partial"
    shutil.copytree(full, run)
    ckpts = run / "checkpoints"
    shutil.rmtree(ckpts / "step-0000080")
    (ckpts / "latest.json").write_text(json.dumps({"step": 40, "dir": "step-0000040"}))
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 90, "loss": 0.1')  # a line torn by the kill
    leftover = ckpts / ".step-0000080.tmp-99999"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"\x00garbage, half written")
    (leftover / "train_state.json").write_text('{"step": 8')

    assert resolve_checkpoint(run) == ckpts / "step-0000040"
    policy = load_policy(run)
    ema_40 = load_file(ckpts / "step-0000040" / "ema.safetensors")
    assert all(torch.equal(v, ema_40[k]) for k, v in policy.state_dict().items())

    clock_at_40 = [r["train_s"] for r in metric_rows(run) if r.get("step") == 40 and "loss" in r][0]
    # the run's own config.json (it names --out full: copied) replays the options; --out and --resume override
    main(["train", "--config", str(run / "config.json"), "--out", str(run), "--resume"])
    assert assert_consistent(run) == 80
    assert metric_steps(run) == list(range(LOG_EVERY, 81, LOG_EVERY))
    clock = [r["train_s"] for r in metric_rows(run) if "loss" in r]  # training time goes on across the resume
    assert clock == sorted(clock) and clock[0] > 0 and clock[len(clock) // 2 - 1] == clock_at_40
    for name in ("model.safetensors", "ema.safetensors", "train_state.safetensors"):
        assert_same_tensors(ckpts / "step-0000080" / name, full / "checkpoints" / "step-0000080" / name)
    assert sorted(p.name for p in ckpts.glob("step-*")) == ["step-0000040", "step-0000080"]


def test_resume_with_different_policy_options_names_them(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main([*train_args(data, 20, save_every=10), "--out", str(run)])
    before = (step_dir(run) / "model.safetensors").read_bytes()
    mismatches = {
        "--policy.hidden-dim 32": ("policy.hidden_dim: 64 in the checkpoint, 32 now",),
        "policy:diffusion": ("policy.name: 'mlp' in the checkpoint, 'diffusion' now",),
    }
    for change, fragments in mismatches.items():
        args = [*train_args(data, 40, save_every=10), "--out", str(run), "--resume"]
        if change.startswith("policy:"):
            args = args[: args.index("policy:mlp")] + [change] + args[args.index("--out") :]
        else:
            args += change.split()
        with pytest.raises(SystemExit) as err:
            main(args)
        message = str(err.value.code)
        assert "\n" not in message and "Traceback" not in message + capsys.readouterr().err
        for fragment in ("cannot resume", *fragments, "--config", str(run / "config.json")):
            assert fragment in message, message
    assert latest(run)["step"] == 20
    assert (step_dir(run) / "model.safetensors").read_bytes() == before


def test_checkpoint_from_before_a_new_policy_field_resumes(data: Path, tmp_path: Path) -> None:
    """A config field added in a later version is missing from older checkpoints; it reads as its default."""
    run = tmp_path / "run"
    main([*train_args(data, 20, save_every=10, policy="diffusion"), "--out", str(run)])
    for config in (run / "config.json", step_dir(run) / "config.json"):
        saved = json.loads(config.read_text())
        for part in (saved["policy"], saved.get("train", {}).get("policy", {})):
            part.pop("timestep_spacing", None)
        config.write_text(json.dumps(saved))
    main([*train_args(data, 30, save_every=10, policy="diffusion"), "--out", str(run), "--resume"])
    assert latest(run)["step"] == 30
