"""Fit or mask the padded steps of action chunks? A paired measurement that sets the default of
``PolicyConfig.mask_padding`` (docs/results.md#padded-chunk-steps); prints JSON.

    python benchmarks/padding.py [--tasks toy/fork pusht] [--policies diffusion flow bet mcnn] [--seeds 3] [--out DIR]

A window anchored within ``horizon - 1`` frames of an episode's end repeats the last action after
the end. Each family is trained twice per training seed on the same expert data, with the same
budget and seed, once fitting those steps and once leaving them out of the loss, and both runs are
evaluated on one shared seed list (``protege.bench.matrix``), so every episode is a paired
comparison: per family and task the success and mean return of both arms, the exact McNemar test
on success and a 95% interval of the paired return difference over all episodes of all seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from protege.bench.matrix import Arm, Matrix, run_matrix
from protege.evaluate.stats import mcnemar_exact
from protege.machine import machine


def paired(out: Path, task: str, seeds: int, fit: str, masked: str) -> dict:
    """Both arms over every evaluation episode (pairs: same training seed, same evaluation seed):
    success and mean return of each, McNemar's exact test on success, and the mean paired return
    difference (masked - fit) with its 95% normal interval."""
    rows: dict[str, dict[tuple[int, str], tuple[bool, float]]] = {fit: {}, masked: {}}
    for seed in range(seeds):
        with (out / task.replace("/", "-") / f"seed{seed}" / "eval" / "episodes.csv").open(newline="") as f:
            for row in csv.DictReader(f):
                if row["policy"] in rows:
                    rows[row["policy"]][seed, row["seed"]] = (row["success"] == "True", float(row["return"]))
    keys = sorted(rows[fit])
    success = {name: np.array([rows[name][k][0] for k in keys]) for name in rows}
    returns = {name: np.array([rows[name][k][1] for k in keys]) for name in rows}
    gain = returns[masked] - returns[fit]
    half = 1.96 * gain.std(ddof=1) / np.sqrt(len(gain))
    return {
        "episodes": len(keys),
        "success_fit": float(success[fit].mean()),
        "success_masked": float(success[masked].mean()),
        "mcnemar_masked_vs_fit": mcnemar_exact(success[masked], success[fit]),
        "return_fit": float(returns[fit].mean()),
        "return_masked": float(returns[masked].mean()),
        "return_gain_masked_ci95": [float(gain.mean() - half), float(gain.mean() + half)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["toy/fork", "pusht"])
    parser.add_argument("--policies", nargs="+", default=["diffusion", "flow", "bet", "mcnn"])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per arm")
    parser.add_argument("--episodes", type=int, default=200, help="expert demonstrations per task")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/padding"))
    args = parser.parse_args()
    arms = {}
    for family in args.policies:
        arms[family] = Arm(family, settings=(("mask_padding", False),))
        arms[f"{family}-masked"] = Arm(family, settings=(("mask_padding", True),))
    matrix = Matrix(
        tasks=tuple(args.tasks),
        arms=arms,
        num_seeds=args.seeds,
        episodes=args.episodes,
        steps=args.steps,
        batch_size=256,
        eval_episodes=args.eval_episodes,
        out=args.out,
        progress=False,
    )
    results = run_matrix(matrix)
    comparison = {
        task: {family: paired(args.out, task, args.seeds, family, f"{family}-masked") for family in args.policies}
        for task in args.tasks
    }
    print(json.dumps({"budget": results["budget"], "paired": comparison, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
