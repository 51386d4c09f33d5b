"""PushT's bar: diffusion and flow at their defaults on 200 expert demonstrations, the score against
training wall-clock minutes, then the final checkpoints on one shared seed list; prints JSON.

    python benchmarks/pusht_bar.py --family diffusion --seed 0 [--steps 50000] [--eval-every 5000] --out DIR
    python benchmarks/pusht_bar.py --merge --out DIR [--episodes 100] [--against EARLIER_DIR]

Each ``--family/--seed`` call is one run of the README's PushT command (``protege train
data/pusht policy:<family> --steps ... --eval-every ...``), so two calls with ``--threads 1`` share
the 2 cores. Training-time evaluation (its own seeds, 50 episodes) gives the curve of success and
max coverage against ``train_s``, the training seconds (evaluation excluded). ``--merge`` evaluates
every run's final checkpoint on evaluation seeds 100000.. (``--episodes``) and reports, per family,
success and mean max coverage pooled over the training seeds and per seed, with the minutes each
run trained, and each family's runs again at the sampling settings that were the defaults before
(``VARIANTS``), paired on the same episodes. ``--noise`` collects the demonstrations with DART
noise (the expert's labels, noisy execution; ``--noise-burst`` for bursts of it); ``--against``
pairs each run with the run of the same name in an earlier merged folder, episode by episode on
the shared seeds (exact McNemar, coverage difference).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from protege.bench.variants import compare_variants
from protege.config import CollectConfig, EvalConfig, TrainConfig
from protege.demos.collect import collect
from protege.evaluate.evaluate import evaluate
from protege.evaluate.stats import mcnemar_exact, mean_interval, wilson_interval
from protege.machine import machine
from protege.policies import policy_class
from protege.train.trainer import train

#: per run name, sampling-time variants of its runs evaluated on the same seeds (no retraining): the
#: settings that were the defaults before issue 13
VARIANTS: dict[str, dict[str, dict]] = {
    "diffusion": {
        "execute-8": {"n_action_steps": 8},
        "leading-10-steps": {"num_inference_steps": 10, "timestep_spacing": "leading"},
    },
    "flow": {"execute-8": {"n_action_steps": 8}},
}


def run_one(args: argparse.Namespace) -> None:
    data = args.out / "data"
    if not (data / "meta" / "info.json").exists():
        noise = {"noise": args.noise, "noise_burst": args.noise_burst, "noise_gap": args.noise_gap}
        collect(CollectConfig(task="pusht", episodes=args.demos, **noise, out=data, overwrite=True, progress=False))
        (args.out / "collect.json").write_text(json.dumps({"episodes": args.demos, **noise}) + "\n")
    train(
        TrainConfig(
            dataset=data,
            policy=policy_class(args.family).config_class(**dict(kv.split("=", 1) for kv in args.set)),
            out=args.out / f"{args.name or args.family}-seed{args.seed}",
            steps=args.steps,
            seed=args.seed,
            eval_every=args.eval_every,
            eval_episodes=50,
            save_every=args.eval_every,
            resume=True,
            progress=False,
        )
    )


def curve(run: Path) -> list[dict]:
    """(step, minutes of training, success, max coverage) at every training-time evaluation."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return [
        {"step": r["step"], "minutes": r["train_s"] / 60, "success": r["success"], "max_coverage": r["max_progress"]}
        for r in rows
        if "success" in r
    ]


