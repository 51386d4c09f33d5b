"""The comparison matrices behind ``protege bench``: tasks x arms x training seeds.

An arm is a policy family trained with a curation (``--suite policies``: every family, uniform
data; ``--suite curation``: one family, every curation, on a mixed-quality dataset). Per task,
one demonstration dataset; per training seed, every arm trained with the same budget and
evaluated together on one shared seed list (so every pair is a paired comparison). Per arm and
task the summary holds the mean success over training seeds with a 95% t-interval over seeds, the
per-seed rates, the pooled Wilson interval, mean max progress (for a task with a progress signal,
such as PushT's coverage) and mean return over all evaluation episodes, training samples/s (median
over the seeds' runs, so one run slowed by a busy machine does not set it), inference milliseconds
per executed action at batch 1 and 64 and, against a baseline arm, the paired difference with its
t-interval over seeds and an exact McNemar test over all episodes.
Finished runs and evaluations are reused, so a killed matrix resumes where it stopped.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protege.atomic import write_json_atomic
from protege.cluster import Fanout
from protege.config import CollectConfig, EvalConfig, TrainConfig
from protege.curation.curate import CurationConfig
from protege.data.store import EpisodeStore
from protege.data.windows import WindowSampler
from protege.demos.collect import collect
from protege.evaluate.evaluate import evaluate
from protege.evaluate.stats import interval_over_seeds, mcnemar_exact, mean_interval, wilson_interval
from protege.evaluate.timing import predict_ms
from protege.formats import read_dataset
from protege.policies import policy_class
from protege.policies.storage import load_policy
from protege.tables import markdown_table
from protege.train.trainer import train

STUDENT_TEACHER = "flow"  # a student family (one with a ``teacher`` field) distils the arm of this name


@dataclass(frozen=True)
class Arm:
    """One contender: a policy family (its default config, less ``settings``) trained with a curation."""

    policy: str
    curation: CurationConfig = field(default_factory=CurationConfig)
    settings: tuple[tuple[str, object], ...] = ()
    """Policy config fields that differ from the family's defaults, as (name, value) pairs."""
    training: tuple[tuple[str, object], ...] = ()
    """Training settings (``TrainConfig`` fields: lr, ema_decay, batch_size, ...) that differ from the
    matrix's, as (name, value) pairs."""


@dataclass
class Matrix:
    """What to run: tasks x arms x training seeds, with one budget for every arm."""

    tasks: tuple[str, ...]
    arms: dict[str, Arm]
    num_seeds: int
    episodes: int
    steps: int
    batch_size: int
    eval_episodes: int
    out: Path
    device: str = "auto"
    progress: bool = True
    mixture: tuple[str, ...] = ()
    """Collect a mixed-quality dataset (``protege collect --mixture``) instead of expert-only."""
    baseline: str = ""
    """Arm every other arm is paired against in the summary (none when empty)."""
    videos: int = 0
    """Rollout videos of up to this many successes and failures per arm and task, of training seed 0 only
    (``seed0/eval/videos/``): one seed shows the behaviour, every seed would multiply the files."""
    train_evals: int = 0
    """Closed-loop evaluations during each training run (for learning curves; 0: none)."""


