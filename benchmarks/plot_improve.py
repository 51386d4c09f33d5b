"""Draw `protege bench --suite improve` learning curves: per task, each method's success on the curve
seeds against env steps, the mean over its seeds with a min-max band. Prints the figure's path as JSON.

    python benchmarks/plot_improve.py benchmarks/results/improve --out docs/improve-curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def curves(task_dir: Path) -> dict[str, list[list[dict]]]:
    """Per method, each seed's curve points, from ``<method>-s<seed>/curve.jsonl``."""
    found: dict[str, list[list[dict]]] = {}
    for path in sorted(task_dir.glob("*-s*/curve.jsonl")):
        method = path.parent.name.rsplit("-s", 1)[0]
        found.setdefault(method, []).append([json.loads(line) for line in path.read_text().splitlines()])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="folder holding one bench --suite improve folder per task")
    parser.add_argument("--out", type=Path, default=Path("docs/improve-curves.png"))
    args = parser.parse_args()
    tasks = sorted(p.parents[1] for p in args.results.glob("*/*/base/config.json"))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.4 * len(tasks), 3.2), squeeze=False)
    for ax, task_dir in zip(axes[0], tasks):
        for method, runs in curves(task_dir).items():
            grid = np.linspace(0, min(r[-1]["env_steps"] for r in runs), 30)
            values = np.array([np.interp(grid, [p["env_steps"] for p in r], [p["success"] for p in r]) for r in runs])
            (line,) = ax.plot(grid, values.mean(0), label=method)
            ax.fill_between(grid, values.min(0), values.max(0), color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set(title=task_dir.name, xlabel="environment steps", ylabel="success (curve seeds)", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(json.dumps({"figure": str(args.out), "tasks": [t.name for t in tasks]}))


if __name__ == "__main__":
    main()
