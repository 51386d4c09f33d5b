"""Find what a folder holds for a report: evaluations (``episodes.csv`` + ``summary.json``), training
runs (``config.json`` + ``metrics.jsonl``), datasets, a benchmark's settings and summary, rollout
videos and sampling-steps measurements. Works on a run, an eval, a default bench or a matrix
folder alike, because each is found by the files it leaves, not by the command that wrote it.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

#: Folders never searched: the report itself, checkpoints (weights), datasets (found separately).
SKIPPED = {"report", "checkpoints", "tensorboard", "wandb", "videos"}


@dataclass
class Run:
    """One training run: its config, its metrics rows, and the (task, label) its evaluation calls it."""

    folder: Path
    config: dict
    metrics: list[dict]
    task: str = ""
    label: str = ""

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))


@dataclass
class Evaluation:
    """One eval folder: summary.json, the typed episodes.csv rows, each label's training seed and run."""

    folder: Path
    summary: dict
    rows: list[dict]
    runs: dict[str, Run] = field(default_factory=dict)
    videos: list[dict] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.summary.get("task", "")

    def train_seed(self, label: str) -> int:
        """The run's training seed; for runs not kept (committed results), a matrix's ``seed<k>/eval`` folder name."""
        run = self.runs.get(label)
        if run:
            return run.seed
        match = re.fullmatch(r"seed(\d+)", self.folder.parent.name)
        return int(match.group(1)) if match else 0


@dataclass
class Gathered:
    """Everything a report shows, found under one path."""

    root: Path
    kind: str
    evaluations: list[Evaluation]
    runs: list[Run]
    bench_config: dict | None = None
    bench_summary: dict | None = None
    datasets: list[Path] = field(default_factory=list)
    sampling: list[dict] = field(default_factory=list)


def shown_path(path: Path, root: Path) -> Path:
    """A path as a report names it: relative to the reported folder when inside it."""
    path, root = path.resolve(), root.resolve()
    return path.relative_to(root) if path.is_relative_to(root) else path


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"'{path}' is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"'{path}' holds {type(data).__name__}, not a JSON object")
    return data


def _rows(path: Path) -> list[dict]:
    """episodes.csv with its types back: success a bool, numbers as numbers, max_progress None when empty."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        try:
            row["success"] = row["success"] == "True"
            row["seed"] = int(row["seed"])
            row["length"] = int(row["length"])
            row["return"] = float(row["return"])
            row["max_progress"] = float(row["max_progress"]) if row.get("max_progress") else None
        except (KeyError, ValueError) as err:
            raise ValueError(f"'{path}' row {i + 2}: {err!r} (not an episodes.csv written by protege eval)") from None
    return rows


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _walk(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself included) but the skipped ones and datasets (meta/info.json)."""
    found, stack = [], [root]
    while stack:
        folder = stack.pop()
        found.append(folder)
        if (folder / "meta" / "info.json").exists() and folder != root:
            continue
        stack += sorted((p for p in folder.iterdir() if p.is_dir() and p.name not in SKIPPED), reverse=True)
    return found


def _run_of(checkpoint: str, eval_dir: Path, label: str, runs: dict[Path, Run]) -> Run | None:
    """The run a row's checkpoint came from: an ancestor of the checkpoint folder that is a run. A
    relative checkpoint path (as `protege eval` was given it) is tried from the working folder and
    from each folder above the eval folder; last, the run named like the label beside the eval folder."""
    given = Path(checkpoint)
    bases = [Path.cwd()] if given.is_absolute() else [Path.cwd(), *eval_dir.resolve().parents]
    for base in bases:
        path = (base / given).resolve()
        if not path.exists():
            continue
        for folder in (path, *path.parents):
            if folder not in runs and _is_run(folder):  # a run outside the reported folder (`protege report RUN/eval`)
                runs[folder] = _read_run(folder)
            if folder in runs:
                return runs[folder]
    return runs.get((eval_dir.parent / label).resolve())


def _is_run(folder: Path) -> bool:
    return (folder / "config.json").exists() and (folder / "metrics.jsonl").exists()


def _read_run(folder: Path) -> Run:
    return Run(folder, _json(folder / "config.json"), _metrics(folder / "metrics.jsonl"))


def _videos(eval_dir: Path, summary: dict) -> list[dict]:
    """The videos this evaluation recorded, as its summary.json lists them (a manifest left from an
    earlier evaluation into the same folder is not this one's); a listed file that is gone is refused."""
    entries = summary.get("videos", [])
    missing = [e["file"] for e in entries if not (eval_dir / e["file"]).exists()]
    if missing:
        raise FileNotFoundError(f"'{eval_dir / 'summary.json'}' lists videos that are gone: {missing[:3]}")
    return [{**e, "path": eval_dir / e["file"]} for e in entries]


def gather(root: Path) -> Gathered:
    """Read every evaluation, run, dataset and benchmark file under ``root`` (a folder, or a
    sampling-steps JSON written by benchmarks/sampling_steps.py)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such run, eval or bench folder: '{root}'")
    if root.is_file():
        data = _json(root)
        if not any(isinstance(v, dict) and "variants" in v for v in data.values()):
            raise ValueError(f"'{root}' is not a folder nor a sampling-steps JSON (benchmarks/sampling_steps.py)")
        return Gathered(root, "sampling", [], [], sampling=[data])
    folders = _walk(root)
    runs = {f.resolve(): _read_run(f) for f in folders if _is_run(f)}
    evaluations = []
    for folder in folders:
        if not ((folder / "episodes.csv").exists() and (folder / "summary.json").exists()):
            continue
        summary = _json(folder / "summary.json")
        ev = Evaluation(folder, summary, _rows(folder / "episodes.csv"), videos=_videos(folder, summary))
        for label in ev.summary.get("policies", {}):
            checkpoint = next((r["checkpoint"] for r in ev.rows if r["policy"] == label), "")
            run = _run_of(checkpoint, folder, label, runs)
            if run is not None:
                run.task, run.label = ev.task, label
                ev.runs[label] = run
        evaluations.append(ev)
    for run in runs.values():  # a run never evaluated: its task from the checkpoint's config, label its family
        run.label = run.label or run.config.get("policy", {}).get("name", run.folder.name)
        run.task = run.task or _trained_task(run)
    if not evaluations and not runs:
        raise ValueError(f"'{root}' holds no evaluation (episodes.csv + summary.json) and no run (metrics.jsonl)")
    datasets = [folder for folder in folders if (folder / "meta" / "info.json").exists()]
    bench_config = _json(root / "bench_config.json") if (root / "bench_config.json").exists() else None
    bench_summary = next(  # a matrix's summary.json (per-task arms), else a default bench's eval summary
        (
            data
            for path in (root / "summary.json", root / "eval" / "summary.json")
            if path.exists() and ("tasks" in (data := _json(path)) or bench_config)
        ),
        None,
    )
    kind = "bench" if bench_config or bench_summary else "eval" if evaluations else "run"
    sampling = [_json(p) for p in sorted(root.glob("sampling*.json"))]
    return Gathered(root, kind, evaluations, list(runs.values()), bench_config, bench_summary, datasets, sampling)


def _trained_task(run: Run) -> str:
    latest = run.folder / "checkpoints" / "latest.json"
    if not latest.exists():
        return ""
    step = json.loads(latest.read_text()).get("dir", "")
    config = run.folder / "checkpoints" / step / "config.json"
    return json.loads(config.read_text()).get("task", "") if step and config.exists() else ""
