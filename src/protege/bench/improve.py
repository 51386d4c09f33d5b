"""``protege bench --suite improve``: every improvement method against continued BC and SAC from
scratch, at one env-step budget, from one weak cloned policy per task.

Per task: collect a few expert demonstrations, train the base (a recipe per task that leaves it
at roughly 20-70% success: ``BASES``), run each method ``num_seeds`` times from that base, then
evaluate the base and every improved policy on one shared seed list. Each method's success is the
mean over its seeds with a t-interval; against the base, the mean over seeds of the paired
difference in success (every policy runs episode i from the same seed) with its t-interval over
seeds, and each seed's exact McNemar p on its 100 pairs (pooling the seeds would pair one base
episode with three, which are not independent pairs). From each learning curve
the env steps and wall seconds at which it first reached its final curve success are read off.
Everything resumes: a finished improvement run, base or evaluation is kept.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protege.atomic import write_json_atomic, write_text_atomic
from protege.config import BenchConfig, CollectConfig, EvalConfig, ImproveConfig, TrainConfig
from protege.demos.collect import collect
from protege.evaluate.evaluate import evaluate
from protege.evaluate.stats import interval_over_seeds, mcnemar_exact
from protege.improve import METHODS, improve
from protege.improve.run import CURVE, read_curve
from protege.machine import machine
from protege.policies import policy_class
from protege.tables import markdown_table, text_table
from protege.train.trainer import train


@dataclass(frozen=True)
class BaseRecipe:
    """How the weak base of a task is cloned: family, demonstrations and optimizer steps."""

    policy: str
    episodes: int
    steps: int


#: Bases that leave room to improve: success on the training-time seeds (50 episodes) when chosen.
#: diffusion everywhere, so that noise-space RL applies to every task.
BASES: dict[str, BaseRecipe] = {
    "toy/reach": BaseRecipe("diffusion", 20, 100),  # 0.54 at 100 steps, 0.90 at 200
    "toy/fork": BaseRecipe("diffusion", 20, 300),  # 0.22 at 200 steps, 0.68 at 300
    "fetch/push": BaseRecipe("diffusion", 50, 2000),  # 0.49 over 3 seeds in docs/results.md; 0.70 here (seed 0)
}
#: Rounds of the expert-label methods: episodes collected and fine-tuning steps (diffusion: about
#: 20 s on one core) per round. Larger rounds than `protege improve`'s default keep a suite on a CPU
#: within minutes per run once the policy's episodes get short.
ROUND_EPISODES, ROUND_STEPS = 50, 200
IMPROVE_SUITE_TASKS = tuple(BASES)


def bench_improve(cfg: BenchConfig, out: Path) -> dict:
    """Run the suite into ``out``; the summary (also written as summary.json and table.txt)."""
    methods = cfg.methods or tuple(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown improvement method(s) {', '.join(unknown)}; choose from: {', '.join(METHODS)}")
    results = {"machine": machine(), "env_steps": cfg.env_steps, "seeds": cfg.num_seeds, "tasks": {}}
    for task in cfg.tasks or IMPROVE_SUITE_TASKS:
        results["tasks"][task] = _task(cfg, task, methods, out / task.replace("/", "-"))
        write_json_atomic(out / "summary.json", results)
    write_text_atomic(out / "table.txt", format_improve(results) + "\n")
    return results


def _task(cfg: BenchConfig, task: str, methods: tuple[str, ...], folder: Path) -> dict:
    recipe = BASES.get(task, BaseRecipe((cfg.policies or ("diffusion",))[0], cfg.episodes, cfg.steps))
    data = folder / "data"
    if not (data / "meta" / "info.json").exists():
        collect(CollectConfig(task=task, episodes=recipe.episodes, out=data, overwrite=True, progress=cfg.progress))
    base = train(
        TrainConfig(
            dataset=data.resolve(),
            policy=policy_class(recipe.policy).config_class(),
            out=folder / "base",
            steps=recipe.steps,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            eval_every=0,
            save_every=recipe.steps,
            device=cfg.device,
            progress=cfg.progress,
            resume=True,
        )
    )
    runs: dict[str, list[Path]] = {}
    for method in methods:
        for seed in range(cfg.num_seeds):
            out = folder / f"{method}-s{seed}"
            if not _finished(out, cfg.env_steps):
                improve(
                    ImproveConfig(
                        run=base,
                        method=method,
                        env_steps=cfg.env_steps,
                        seed=seed,
                        out=out,
                        eval_every=max(cfg.env_steps // 4, 1),
                        episodes_per_round=ROUND_EPISODES,
                        round_steps=ROUND_STEPS,
                        device=cfg.device,
                        progress=cfg.progress,
                        resume=out.exists(),
                    )
                )
            runs.setdefault(method, []).append(out)
    labels = ["base", *(f"{m}/s{i}" for m, outs in runs.items() for i in range(len(outs)))]
    report = _evaluated(folder / "eval", labels, cfg.eval_episodes) or evaluate(
        EvalConfig(
            checkpoints=(base, *(o for outs in runs.values() for o in outs)),
            labels=tuple(labels),
            task=task,
            episodes=cfg.eval_episodes,
            out=folder / "eval",
            device=cfg.device,
            progress=cfg.progress,
        )
    )
    return summarize_task(report, runs, recipe, folder / "eval")


def _finished(out: Path, env_steps: int) -> bool:
    points = read_curve(out / CURVE)
    return bool(points) and points[-1]["env_steps"] >= env_steps


def _evaluated(folder: Path, labels: list[str], episodes: int) -> dict | None:
    """The evaluation a resumed suite already wrote for these policies and episodes, else None."""
    path = folder / "summary.json"
    if not (path.exists() and (folder / "episodes.csv").exists()):
        return None
    report = json.loads(path.read_text())
    return report if list(report["policies"]) == labels and report["seeds"]["count"] == episodes else None


def summarize_task(report: dict, runs: dict[str, list[Path]], recipe: BaseRecipe, eval_dir: Path) -> dict:
    """Per method: success over seeds with its t-interval, paired test against the base, budget used."""
    with (eval_dir / "episodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    success = {}
    for row in rows:
        success.setdefault(row["policy"], []).append(row["success"] == "True")
    base = np.array(success["base"])
    out = {
        "base": {
            "recipe": vars(recipe),
            "success": float(base.mean()),
            "success_ci95": report["policies"]["base"]["success_ci95"],
        }
    }
    for method, folders in runs.items():
        labels = [f"{method}/s{i}" for i in range(len(folders))]
        rates = [float(np.mean(success[label])) for label in labels]
        differences = [float(np.mean(success[label])) - float(base.mean()) for label in labels]
        curves = [read_curve(f / CURVE) for f in folders]
        reached = [next(p for p in c if p["success"] >= c[-1]["success"]) for c in curves]
        out[method] = {
            "success": float(np.mean(rates)),
            "success_ci95": list(interval_over_seeds(rates)),
            "per_seed": rates,
            "vs_base": {
                "difference": float(np.mean(differences)),
                "difference_ci95": list(interval_over_seeds(differences, clip=False)),
                "mcnemar_p": [mcnemar_exact(np.array(success[label]), base)["p_value"] for label in labels],
            },
            "env_steps": float(np.mean([c[-1]["env_steps"] for c in curves])),
            "labels": float(np.mean([c[-1]["labels"] for c in curves])),
            "wall_s": float(np.mean([c[-1]["wall_s"] for c in curves])),
            "reached_env_steps": float(np.mean([p["env_steps"] for p in reached])),
            "reached_wall_s": float(np.mean([p["wall_s"] for p in reached])),
        }
    return out


HEADERS = [
    "task",
    "method",
    "success",
    "95% CI",
    "per seed",
    "vs base",
    "95% CI (vs base)",
    "McNemar p per seed",
    "env steps",
    "labels",
    "wall s",
    "reached at (steps / s)",
]


def _rows(results: dict) -> list[list[str]]:
    rows = []
    for task, methods in results["tasks"].items():
        base = methods["base"]
        rows.append(
            [
                task,
                "base",
                f"{base['success']:.2f}",
                "[{:.2f}, {:.2f}]".format(*base["success_ci95"]),
                *[""] * (len(HEADERS) - 4),
            ]
        )
        for method, m in methods.items():
            if method == "base":
                continue
            rows.append(
                [
                    task,
                    method,
                    f"{m['success']:.2f}",
                    "[{:.2f}, {:.2f}]".format(*m["success_ci95"]),
                    " ".join(f"{r:.2f}" for r in m["per_seed"]),
                    f"{m['vs_base']['difference']:+.2f}",
                    "[{:+.2f}, {:+.2f}]".format(*m["vs_base"]["difference_ci95"]),
                    " ".join(f"{p:.1g}" for p in m["vs_base"]["mcnemar_p"]),
                    f"{m['env_steps']:.0f}",
                    f"{m['labels']:.0f}",
                    f"{m['wall_s']:.0f}",
                    f"{m['reached_env_steps']:.0f} / {m['reached_wall_s']:.0f}",
                ]
            )
    return rows


def format_improve(results: dict, markdown: bool = False) -> str:
    """The suite's table: base and each method per task (success over seeds, paired vs the base, budget)."""
    table = (markdown_table if markdown else text_table)(HEADERS, _rows(results))
    return f"{results['seeds']} seeds per method, budget {results['env_steps']} env steps\n\n{table}"