def eval_every(steps: int, evaluations: int) -> int:
    """``--eval-every`` giving about ``evaluations`` closed-loop evaluations over ``steps`` (0: none)."""
    return max(steps // evaluations, 1) if evaluations > 0 else 0


def is_student(family: str) -> bool:
    """A student family (one with a ``teacher`` field) distils the ``STUDENT_TEACHER`` run beside it."""
    return "teacher" in policy_class(family).config_class.__dataclass_fields__


def check_teacher(families: Iterable[str], runs: Collection[str]) -> None:
    """Fail before any work when a student family has no ``STUDENT_TEACHER`` among the ``runs``."""
    for family in families:
        if is_student(family) and STUDENT_TEACHER not in runs:
            raise ValueError(
                f"policy '{family}' distils a '{STUDENT_TEACHER}' teacher: add {STUDENT_TEACHER} to --policies"
            )


def _check(matrix: Matrix) -> None:
    for arm in matrix.arms.values():
        policy_class(arm.policy)  # unknown names fail before minutes of work
        arm.curation.check()
    check_teacher((arm.policy for arm in matrix.arms.values()), matrix.arms)
    if matrix.num_seeds < 1:
        raise ValueError(f"--num-seeds must be >= 1, got {matrix.num_seeds}")
    if matrix.baseline and matrix.baseline not in matrix.arms:
        raise ValueError(f"baseline '{matrix.baseline}' is not one of the arms {list(matrix.arms)}")


def _folder(matrix: Matrix, task: str, *parts: str) -> Path:
    """A task's folder of the matrix, or a path inside it (``seed0/mlp``, ``data``)."""
    return matrix.out.joinpath(task.replace("/", "-"), *parts)


def _steps(matrix: Matrix, name: str) -> int:
    return int(dict(matrix.arms[name].training).get("steps", matrix.steps))


def _trained(run: Path, steps: int) -> bool:
    """A run whose latest checkpoint is its last step (an intermediate one is resumed, not reused), or
    a fitted family's only checkpoint (step 0: a trained run never checkpoints before its first step)."""
    try:
        step = json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
        return step >= steps or step == 0
    except (OSError, ValueError, KeyError):
        return False


def _train_cell(matrix: Matrix, task: str, data: Path, seed: int, name: str, teacher: Path | None) -> Path:
    """Train (or resume) one (task, arm, training seed) cell; a student distils ``teacher``'s run."""
    arm = matrix.arms[name]
    distils = {"teacher": str(teacher)} if teacher else {}
    config = policy_class(arm.policy).config_class(**dict(arm.settings), **distils)
    settings = {"steps": matrix.steps, "batch_size": matrix.batch_size, **dict(arm.training)}
    return train(
        TrainConfig(
            dataset=data,
            policy=config,
            out=_folder(matrix, task, f"seed{seed}", name),
            seed=seed,
            device=matrix.device,
            eval_every=eval_every(int(settings["steps"]), matrix.train_evals),
            save_every=int(settings["steps"]),
            progress=matrix.progress,
            curation=arm.curation,
            resume=True,  # a cell killed after a checkpoint (or retried by Ray) goes on
            **settings,
        )
    )


def _eval_cell(matrix: Matrix, task: str, seed: int, names: list[str], *runs: Path) -> Path:
    """Evaluate one training seed's runs together on the shared seed list."""
    eval_dir = _folder(matrix, task, f"seed{seed}", "eval")
    evaluate(
        EvalConfig(
            checkpoints=runs,
            labels=tuple(names),
            task=task,
            episodes=matrix.eval_episodes,
            out=eval_dir,
            videos=matrix.videos if seed == 0 else 0,
            device=matrix.device,
            progress=matrix.progress,
        )
    )
    return eval_dir


def _collect_cell(matrix: Matrix, task: str) -> Path:
    """The task's demonstrations (expert, or the matrix's mixture of operators)."""
    data = _folder(matrix, task, "data")
    collect(
        CollectConfig(
            task=task,
            episodes=matrix.episodes,
            out=data,
            overwrite=True,
            progress=matrix.progress,
            mixture=matrix.mixture,
        )
    )
    return data


def _submit_task(fan: Fanout, matrix: Matrix, task: str) -> tuple[Any, list[Any]]:
    """Submit a task's dataset, every cell and every training seed's evaluation (students after their
    teacher). What finished before is reused, not submitted; a seed with a cell to (re)train is
    evaluated again, after it. Handles of (the data, the evaluations)."""
    data_dir = _folder(matrix, task, "data")
    data = data_dir if (data_dir / "meta" / "info.json").exists() else fan.submit(_collect_cell, matrix, task)
    evaluations = []
    for seed in range(matrix.num_seeds):
        runs: dict[str, Any] = {}
        retrained = False
        for name in sorted(matrix.arms, key=lambda n: is_student(matrix.arms[n].policy)):
            run = _folder(matrix, task, f"seed{seed}", name)
            if _trained(run, _steps(matrix, name)):
                runs[name] = run
            else:
                retrained = True
                teacher = runs[STUDENT_TEACHER] if is_student(matrix.arms[name].policy) else None
                runs[name] = fan.submit(_train_cell, matrix, task, data, seed, name, teacher)
        eval_dir = _folder(matrix, task, f"seed{seed}", "eval")
        if (eval_dir / "summary.json").exists() and not retrained:
            evaluations.append(eval_dir)
        else:
            evaluations.append(fan.submit(_eval_cell, matrix, task, seed, list(runs), *runs.values()))
    return data, evaluations


def samples_per_s(run: Path) -> float | None:
    """Median training samples/s over a run's logged windows (None for a fitted, untrained run)."""
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


def run_matrix(matrix: Matrix, fan: Fanout | None = None) -> dict:
    """Run (or resume) the whole matrix and write ``summary.json`` and ``table.md`` under ``out``.
    With a Ray ``fan`` every cell of every task is submitted at once and runs where Ray places it."""
    _check(matrix)
    fan = fan or Fanout()
    results: dict = {
        "tasks": {},
        "budget": {
            "episodes": matrix.episodes,
            "steps": matrix.steps,
            "batch_size": matrix.batch_size,
            "training_seeds": matrix.num_seeds,
            "eval_episodes_per_seed": matrix.eval_episodes,
        },
        "arms": {
            name: {
                "policy": arm.policy,
                "curation": arm.curation.label,
                **({"settings": dict(arm.settings)} if arm.settings else {}),
                **({"training": dict(arm.training)} if arm.training else {}),
            }
            for name, arm in matrix.arms.items()
        },
        "mixture": list(matrix.mixture),
        "baseline": matrix.baseline,
    }
    cells = replace(matrix, progress=matrix.progress and not fan.remote)  # no bars from many workers at once
    # on Ray every task's cells at once; here one task after another, each summarized when it is done
    submitted = {task: _submit_task(fan, cells, task) for task in matrix.tasks} if fan.remote else {}
    for task in matrix.tasks:
        data_handle, evaluations = submitted.get(task) or _submit_task(fan, cells, task)
        data, *eval_dirs = fan.gather([data_handle, *evaluations], desc=f"cells {task}", progress=matrix.progress)
        folder = _folder(cells, task)
        per_seed: dict[str, list[float]] = {name: [] for name in matrix.arms}
        pooled: dict[str, list[bool]] = {name: [] for name in matrix.arms}
        speeds: dict[str, list[float]] = {name: [] for name in matrix.arms}
        returns: dict[str, list[float]] = {name: [] for name in matrix.arms}
        progress: dict[str, list[float]] = {name: [] for name in matrix.arms}  # max progress per episode
        runs: dict[str, Path] = {}
        for seed, eval_dir in enumerate(eval_dirs):
            runs = {name: folder / f"seed{seed}" / name for name in matrix.arms}
            for name, run in runs.items():
                speeds[name] += [x for x in [samples_per_s(run)] if x is not None]
            report = json.loads((eval_dir / "summary.json").read_text())
            for name in matrix.arms:
                per_seed[name].append(report["policies"][name]["success_rate"])
            with (eval_dir / "episodes.csv").open(newline="") as f:
                for row in csv.DictReader(f):
                    pooled[row["policy"]].append(row["success"] == "True")
                    returns[row["policy"]].append(float(row["return"]))
                    if row.get("max_progress"):  # a task with a progress signal (PushT's coverage)
                        progress[row["policy"]].append(float(row["max_progress"]))
        store = read_dataset(data)
        results["tasks"][task] = {
            name: {
                "mean_success": float(np.mean(per_seed[name])),
                "t95_over_seeds": interval_over_seeds(per_seed[name]),
                "per_seed": per_seed[name],
                "pooled_wilson95": wilson_interval(sum(pooled[name]), len(pooled[name])),
                "mean_return": float(np.mean(returns[name])),
                **(
                    {
                        "mean_max_progress": float(np.mean(progress[name])),
                        "max_progress_ci95": mean_interval(progress[name]),
                    }
                    if progress[name]
                    else {}
                ),
                "train_samples_per_s": statistics.median(speeds[name]) if speeds[name] else None,
                "inference_ms_per_action": {
                    f"batch_{b}": inference_ms_per_action(runs[name], store, b) for b in (1, 64)
                },
                **(
                    {"vs_baseline": paired_against(per_seed, pooled, name, matrix.baseline)}
                    if matrix.baseline and name != matrix.baseline
                    else {}
                ),
            }
            for name in matrix.arms
        }
        write_json_atomic(matrix.out / "summary.json", results)
    (matrix.out / "table.md").write_text(format_matrix(results) + "\n")
    return results


def paired_against(per_seed: dict[str, list[float]], pooled: dict[str, list[bool]], name: str, baseline: str) -> dict:
    """Arm minus baseline: mean paired difference over training seeds with its 95% t-interval, and
    an exact McNemar test over every evaluation episode (same seeds, same training seed)."""
    differences = [a - b for a, b in zip(per_seed[name], per_seed[baseline])]
    return {
        "difference": float(np.mean(differences)),
        "t95_over_seeds": interval_over_seeds(differences, clip=False),
        "mcnemar": mcnemar_exact(np.array(pooled[name]), np.array(pooled[baseline])),
    }


def format_matrix(results: dict) -> str:
    """Markdown: one row per task and arm; "mean max progress" is the task's progress signal (PushT's
    coverage score), "-" for a task without one. With a baseline arm (a family, or the first curation
    of a curation matrix) the paired difference and McNemar p replace the inference timings."""
    baseline = results.get("baseline", "")
    headers = [
        "task",
        "arm" if baseline else "policy",
        "success: mean over seeds [95% t-CI] (per seed)",
        "pooled 95% Wilson",
        "mean max progress [95% CI]",
        "mean return",
        "train samples/s",
        *([f"vs {baseline}: difference [95% t-CI]", "McNemar p"] if baseline else ["ms/action b1 / b64"]),
    ]
    rows = []
    for task, arms in results["tasks"].items():
        for name, r in arms.items():
            lo, hi = r["t95_over_seeds"]
            seeds = " / ".join(f"{100 * x:.0f}" for x in r["per_seed"])
            wlo, whi = r["pooled_wilson95"]
            sps = f"{r['train_samples_per_s']:,.0f}" if r["train_samples_per_s"] else "no training"
            row = [
                f"`{task}`",
                name,
                f"{100 * r['mean_success']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}] ({seeds})",
                f"[{100 * wlo:.0f}, {100 * whi:.0f}]",
                "{:.3f} [{:.3f}, {:.3f}]".format(r["mean_max_progress"], *r["max_progress_ci95"])
                if "mean_max_progress" in r
                else "-",
                f"{r['mean_return']:.1f}",
                sps,
            ]
            if not baseline:
                ms = r["inference_ms_per_action"]
                rows.append([*row, f"{ms['batch_1']:.2f} / {ms['batch_64']:.2f}"])
                continue
            vs = r.get("vs_baseline")
            if vs:
                dlo, dhi = vs["t95_over_seeds"]
                rows.append(
                    [
                        *row,
                        f"{100 * vs['difference']:+.0f} [{100 * dlo:+.0f}, {100 * dhi:+.0f}]",
                        f"{vs['mcnemar']['p_value']:.2g}",
                    ]
                )
            else:
                rows.append([*row, "(baseline)", ""])
    return markdown_table(headers, rows)
