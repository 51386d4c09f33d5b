"""The comparison matrix behind ``protege bench --suite policies``: tasks x policy families x seeds.

Per task, one demonstration dataset; per training seed, every family trained with the same budget
and evaluated together on one shared seed list (so every pair is a paired comparison). Per family
and task the summary holds the mean success over training seeds with a 95% t-interval over seeds,
the per-seed rates, the pooled Wilson interval over all evaluation episodes, training samples/s
and inference milliseconds per executed action at batch 1 and 64. Finished runs and evaluations
are reused, so a killed matrix resumes where it stopped.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from protege.collect import collect
from protege.config import CollectConfig, EvalConfig, TrainConfig
from protege.data.store import EpisodeStore
from protege.data.windows import WindowSampler
from protege.evaluate.evaluate import evaluate
from protege.evaluate.stats import interval_over_seeds, wilson_interval
from protege.evaluate.timing import predict_ms
from protege.policies import policy_class
from protege.train.checkpoint import load_policy, write_json_atomic
from protege.train.trainer import train

STUDENT_TEACHER = "flow"  # a student family (one with a ``teacher`` field) distils this family's run


@dataclass
class Matrix:
    """What to run: tasks x families x training seeds, with one budget for every family."""

    tasks: tuple[str, ...]
    policies: tuple[str, ...]
    seeds: int
    episodes: int
    steps: int
    batch_size: int
    eval_episodes: int
    out: Path
    device: str = "auto"
    progress: bool = True


def _is_student(name: str) -> bool:
    return "teacher" in policy_class(name).config_class.__dataclass_fields__


def _check(matrix: Matrix) -> None:
    for name in matrix.policies:
        policy_class(name)  # unknown names fail before minutes of work
        if _is_student(name) and STUDENT_TEACHER not in matrix.policies:
            raise ValueError(f"policy '{name}' distils a '{STUDENT_TEACHER}' teacher: add {STUDENT_TEACHER} to --policies")
    if matrix.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {matrix.seeds}")


def _train_seed(matrix: Matrix, task: str, data: Path, seed: int) -> dict[str, Path]:
    """Every family's run for one training seed (students after their teacher); reuses finished runs."""
    runs: dict[str, Path] = {}
    for name in sorted(matrix.policies, key=_is_student):
        run = matrix.out / task.replace("/", "-") / f"seed{seed}" / name
        if not (run / "checkpoints" / "latest.json").exists():
            config = policy_class(name).config_class(**({"teacher": str(runs[STUDENT_TEACHER])} if _is_student(name) else {}))
            train(TrainConfig(dataset=data, policy=config, out=run, steps=matrix.steps, batch_size=matrix.batch_size,
                              seed=seed, device=matrix.device, eval_every=0, save_every=matrix.steps, progress=matrix.progress))
        runs[name] = run
    return runs


def _samples_per_s(run: Path) -> float | None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    speeds = [r["samples_per_s"] for r in rows if "samples_per_s" in r]
    return statistics.median(speeds) if speeds else None


def inference_ms_per_action(run: Path, store: EpisodeStore, batch: int, repeats: int = 20) -> float:
    """Median milliseconds of one batched predict, divided by the actions it executes (receding)."""
    policy = load_policy(run, device="cpu")
    sampler = WindowSampler(store, policy.config.n_obs, policy.config.horizon)
    windows = sampler.gather(torch.arange(batch) % len(sampler))
    obs = {k: v for k, v in windows.items() if k in policy.spec.obs_shapes}
    noise = policy.sample_noise(batch, torch.Generator().manual_seed(0))
    return predict_ms(policy, obs, noise, repeats) / policy.config.n_action_steps


def run_matrix(matrix: Matrix) -> dict:
    """Run (or resume) the whole matrix and write ``summary.json`` and ``table.md`` under ``out``."""
    _check(matrix)
    results: dict = {"tasks": {}, "budget": {"episodes": matrix.episodes, "steps": matrix.steps, "batch_size": matrix.batch_size,
                                             "training_seeds": matrix.seeds, "eval_episodes_per_seed": matrix.eval_episodes}}
    for task in matrix.tasks:
        folder = matrix.out / task.replace("/", "-")
        data = folder / "data"
        if not (data / "meta" / "info.json").exists():
            collect(CollectConfig(task=task, episodes=matrix.episodes, out=data, overwrite=True, progress=matrix.progress))
        per_seed: dict[str, list[float]] = {name: [] for name in matrix.policies}
        pooled: dict[str, list[bool]] = {name: [] for name in matrix.policies}
        runs: dict[str, Path] = {}
        for seed in range(matrix.seeds):
            runs = _train_seed(matrix, task, data, seed)
            eval_dir = folder / f"seed{seed}" / "eval"
            if not (eval_dir / "summary.json").exists():
                evaluate(EvalConfig(checkpoints=tuple(runs[name] for name in matrix.policies), task=task, episodes=matrix.eval_episodes,
                                    out=eval_dir, device=matrix.device, progress=matrix.progress))
            report = json.loads((eval_dir / "summary.json").read_text())
            for name in matrix.policies:
                per_seed[name].append(report["policies"][name]["success_rate"])
            with (eval_dir / "episodes.csv").open(newline="") as f:
                for row in csv.DictReader(f):
                    pooled[row["policy"]].append(row["success"] == "True")
        store = EpisodeStore.load(data)
        results["tasks"][task] = {
            name: {"mean_success": float(np.mean(per_seed[name])), "t95_over_seeds": interval_over_seeds(per_seed[name]),
                   "per_seed": per_seed[name], "pooled_wilson95": wilson_interval(sum(pooled[name]), len(pooled[name])),
                   "train_samples_per_s": _samples_per_s(runs[name]),
                   "inference_ms_per_action": {f"batch_{b}": inference_ms_per_action(runs[name], store, b) for b in (1, 64)}}
            for name in matrix.policies
        }
        write_json_atomic(matrix.out / "summary.json", results)
    (matrix.out / "table.md").write_text(format_matrix(results) + "\n")
    return results


def format_matrix(results: dict) -> str:
    """Markdown: one row per task and family."""
    lines = ["| task | policy | success: mean over seeds [95% t-CI] (per seed) | pooled 95% Wilson | train samples/s | ms/action b1 / b64 |",
             "|---|---|---|---|---|---|"]
    for task, families in results["tasks"].items():
        for name, r in families.items():
            lo, hi = r["t95_over_seeds"]
            seeds = " / ".join(f"{100 * x:.0f}" for x in r["per_seed"])
            wlo, whi = r["pooled_wilson95"]
            sps = f"{r['train_samples_per_s']:,.0f}" if r["train_samples_per_s"] else "no training"
            ms = r["inference_ms_per_action"]
            lines.append(f"| `{task}` | {name} | {100 * r['mean_success']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}] ({seeds}) | "
                         f"[{100 * wlo:.0f}, {100 * whi:.0f}] | {sps} | {ms['batch_1']:.2f} / {ms['batch_64']:.2f} |")
    return "\n".join(lines)
