"""Metric sinks beside metrics.jsonl, for watching a run live: TensorBoard and wandb (offline), each a pip extra.

metrics.jsonl stays the source of truth: a resume truncates it to the checkpoint's step and logs on from there. A sink
only receives the rows as they are logged, so after a resume it gets the new rows only, and the steps that the
killed process had logged after its last checkpoint reach it twice (TensorBoard draws both points; wandb files the
resumed process as a run of its own, its steps starting again from the checkpoint's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Protocol

from protege.extras import require

#: Sink name (``--log``) -> the module it needs; the extra that installs it has the sink's name.
MODULES = {"tensorboard": "torch.utils.tensorboard", "wandb": "wandb"}


class Sink(Protocol):
    """Where metrics rows go besides metrics.jsonl; ``close`` is told whether the run failed."""

    def log(self, row: dict) -> None: ...

    def close(self, failed: bool) -> None: ...


def scalars(row: dict) -> dict[str, float]:
    """The row's numbers but its ``step``: strings (``stopped``) and missing values (a loss of None) are not plotted."""
    return {
        key: value
        for key, value in row.items()
        if key != "step" and isinstance(value, int | float) and not isinstance(value, bool)
    }


def _plain(config: dict) -> dict:
    """The run's config as JSON values (its paths as strings)."""
    return json.loads(json.dumps(config, default=str))


class TensorBoardSink:
    """Scalars in RUN/tensorboard, one per numeric key of a row, at the row's step; the config as text."""

    def __init__(self, module: ModuleType, run_dir: Path, config: dict) -> None:
        self.writer = module.SummaryWriter(log_dir=str(run_dir / "tensorboard"), flush_secs=10)
        lines = json.dumps(_plain(config), indent=2).splitlines()
        self.writer.add_text("config", "\n".join("    " + line for line in lines))  # a Markdown code block

    def log(self, row: dict) -> None:
        for key, value in scalars(row).items():
            self.writer.add_scalar(key, value, row["step"])

    def close(self, failed: bool) -> None:
        self.writer.close()


class WandbSink:
    """An offline wandb run in RUN/wandb (``wandb sync`` uploads it later), configured with the run's config.

    Offline, so training never waits on or fails with the network; console capture is off, so the progress bar and
    the terminal stay protege's.
    """

    def __init__(self, module: ModuleType, run_dir: Path, config: dict) -> None:
        self.run = module.init(
            mode="offline",
            dir=str(run_dir),
            project="protege",
            name=run_dir.name,
            config=_plain(config),
            settings=module.Settings(console="off", silent=True),
        )

    def log(self, row: dict) -> None:
        self.run.log(scalars(row), step=row["step"])

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


SINKS: dict[str, Callable[[ModuleType, Path, dict], Sink]] = {"tensorboard": TensorBoardSink, "wandb": WandbSink}


def require_sinks(names: Sequence[str]) -> dict[str, ModuleType]:
    """Import each chosen sink's package, so that a missing extra fails in one line before any data is read."""
    return {name: require(MODULES[name], name, what=f"--log {name}") for name in dict.fromkeys(names)}


class MetricSinks:
    """The chosen sinks as one: every metrics row goes to each; closed once, as a context manager (a run that
    raised is marked failed in wandb)."""

    def __init__(self, modules: dict[str, ModuleType], run_dir: Path, config: dict) -> None:
        self.sinks: list[Sink] = []
        try:
            for name, module in modules.items():
                self.sinks.append(SINKS[name](module, run_dir, config))
        except BaseException:
            self.close(failed=True)  # the ones already open
            raise

    def log(self, row: dict) -> None:
        for sink in self.sinks:
            sink.log(row)

    def close(self, failed: bool) -> None:
        for sink in self.sinks:
            sink.close(failed)

    def __enter__(self) -> MetricSinks:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(failed=kind is not None)
