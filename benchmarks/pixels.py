"""The same policy from pixels and from state, on the same demonstrations and the same evaluation
seeds; prints JSON.

    python benchmarks/pixels.py --task toy/fork --family diffusion --seeds 0 1 2 --steps 3000 --out DIR
    python benchmarks/pixels.py --task toy/fork --merge --out DIR [--episodes 100]

One pixel dataset is collected (``--episodes`` expert demonstrations, ``--image-size`` px), so
both views train on the very same episodes: ``state`` reads ``observation.state``, ``pixels``
reads ``observation.image`` plus ``observation.proprio`` (the agent's own state; the scene, goals
and objects only through the camera). Each training run is the README's ``protege train`` with
``--policy.obs-keys``; training-time evaluation gives success against training minutes. ``--merge``
evaluates every run's final checkpoint on seeds 100000.. (``--episodes``), paired across views, and
reports success (95% Wilson) and, for a task with a progress signal, mean max progress (95% t) per
view, pooled over training seeds and per seed. Runs resume where they stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from protege.config import CollectConfig, EvalConfig, TrainConfig
from protege.data.store import IMAGE, PROPRIO, STATE
from protege.demos.collect import collect
from protege.evaluate.evaluate import evaluate
from protege.evaluate.stats import mcnemar_exact, mean_interval, wilson_interval
from protege.machine import machine
from protege.policies import policy_class
from protege.train.trainer import train

VIEWS = {"state": (STATE,), "pixels": (IMAGE, PROPRIO)}


def run_all(args: argparse.Namespace) -> None:
    data = args.out / "data"
    if not (data / "meta" / "info.json").exists():
        collect(
            CollectConfig(
                task=args.task,
                episodes=args.demos,
                pixels=True,
                image_size=args.image_size,
                out=data,
                overwrite=True,
                progress=False,
            )
        )
    settings = dict(kv.split("=", 1) for kv in args.set)
    for seed in args.seeds:
        for view in args.views:
            config = policy_class(args.family).config_class(**settings)
            train(
                TrainConfig(
                    dataset=data,
                    policy=replace(config, obs_keys=VIEWS[view]),
                    out=args.out / f"{view}-seed{seed}",
                    steps=args.steps,
                    batch_size=args.batch_size,
                    seed=seed,
                    eval_every=args.eval_every,
                    eval_episodes=50,
                    save_every=args.eval_every,
                    resume=True,
                    progress=False,
                )
            )


def curve(run: Path) -> list[dict]:
    """(step, minutes of training, success, max progress) at every training-time evaluation."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return [
        {
            "step": r["step"],
            "minutes": r["train_s"] / 60,
            "success": r["success"],
            "max_progress": r.get("max_progress"),
        }
        for r in rows
        if "success" in r
    ]


def merge(args: argparse.Namespace) -> dict:
    runs = sorted(p for p in args.out.glob("*-seed*") if (p / "checkpoints" / "latest.json").exists())
    report = evaluate(
        EvalConfig(
            checkpoints=tuple(runs),
            labels=tuple(r.name for r in runs),
            task=args.task,
            episodes=args.episodes,
            out=args.out / "eval",
            progress=False,
        )
    )
    episodes: dict[str, dict[tuple[str, int], dict]] = {}
    with (args.out / "eval" / "episodes.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            view, seed = row["policy"].rsplit("-seed", 1)
            episodes.setdefault(view, {})[(seed, int(row["seed"]))] = row
    views: dict[str, dict] = {}
    for view, rows in episodes.items():
        success = np.array([r["success"] == "True" for r in rows.values()])
        entry = {
            "episodes": len(success),
            "success_rate": float(success.mean()),
            "success_ci95": list(wilson_interval(int(success.sum()), len(success))),
            "per_seed": {},
        }
        if all(r["max_progress"] != "" for r in rows.values()):
            progress = np.array([float(r["max_progress"]) for r in rows.values()])
            entry |= {"mean_max_progress": float(progress.mean()), "max_progress_ci95": mean_interval(progress)}
        for run in runs:
            if run.name.startswith(f"{view}-seed"):
                scores, points = report["policies"][run.name], curve(run)
                entry["per_seed"][run.name.rsplit("-seed", 1)[1]] = {
                    "success_rate": scores["success_rate"],
                    "mean_max_progress": scores.get("mean_max_progress"),
                    "train_minutes": points[-1]["minutes"] if points else None,
                    "curve": points,
                }
        views[view] = entry
    paired = None
    if {"state", "pixels"} <= set(episodes):
        shared = sorted(set(episodes["state"]) & set(episodes["pixels"]))
        paired = mcnemar_exact(
            np.array([episodes["state"][k]["success"] == "True" for k in shared]),
            np.array([episodes["pixels"][k]["success"] == "True" for k in shared]),
        )
    return {"task": args.task, "views": views, "paired_state_vs_pixels": paired, "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--task", default="toy/fork")
    parser.add_argument("--family", default="diffusion")
    parser.add_argument("--set", nargs="*", default=[], help="policy settings NAME=VALUE off the family's defaults")
    parser.add_argument("--views", nargs="+", default=list(VIEWS), choices=list(VIEWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--demos", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--episodes", type=int, default=100, help="final evaluation episodes per run (--merge)")
    args = parser.parse_args()
    if args.merge:
        print(json.dumps(merge(args), indent=2))
    else:
        run_all(args)


if __name__ == "__main__":
    main()
