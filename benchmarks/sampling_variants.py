"""Sampling-time settings checked without retraining: each trained run at its own settings and with
config fields changed (execution length, sampler steps...), on one shared seed list; prints JSON.

    python benchmarks/sampling_variants.py RUN [RUN ...] --variant execute-4 n_action_steps=4 \
        [--variant trailing-5 num_inference_steps=5 timestep_spacing=trailing] [--episodes 100] [--out DIR]

Values are read as JSON where they parse, else as strings. Per task, each variant's success (and
mean max progress) pooled over the task's runs, paired with the runs' own settings
(``protege.bench.variants``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from protege.bench.variants import compare_variants, parse_setting
from protege.machine import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="trained run folders (any tasks)")
    parser.add_argument(
        "--variant", nargs="+", action="append", required=True, metavar="NAME K=V", help="a named set of changes"
    )
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/sampling-variants"))
    args = parser.parse_args()
    variants = {name: dict(parse_setting(s) for s in settings) for name, *settings in args.variant}
    result = compare_variants(args.runs, variants, args.episodes, args.out)
    print(json.dumps({"variants": variants, "tasks": result, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
