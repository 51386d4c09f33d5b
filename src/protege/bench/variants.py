"""Sampling-time settings checked without retraining: a trained run at its own settings and with
config fields changed (execution length, sampler steps...), evaluated on one shared seed list.

A variant is the run's own (EMA) weights with fields set in its config, saved as a checkpoint
folder and evaluated beside the run in one ``evaluate`` call. Per task the episodes of all its runs
are pooled and each variant is paired with the runs' own settings: exact McNemar on success and,
for a task with a progress signal, the t-interval of the paired max-progress difference. This is
how a sampling-time default is checked on tasks other than the one it was chosen on.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from protege.config import EVAL_SEED, EvalConfig
from protege.evaluate.evaluate import checkpoint_task, evaluate
from protege.evaluate.stats import mcnemar_exact, mean_interval
from protege.policies.storage import load_policy, save_policy

OWN = "own-settings"


def parse_setting(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def write_variant(run: Path, folder: Path, task: str, changes: dict) -> Path:
    """The run's policy with config fields changed, saved as its own checkpoint folder."""
    policy = load_policy(run)
    for key, value in changes.items():
        if not hasattr(policy.config, key):
            raise ValueError(f"{run}: {policy.config.name} has no setting '{key}'")
        setattr(policy.config, key, value)
    policy.config.__post_init__()  # validate the changed values
    return save_policy(policy, folder, task=task)


def compare_variants(runs: list[Path], variants: dict[str, dict], episodes: int, out: Path) -> dict:
    """Per task: every variant's success (and mean max progress) pooled over runs, paired with the
    runs' own settings."""
    pooled: dict[str, dict[str, dict[str, list]]] = {}
    for i, run in enumerate(runs):
        task, key = checkpoint_task(run), f"{i}-{run.name}"  # run folders may share a name
        folders = {OWN: run} | {
            name: write_variant(run, out / "variants" / key / name, task, changes) for name, changes in variants.items()
        }
        report = evaluate(
            EvalConfig(
                checkpoints=tuple(folders.values()),
                labels=tuple(folders),
                task=task,
                episodes=episodes,
                seed=EVAL_SEED,
                out=out / "eval" / key,
                progress=False,
            )
        )
        rows = read_rows(Path(report["out"]) / "episodes.csv")
        for label in folders:
            entry = pooled.setdefault(task, {}).setdefault(label, {"success": [], "progress": [], "runs": []})
            mine = [r for r in rows if r["policy"] == label]
            entry["success"] += [r["success"] == "True" for r in mine]
            entry["progress"] += [float(r["max_progress"]) for r in mine if r["max_progress"] != ""]
            entry["runs"].append(str(run))
    return {task: summarize(arms) for task, arms in pooled.items()}


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def summarize(arms: dict[str, dict[str, list]]) -> dict:
    own = arms[OWN]
    out = {}
    for label, arm in arms.items():
        success = np.array(arm["success"])
        entry = {"runs": len(arm["runs"]), "episodes": len(success), "success_rate": float(success.mean())}
        if arm["progress"]:
            entry["mean_max_progress"] = float(np.mean(arm["progress"]))
        if label != OWN:
            entry["mcnemar_vs_own"] = mcnemar_exact(success, np.array(own["success"]))
            if arm["progress"]:
                diff = np.array(arm["progress"]) - np.array(own["progress"])
                entry["paired_progress_diff_ci95"] = mean_interval(diff)
        out[label] = entry
    return out
