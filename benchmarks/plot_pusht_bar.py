"""The PushT bar's curves as a picture: success and mean max coverage at each training-time
evaluation against training minutes, one line per run, from ``pusht_bar.py --merge``'s JSON.

    python benchmarks/plot_pusht_bar.py benchmarks/results/pusht-bar-30min.json --out docs/pusht-bar.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLORS = {"diffusion": "tab:blue", "flow": "tab:orange"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("merged", type=Path, help="JSON printed by pusht_bar.py --merge")
    parser.add_argument("--out", type=Path, default=Path("pusht-bar.png"))
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = json.loads(args.merged.read_text())["families"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for family, entry in families.items():
        for seed, run in sorted(entry["per_seed"].items()):
            minutes = [p["minutes"] for p in run["curve"]]
            style = {"color": COLORS.get(family, "gray"), "alpha": 0.8, "marker": "o", "markersize": 3}
            label = family if seed == min(entry["per_seed"]) else None
            left.plot(minutes, [100 * p["success"] for p in run["curve"]], label=label, **style)
            right.plot(minutes, [p["max_coverage"] for p in run["curve"]], label=label, **style)
    for ax, name, bar in ((left, "success (%)", 75), (right, "mean max coverage", 0.95)):
        ax.axhline(bar, color="black", linestyle="--", linewidth=1, label="issue 13's bar")
        ax.set_xlabel("training minutes (one core; evaluation excluded)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    left.legend(loc="upper left", fontsize="small")
    fig.suptitle("PushT (state), 200 expert demonstrations: training-time evaluation, 50 episodes per point")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(json.dumps({"out": str(args.out)}))


if __name__ == "__main__":
    main()
