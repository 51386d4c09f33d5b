"""A changed default must not lose where the old one worked: the family at today's defaults against
the same family with the old setting back, paired, on tasks other than the one it was chosen on;
prints JSON.

    python benchmarks/default_check.py --family diffusion --old prediction=epsilon
        [--tasks toy/fork metaworld/push] [--seeds 2] [--steps 2000] [--eval-episodes 100] [--out DIR]

Both arms train on the same demonstrations with the same seeds and budget and are evaluated on the
same seed list; per task the summary gives each arm's success and the defaults' paired difference
from the old setting (mean over training seeds with its t-interval, exact McNemar test on the
pooled episodes). ``--old NAME=VALUE`` values are read as JSON where they parse, else as strings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from protege.bench.matrix import Arm, Matrix, format_matrix, run_matrix
from protege.bench.variants import parse_setting
from protege.machine import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="diffusion")
    parser.add_argument("--old", nargs="+", required=True, help="the old setting(s) NAME=VALUE")
    parser.add_argument("--tasks", nargs="+", default=["toy/fork", "metaworld/push"])
    parser.add_argument("--seeds", type=int, default=2, help="training seeds")
    parser.add_argument("--episodes", type=int, default=200, help="expert demonstrations per task")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/default-check"))
    args = parser.parse_args()
    old = tuple(parse_setting(s) for s in args.old)
    matrix = Matrix(
        tasks=tuple(args.tasks),
        arms={"defaults": Arm(args.family), "old": Arm(args.family, settings=old)},
        num_seeds=args.seeds,
        episodes=args.episodes,
        steps=args.steps,
        batch_size=256,
        eval_episodes=args.eval_episodes,
        out=args.out,
        progress=False,
        baseline="old",
    )
    results = run_matrix(matrix)
    print(format_matrix(results))
    print(json.dumps({"family": args.family, "old": dict(old), **results, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
