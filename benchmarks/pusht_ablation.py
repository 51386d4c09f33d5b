"""Why does diffusion fail on PushT? Its settings ablated one at a time on one fixed dataset; prints JSON.

    python benchmarks/pusht_ablation.py --out DIR [--part K/N] [--arms A ...] [--seeds 2] [--steps 2000]
    python benchmarks/pusht_ablation.py --out DIR --merge [--baseline diffusion]

Every arm is diffusion at its defaults with one policy or training setting changed (mlp, flow and
bet at their defaults beside them), trained on the same 200 expert demonstrations with the same
training seeds and budget, and evaluated on the same seed list. ``--part K/N`` runs every N-th arm
(K = 1..N) in its own folder under DIR, so N processes with one thread each share the cores;
their datasets are identical (collection is seeded). ``--merge`` pools the parts: per arm, success
and mean max coverage (PushT's score) with 95% intervals, and the paired difference in max coverage
from the ``--baseline`` arm over the (training seed, evaluation seed) pairs. ``--arms`` picks a
subset, e.g. the regularizers against memorization with ``flow`` as their baseline.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from protege.bench.matrix import Arm, Matrix, run_matrix
from protege.evaluate.stats import mean_interval, wilson_interval
from protege.machine import machine

#: arm -> (family, policy settings, training settings) changed from the defaults
ARMS: dict[str, tuple[str, dict, dict]] = {
    "diffusion": ("diffusion", {}, {}),
    "diffusion-absolute": ("diffusion", {"relative_actions": "off"}, {}),
    "diffusion-sample": ("diffusion", {"prediction": "sample"}, {}),
    "diffusion-noclip": ("diffusion", {"clip_sample": False}, {}),
    "diffusion-trailing": ("diffusion", {"timestep_spacing": "trailing"}, {}),
    "diffusion-4-steps": ("diffusion", {"num_inference_steps": 4}, {}),
    "diffusion-50-steps": ("diffusion", {"num_inference_steps": 50}, {}),
    "diffusion-1000-timesteps": ("diffusion", {"num_train_timesteps": 1000}, {}),
    "diffusion-obs1": ("diffusion", {"n_obs": 1}, {}),
    "diffusion-obs4": ("diffusion", {"n_obs": 4}, {}),
    "diffusion-h8": ("diffusion", {"horizon": 8, "n_action_steps": 4}, {}),
    "diffusion-exec4": ("diffusion", {"n_action_steps": 4}, {}),
    "diffusion-fit-padding": ("diffusion", {"mask_padding": False}, {}),
    "diffusion-wide": ("diffusion", {"hidden_dim": 512}, {}),
    "diffusion-transformer": ("diffusion", {"denoiser": "transformer"}, {}),
    "diffusion-ema0": ("diffusion", {}, {"ema_decay": 0.0}),
    "diffusion-ema0.999": ("diffusion", {}, {"ema_decay": 0.999}),
    "diffusion-lr3e-4": ("diffusion", {}, {"lr": 3e-4}),
    "diffusion-lr3e-3": ("diffusion", {}, {"lr": 3e-3}),
    "diffusion-b64": ("diffusion", {}, {"batch_size": 64}),
    "mlp": ("mlp", {}, {}),
    "mlp-absolute": ("mlp", {"relative_actions": "off"}, {}),
    "flow": ("flow", {}, {}),
    "flow-absolute": ("flow", {"relative_actions": "off"}, {}),
    "bet": ("bet", {}, {}),
    # regularizers against memorizing 200 demonstrations (run with --arms ... --baseline flow)
    "flow-obs-noise-0.02": ("flow", {"obs_noise": 0.02}, {}),
    "flow-obs-noise-0.05": ("flow", {"obs_noise": 0.05}, {}),
    "flow-obs-noise-0.1": ("flow", {"obs_noise": 0.1}, {}),
    "flow-wd-0.01": ("flow", {}, {"weight_decay": 0.01}),
    "flow-wd-0.1": ("flow", {}, {"weight_decay": 0.1}),
}


def run_part(args: argparse.Namespace) -> None:
    k, n = (int(x) for x in args.part.split("/"))
    names = list(args.arms or ARMS)[k - 1 :: n]
    arms = {
        name: Arm(ARMS[name][0], settings=tuple(ARMS[name][1].items()), training=tuple(ARMS[name][2].items()))
        for name in names
    }
    matrix = Matrix(
        tasks=("pusht",),
        arms=arms,
        num_seeds=args.seeds,
        episodes=args.episodes,
        steps=args.steps,
        batch_size=256,
        eval_episodes=args.eval_episodes,
        out=args.out / f"part-{k}-of-{n}",
        progress=False,
    )
    results = run_matrix(matrix)
    print(json.dumps({"budget": results["budget"], "arms": results["tasks"]["pusht"]}, indent=2))


def episode_rows(out: Path) -> dict[str, dict[tuple[int, int], tuple[bool, float]]]:
    """Arm -> (training seed, evaluation seed) -> (success, max coverage), over every part."""
    rows: dict[str, dict[tuple[int, int], tuple[bool, float]]] = {}
    for path in sorted(out.glob("part-*/pusht/seed*/eval/episodes.csv")):
        train_seed = int(path.parent.parent.name.removeprefix("seed"))
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                key = (train_seed, int(row["seed"]))
                rows.setdefault(row["policy"], {})[key] = (row["success"] == "True", float(row["max_progress"]))
    return rows


def merge(out: Path, baseline: str) -> dict:
    rows = episode_rows(out)
    if baseline not in rows:
        raise SystemExit(f"no '{baseline}' episodes under {out}/part-*: run the parts first")
    base = rows[baseline]
    arms = {}
    for name in [a for a in ARMS if a in rows]:
        pairs = sorted(set(rows[name]) & set(base))
        success = np.array([rows[name][p][0] for p in pairs])
        coverage = np.array([rows[name][p][1] for p in pairs])
        diff = coverage - np.array([base[p][1] for p in pairs])
        family, settings, training = ARMS[name]
        arms[name] = {
            "family": family,
            "changed": {**settings, **training},
            "episodes": len(pairs),
            "success_rate": float(success.mean()),
            "success_ci95": list(wilson_interval(int(success.sum()), len(success))),
            "mean_max_coverage": float(coverage.mean()),
            "max_coverage_ci95": mean_interval(coverage),
            "paired_coverage_diff": float(diff.mean()),
            "paired_coverage_diff_ci95": mean_interval(diff) if name != baseline else [0.0, 0.0],
        }
    return arms


def table(arms: dict, baseline: str) -> str:
    lines = [
        f"| arm | changed | success [95% Wilson] | mean max coverage [95% CI] | paired diff vs {baseline} [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for name, a in arms.items():
        changed = ", ".join(f"{k}={v}" for k, v in a["changed"].items()) or "defaults"
        lo, hi = a["success_ci95"]
        clo, chi = a["max_coverage_ci95"]
        dlo, dhi = a["paired_coverage_diff_ci95"]
        diff = "—" if name == baseline else f"{a['paired_coverage_diff']:+.3f} [{dlo:+.3f}, {dhi:+.3f}]"
        if name != baseline and (dlo > 0 or dhi < 0):
            diff = f"**{diff}**"
        lines.append(
            f"| {name} | {changed} | {100 * a['success_rate']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}] | "
            f"{a['mean_max_coverage']:.3f} [{clo:.3f}, {chi:.3f}] | {diff} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/pusht-ablation"))
    parser.add_argument("--part", default="1/1", help="K/N: run every N-th arm starting at the K-th")
    parser.add_argument("--merge", action="store_true", help="pool the parts under --out into one table")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), help="run only these arms (default: all)")
    parser.add_argument("--baseline", default="diffusion", help="the arm the paired differences are taken from")
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per arm")
    parser.add_argument("--episodes", type=int, default=200, help="expert demonstrations")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-episodes", type=int, default=50)
    args = parser.parse_args()
    if not args.merge:
        run_part(args)
        return
    arms = merge(args.out, args.baseline)
    (args.out / "table.md").write_text(table(arms, args.baseline) + "\n")
    print(json.dumps({"arms": arms, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