def episodes_by_run(out: Path) -> dict[str, dict[int, tuple[bool, float]]]:
    """Per run name, per evaluation seed: (success, max coverage) from a merge's ``eval/episodes.csv``."""
    runs: dict[str, dict[int, tuple[bool, float]]] = {}
    with (out / "eval" / "episodes.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            outcome = (row["success"] == "True", float(row["max_progress"]))
            runs.setdefault(row["policy"], {})[int(row["seed"])] = outcome
    return runs


def paired_against(out: Path, other: Path) -> dict:
    """Each run against the run of the same name in another merged bar folder, on their shared seeds."""
    ours, theirs = episodes_by_run(out), episodes_by_run(other)
    paired = {}
    for name in sorted(set(ours) & set(theirs)):
        seeds = sorted(set(ours[name]) & set(theirs[name]))
        a = np.array([ours[name][s] for s in seeds])
        b = np.array([theirs[name][s] for s in seeds])
        paired[name] = {
            "episodes": len(seeds),
            "mcnemar": mcnemar_exact(a[:, 0] > 0, b[:, 0] > 0),
            "coverage_diff": float(np.mean(a[:, 1] - b[:, 1])),
            "coverage_diff_ci95": mean_interval(a[:, 1] - b[:, 1]),
        }
    return {"folder": str(other), "runs": paired}


def merge(args: argparse.Namespace) -> dict:
    runs = sorted(p for p in args.out.glob("*-seed*") if (p / "checkpoints" / "latest.json").exists())
    summary = args.out / "eval" / "summary.json"
    done = json.loads(summary.read_text()) if summary.exists() else {}
    if set(done.get("policies", {})) == {r.name for r in runs} and done.get("seeds", {}).get("count") == args.episodes:
        report = done  # evaluated already (a merge that stopped later): reuse
    else:
        report = evaluate(
            EvalConfig(
                checkpoints=tuple(runs),
                labels=tuple(r.name for r in runs),
                task="pusht",
                episodes=args.episodes,
                out=args.out / "eval",
                progress=False,
            )
        )
    families: dict[str, dict] = {}
    for run in runs:
        family, seed = run.name.rsplit("-seed", 1)
        scores = report["policies"][run.name]
        entry = families.setdefault(family, {"per_seed": {}, "success": [], "coverage": []})
        entry["per_seed"][seed] = {
            "success_rate": scores["success_rate"],
            "mean_max_coverage": scores["mean_max_progress"],
            "train_minutes": curve(run)[-1]["minutes"] if curve(run) else None,
            "curve": curve(run),
        }
    for name, episodes in episodes_by_run(args.out).items():
        family = name.rsplit("-seed", 1)[0]
        families[family]["success"] += [success for success, _ in episodes.values()]
        families[family]["coverage"] += [coverage for _, coverage in episodes.values()]
    for entry in families.values():
        success, coverage = entry.pop("success"), np.array(entry.pop("coverage"))
        entry["pooled"] = {
            "episodes": len(success),
            "success_rate": sum(success) / len(success),
            "success_ci95": list(wilson_interval(sum(success), len(success))),
            "mean_max_coverage": float(coverage.mean()),
            "max_coverage_ci95": mean_interval(coverage),
        }
    collected = args.out / "collect.json"
    return {
        "demonstrations": json.loads(collected.read_text()) if collected.exists() else None,
        "families": families,
        "sampling_variants": {
            name: compare_variants(of_name, changes, args.episodes, args.out / "variants" / name)["pusht"]
            for name, changes in VARIANTS.items()
            if (of_name := [r for r in runs if r.name.rsplit("-seed", 1)[0] == name])
        },
        "against": paired_against(args.out, args.against) if args.against else None,
        "eval_episodes_per_seed": args.episodes,
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/pusht-bar"))
    parser.add_argument("--family", default="diffusion")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="policy settings NAME=VALUE (strings) off the defaults")
    parser.add_argument("--name", default="", help="run name in place of the family's (with --set)")
    parser.add_argument("--demos", type=int, default=200)
    parser.add_argument(
        "--noise", type=float, default=0.0, help="DART noise of the demonstrations (protege collect --noise)"
    )
    parser.add_argument(
        "--noise-burst", type=int, default=0, help="DART noise in bursts (protege collect --noise-burst)"
    )
    parser.add_argument(
        "--noise-gap", type=int, default=40, help="clean steps between bursts (protege collect --noise-gap)"
    )
    parser.add_argument("--steps", type=int, default=50000)
    parser.add_argument("--eval-every", type=int, default=5000)
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--episodes", type=int, default=100, help="final evaluation episodes per run (--merge)")
    parser.add_argument(
        "--against", type=Path, help="with --merge: a merged bar folder whose same-named runs each run is paired with"
    )
    args = parser.parse_args()
    if args.merge:
        print(json.dumps(merge(args), indent=2))
    else:
        run_one(args)


if __name__ == "__main__":
    main()
