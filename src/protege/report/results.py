"""The numbers a report shows, recomputed from the per-episode rows (never copied from a summary):
per task and policy, success and max progress / return with 95% intervals over episodes and over
training seeds; paired tests against a baseline on shared (training seed, evaluation seed) pairs;
and, across tasks, IQM and probability of improvement with stratified-bootstrap intervals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from protege.evaluate.stats import interval_over_seeds, mcnemar_exact, mean_interval, wilson_interval
from protege.report.aggregate import improvement_interval, iqm_interval
from protege.report.gather import Gathered


@dataclass
class Cell:
    """One task x policy: every evaluation episode, keyed by (training seed, evaluation seed)."""

    task: str
    policy: str
    episodes: dict[tuple[int, int], dict]
    rule: str = "final"

    def seeds(self) -> list[int]:
        return sorted({train for train, _ in self.episodes})

    def per_seed_success(self) -> list[float]:
        return [
            float(np.mean([r["success"] for (t, _), r in self.episodes.items() if t == seed])) for seed in self.seeds()
        ]

    def summary(self) -> dict:
        rows = list(self.episodes.values())
        success = np.array([r["success"] for r in rows])
        per_seed = self.per_seed_success()
        progress = [r["max_progress"] for r in rows if r["max_progress"] is not None]
        returns = np.array([r["return"] for r in rows])
        return {
            "episodes": len(rows),
            "training_seeds": len(per_seed),
            "success": float(success.mean()),
            "success_wilson95": list(wilson_interval(int(success.sum()), len(rows))),
            "per_seed": per_seed,
            "success_t95_over_seeds": list(interval_over_seeds(per_seed)) if len(per_seed) > 1 else None,
            "mean_max_progress": float(np.mean(progress)) if progress else None,
            "max_progress_ci95": mean_interval(np.array(progress)) if len(progress) > 1 else None,
            "mean_return": float(returns.mean()),
            "return_ci95": mean_interval(returns),
            "checkpoint_rule": self.rule,
        }


def cells(g: Gathered) -> dict[str, dict[str, Cell]]:
    """Per task, per policy: a Cell of every episode evaluated (an episode found twice is refused)."""
    table: dict[str, dict[str, Cell]] = defaultdict(dict)
    for ev in g.evaluations:
        for row in ev.rows:
            label = row["policy"]
            cell = table[row["task"]].setdefault(label, Cell(row["task"], label, {}))
            cell.rule = ev.summary.get("policies", {}).get(label, {}).get("checkpoint", {}).get("rule", "final")
            key = (ev.train_seed(label), row["seed"])
            if key in cell.episodes:
                raise ValueError(
                    f"{row['task']} / {label}: training seed {key[0]}, evaluation seed {key[1]} appears twice "
                    f"(again in '{ev.folder}'); report one evaluation per run"
                )
            cell.episodes[key] = row
    return dict(table)


def paired(a: Cell, b: Cell) -> dict | None:
    """Policy a minus b on the episodes both ran (same training seed, same evaluation seed): McNemar over
    episodes, and the mean difference over training seeds with its t-interval (two or more seeds)."""
    shared = sorted(a.episodes.keys() & b.episodes.keys())
    if not shared:
        return None
    sa = np.array([a.episodes[k]["success"] for k in shared])
    sb = np.array([b.episodes[k]["success"] for k in shared])
    seeds = sorted({t for t, _ in shared})
    diffs = [
        float(np.mean([a.episodes[k]["success"] for k in shared if k[0] == s]))
        - float(np.mean([b.episodes[k]["success"] for k in shared if k[0] == s]))
        for s in seeds
    ]
    return {
        "episodes": len(shared),
        "training_seeds": len(seeds),
        "difference": float(sa.mean() - sb.mean()),
        "t95_over_seeds": list(interval_over_seeds(diffs, clip=False)) if len(seeds) > 1 else None,
        "mcnemar": mcnemar_exact(sa, sb),
    }


def choose_baseline(g: Gathered, table: dict[str, dict[str, Cell]], asked: str) -> str:
    """The baseline asked for (it must exist), else a matrix's own, else the first policy seen."""
    policies = [p for cells_ in table.values() for p in cells_]
    if asked:
        if asked not in policies:
            raise ValueError(f"--baseline '{asked}' is none of the policies in the report: {sorted(set(policies))}")
        return asked
    own = (g.bench_summary or {}).get("baseline", "")
    return own if own in policies else (policies[0] if policies else "")


def score_matrix(table: dict[str, dict[str, Cell]], policy: str, tasks: list[str]) -> np.ndarray | None:
    """(runs, tasks) success rates of one policy: run i is its i-th training seed on every task, so
    every task must hold the policy with the same number of seeds (None otherwise)."""
    columns = [table[t][policy].per_seed_success() for t in tasks if policy in table[t]]
    if len(columns) != len(tasks) or len({len(c) for c in columns}) != 1:
        return None
    return np.array(columns).T


def across_tasks(table: dict[str, dict[str, Cell]], baseline: str) -> dict:
    """IQM per policy and P(policy > baseline), both with 95% stratified-bootstrap intervals, over
    the tasks every policy was run on; empty for fewer than 2 (task, seed) runs per policy."""
    tasks = sorted(table)
    matrices = {
        p: m for p in sorted({p for c in table.values() for p in c}) if (m := score_matrix(table, p, tasks)) is not None
    }
    if not matrices or next(iter(matrices.values())).size < 2:
        return {}
    out = {"tasks": tasks, "iqm": {p: iqm_interval(m) for p, m in matrices.items()}, "improvement": {}}
    if baseline in matrices:
        out["improvement"] = {
            p: improvement_interval(m, matrices[baseline]) for p, m in matrices.items() if p != baseline
        }
    return out
