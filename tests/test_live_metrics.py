"""Live training (issue 16): progress bars that suit a log file, the trainer's postfix, and metrics sent to
TensorBoard and offline wandb that match metrics.jsonl, the source of truth."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import tqdm.std
from test_cli import assert_clean_error

from protege.cli import main
from protege.config import TrainConfig
from protege.policies.mlp import MLPConfig
from protege.progress import INTERVAL_ENV, progress_bar

STEPS, LOG_EVERY = 20, 5
TRAIN = ["--batch-size", "32", "--log-every", str(LOG_EVERY), "--device", "cpu", "--save-every", "10"]
TRAIN += ["--val-fraction", "0.2", "policy:mlp", "--policy.hidden-dim", "32"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("live") / "fork"
    main(["collect", "toy/fork", "--episodes", "12", "--num-envs", "12", "--out", str(out), "--no-progress"])
    return out


@pytest.fixture(scope="module")
def live_run(data: Path) -> tuple[Path, str]:
    """One run with a closed-loop evaluation and both sinks; its stderr, a log file (not a terminal)."""
    run, log = data.parent / "run", io.StringIO()
    args = ["train", str(data), "--steps", str(STEPS), "--eval-every", "10", "--eval-episodes", "4", *TRAIN]
    with contextlib.redirect_stderr(log):
        main([*args, "--out", str(run), "--log", "tensorboard", "wandb"])
    return run, log.getvalue()


def metric_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def tensorboard_scalars(run: Path, key: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return {event.step: event.value for event in events.Scalars(key)}


def wandb_history(run: Path) -> dict[int, dict]:
    """The history rows of the one offline run under RUN/wandb, read from its .wandb file (a LevelDB-style log of
    protobuf records: 32 KiB blocks of chunks, each with a 7-byte header of checksum, length and kind)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
    data, block, pos, chunk, history = path.read_bytes(), 32768, 7, b"", {}  # 7: the file's own header
    while pos + 7 <= len(data):
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if block - pos % block < 7 or (length, kind) == (0, 0):  # a block's zero padding
            pos += block - pos % block
            continue
        chunk, pos = chunk + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a full record, or a record's last chunk
            record = wandb_internal_pb2.Record.FromString(chunk)
            chunk = b""
            if record.WhichOneof("record_type") == "history":
                items = {item.key or "/".join(item.nested_key): item.value_json for item in record.history.item}
                history[record.history.step.num] = {key: json.loads(value) for key, value in items.items()}
    return history


# ----------------------------------------------------------------------------------------- progress bars


def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock of tqdm, moved by hand (and its monitor thread, which reads the real one, off)."""
    now = [0.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    return now


def test_log_gets_a_line_every_few_seconds_and_one_at_the_end(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    now = fake_clock(monkeypatch)
    bar = progress_bar(range(200), desc="reading", unit="ep")  # 200 steps of 0.25 s: 50 s, one line per 5 s
    for i in bar:
        now[0] += 0.25
        if i == 100:
            bar.set_postfix({"loss": "0.5"})
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and err.endswith("\n")
    assert 5 <= len(lines) <= 13, lines  # the start, about one per 5 s, the end
    assert lines[0].startswith("reading 0/200") and lines[-1].startswith("reading 200/200 [00:50<00:00, ")
    assert lines[-1].endswith("ep/s, loss=0.5]")


def test_interval_is_set_by_the_environment_and_leave_false_still_ends_with_a_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    now = fake_clock(monkeypatch)
    monkeypatch.setenv(INTERVAL_ENV, "1000")
    with progress_bar(total=60, desc="eval", unit="ep", leave=False) as bar:
        for _ in range(60):
            now[0] += 10
            bar.update()
    assert capsys.readouterr().err.splitlines() == ["eval 0/60 [00:00<?, ?ep/s]", "eval 60/60 [10:00<00:00, 10.00s/ep]"]
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    with pytest.raises(ValueError, match=f"{INTERVAL_ENV} must be a number of seconds, got 'soon'"):
        progress_bar(total=1)


def test_terminal_gets_tqdms_own_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    for _ in progress_bar(range(3), desc="work"):
        pass
    assert "\r" in sys.stderr.getvalue() and "|" in sys.stderr.getvalue()  # redrawn in place, with its bar


# ---------------------------------------------------------------------------------------------- training


def test_train_bar_shows_loss_throughput_and_last_success(live_run: tuple[Path, str]) -> None:
    run, log = live_run
    assert "\r" not in log
    (last,) = [line for line in log.splitlines() if line.startswith(f"train mlp {STEPS}/{STEPS} ")]
    final = {key: row[key] for row in metric_rows(run) for key in ("loss", "samples_per_s", "success") if key in row}
    assert f"loss={final['loss']:.4f}" in last and f"samples/s={final['samples_per_s']:.0f}" in last
    assert f"success={final['success']:.2f}" in last and "val_loss=" in last
    assert any(line.startswith("eval 4/4 ") for line in log.splitlines())  # the closed-loop bar, as lines too


def test_tensorboard_scalars_equal_metrics_jsonl(live_run: tuple[Path, str]) -> None:
    run, _ = live_run
    rows = metric_rows(run)
    for key in ("loss", "lr", "val_loss", "success"):
        logged = {row["step"]: row[key] for row in rows if key in row}
        assert logged and tensorboard_scalars(run, key) == {s: float(np.float32(v)) for s, v in logged.items()}


def test_wandb_offline_history_equals_metrics_jsonl(live_run: tuple[Path, str]) -> None:
    run, _ = live_run
    history = wandb_history(run)
    assert sorted(history) == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
    for row in metric_rows(run):  # the training and evaluation rows of one step are one wandb row
        assert {k: history[row["step"]][k] for k in row if k != "step"} == {k: v for k, v in row.items() if k != "step"}
    assert not list(run.glob("wandb/offline-run-*/files/output.log"))  # the terminal is not captured


def test_resumed_run_sends_only_its_new_rows_and_an_older_config_resumes(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    main(["train", str(data), "--steps", "10", "--eval-every", "0", "--no-progress", *TRAIN, "--out", str(run)])
    config = json.loads((run / "config.json").read_text())
    del config["log"]  # a run config written before --log existed
    (run / "config.json").write_text(json.dumps(config))
    main(["train", "--config", str(run / "config.json"), "--steps", str(STEPS), "--resume", "--log", "tensorboard"])
    losses = {row["step"]: row["loss"] for row in metric_rows(run) if "loss" in row}
    assert sorted(losses) == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
    assert tensorboard_scalars(run, "loss") == {s: float(np.float32(losses[s])) for s in (15, 20)}
    assert json.loads((run / "config.json").read_text())["log"] == ["tensorboard"]
    cfg = TrainConfig(dataset=data, policy=MLPConfig(), log=("tensorboard", "wandb"))
    assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json(), default=str))) == cfg


@pytest.mark.parametrize("extra, module", [("tensorboard", "torch.utils.tensorboard"), ("wandb", "wandb")])
def test_missing_package_names_its_extra_before_training(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, extra: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(SystemExit) as err:
        main(["train", str(data), "--no-progress", *TRAIN, "--out", str(tmp_path / "run"), "--log", extra])
    assert_clean_error(err, capsys.readouterr(), f"--log {extra} needs the '{extra}' extra", f"protege[{extra}]")
    assert not (tmp_path / "run").exists()
