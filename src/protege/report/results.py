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
from protege.report.gather import Gathered, shown_path


@dataclass
class Cell:
    """One task x policy: every evaluation episode, keyed by (training seed, evaluation seed)."""

    task: str
    policy: str
    episodes: dict[tuple[int, int], dict]
    rule: str = "final"

    def seeds(self) -> list[int]:
        return sorted({train for train, _ in self.episodes})

    def per_seed(self, key: str) -> list[float]:
        """The mean of one column per training seed (rows without a value left out)."""
        return [
            float(np.mean(values))
            for seed in self.seeds()
            if (values := [r[key] for (t, _), r in self.episodes.items() if t == seed and r[key] is not None])
        ]

    def per_seed_success(self) -> list[float]:
        return self.per_seed("success")

    def summary(self) -> dict:
        """With two or more training seeds every number is a mean over seeds with a t-interval over
        seeds (seeds, not episodes, are the independent units); with one, over episodes."""
        rows = list(self.episodes.values())
        success = np.array([r["success"] for r in rows])
        per_seed = self.per_seed_success()
        several = len(per_seed) > 1
        progress = [r["max_progress"] for r in rows if r["max_progress"] is not None]
        return {
            "episodes": len(rows),
            "training_seeds": len(per_seed),
            "success": float(np.mean(per_seed)) if several else float(success.mean()),
            "success_wilson95": list(wilson_interval(int(success.sum()), len(rows))),
            "per_seed": per_seed,
            "success_t95_over_seeds": list(interval_over_seeds(per_seed)) if several else None,
            "mean_max_progress": self._mean(progress, "max_progress", several),
            "max_progress_ci95": self._interval(progress, "max_progress", several, clip=True),
            "mean_return": self._mean([r["return"] for r in rows], "return", several),
            "return_ci95": self._interval([r["return"] for r in rows], "return", several, clip=False),
            "checkpoint_rule": self.rule,
        }

    def _mean(self, values: list[float], key: str, several: bool) -> float | None:
        if not values:
            return None
        return float(np.mean(self.per_seed(key))) if several else float(np.mean(values))

    def _interval(self, values: list[float], key: str, several: bool, clip: bool) -> list[float] | None:
        """A t-interval over the seeds' means (several seeds), else a normal one over episodes; None
        for fewer than two values. ``clip``: a progress signal lives in [0, 1]."""
        if not values:
            return None
        if several:
            return list(interval_over_seeds(self.per_seed(key), clip=clip))
        if len(values) < 2:
            return None
        lo, hi = mean_interval(np.array(values))
        return [max(0.0, lo), min(1.0, hi)] if clip else [lo, hi]


def cells(g: Gathered) -> dict[str, dict[str, Cell]]:
    """Per task, per policy: a Cell of every episode evaluated. Where two evaluations hold the same
    policy, training seed and evaluation seed (two benches in one folder), the later one's policy is
    named by its folder ("mlp (other/eval)"), so neither is mixed into the other."""
    table: dict[str, dict[str, Cell]] = defaultdict(dict)
    for ev in g.evaluations:
        seeds = {label: ev.train_seed(label) for label in {row["policy"] for row in ev.rows}}
        keyed = [(row, (seeds[row["policy"]], row["seed"])) for row in ev.rows]
        clash = any(key in getattr(table[row["task"]].get(row["policy"]), "episodes", ()) for row, key in keyed)
        for row, key in keyed:
            label = row["policy"]
            name = f"{label} ({shown_path(ev.folder, g.root)})" if clash else label
            cell = table[row["task"]].setdefault(name, Cell(row["task"], name, {}))
            cell.rule = ev.summary.get("policies", {}).get(label, {}).get("checkpoint", {}).get("rule", "final")
            if key in cell.episodes:
                raise ValueError(f"'{ev.folder}': {label} ran evaluation seed {key[1]} twice")
            cell.episodes[key] = row
    return dict(table)


def paired(a: Cell, b: Cell) -> dict | None:
    """Policy a minus b on the episodes both ran: the same training seed and evaluation seed, or, when
    each was trained once (with its own seed), the same evaluation seed. McNemar over those episodes;
    with two or more training seeds, the mean of the per-seed differences and its t-interval."""
    if len(a.seeds()) == len(b.seeds()) == 1:
        ea, eb = ({seed: r for (_, seed), r in c.episodes.items()} for c in (a, b))
        shared = sorted(ea.keys() & eb.keys())
        by_seed = {0: shared}
    else:
        ea, eb = a.episodes, b.episodes
        shared = sorted(ea.keys() & eb.keys())
        by_seed = {t: [k for k in shared if k[0] == t] for t in sorted({t for t, _ in shared})}
    if not shared:
        return None
    sa = np.array([ea[k]["success"] for k in shared])
    sb = np.array([eb[k]["success"] for k in shared])
    diffs = [
        float(np.mean([ea[k]["success"] for k in keys]) - np.mean([eb[k]["success"] for k in keys]))
        for keys in by_seed.values()
    ]
    several = len(diffs) > 1
    return {
        "episodes": len(shared),
        "training_seeds": len(diffs),
        "difference": float(np.mean(diffs)) if several else float(sa.mean() - sb.mean()),
        "t95_over_seeds": list(interval_over_seeds(diffs, clip=False)) if several else None,
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
    """IQM per policy and P(policy > baseline), both with 95% stratified-bootstrap intervals, over the
    tasks; a policy missing from a task or with another number of training seeds is left out (and
    named in ``left_out``). Empty for fewer than 2 (task, seed) runs per policy."""
    tasks = sorted(table)
    policies = sorted({p for c in table.values() for p in c})
    matrices = {p: m for p in policies if (m := score_matrix(table, p, tasks)) is not None}
    counts = {}
    for p, m in matrices.items():
        counts.setdefault(m.shape[0], []).append(p)
    if counts:  # the seed count most policies share (a tie: the larger)
        runs = max(counts, key=lambda n: (len(counts[n]), n))
        matrices = {p: m for p, m in matrices.items() if m.shape[0] == runs}
    if not matrices or next(iter(matrices.values())).size < 2:
        return {}
    out = {
        "tasks": tasks,
        "iqm": {p: iqm_interval(m) for p, m in matrices.items()},
        "improvement": {},
        "left_out": [p for p in policies if p not in matrices],
    }
    if baseline in matrices:
        out["improvement"] = {
            p: improvement_interval(m, matrices[baseline]) for p, m in matrices.items() if p != baseline
        }
    return out
