"""First numbers per task: the expert, the simulator's speed, and mlp vs diffusion after a fixed CPU budget.

    python benchmarks/tasks.py [--tasks metaworld/reach pusht ...] [--out benchmarks/results/tasks-cpu]
    python benchmarks/tasks.py --speed    # re-measure only the speeds of finished tasks (on a quiet machine)
    python benchmarks/tasks.py --table    # the markdown table of the finished tasks (docs/results.md)

Per task, into OUT/<task>/ (a finished task is skipped, so a killed run resumes):
- expert: success over 100 episodes (seeds 0..99) and demonstration steps/s (expert in the loop, recording);
- bare env steps/s: random actions, 10 in-process environments, construction excluded; the same with
  96 px pixel observations where the simulator renders;
- mlp and diffusion trained on the expert's first 50 successful demonstrations for --steps optimizer
  steps at batch 256, for 3 training seeds; each seed's pair evaluated on the same 50 seeds
  (100000..100049), per-episode rows in OUT/<task>/seed<k>/eval/episodes.csv.
Success per family: mean over training seeds with a 95% t-interval over seeds, the per-seed rates,
and the pooled Wilson interval over all evaluation episodes. Prints the JSON summary of each task.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from protege.atomic import write_json_atomic
from protege.config import EVAL_SEED, EvalConfig, TrainConfig
from protege.evaluate.evaluate import evaluate
from protege.evaluate.stats import interval_over_seeds, wilson_interval
from protege.formats import write_dataset
from protege.machine import machine
from protege.policies import policy_class
from protege.runner import rollout
from protege.tables import markdown_table
from protege.tasks import TASKS, make_task
from protege.train.trainer import train

POLICIES = ("mlp", "diffusion")


def bare_steps_per_s(task, num_envs: int = 10, min_steps: int = 3000) -> float:
    """Env steps/s under uniform random actions, counting only steps of unfinished episodes."""
    env = task.make_env(num_envs)
    rng = np.random.default_rng(0)
    low, high, dim = task.spec.action_low, task.spec.action_high, task.spec.action_dim
    steps, elapsed, wave = 0, 0.0, 0
    while steps < min_steps:
        env.reset(seed=list(range(wave * num_envs, (wave + 1) * num_envs)))
        wave += 1
        done = np.zeros(num_envs, dtype=bool)
        start = time.perf_counter()
        for _ in range(task.spec.max_steps):
            _, _, terminated, truncated, _ = env.step(rng.uniform(low, high, (num_envs, dim)).astype(np.float32))
            steps += int((~done).sum())
            done |= terminated | truncated
            if done.all():
                break
        elapsed += time.perf_counter() - start
    env.close()
    return steps / elapsed


def speeds(name: str) -> dict:
    """Bare simulator steps/s, in state and pixel mode."""
    return {
        "bare_env_steps_per_s": bare_steps_per_s(make_task(name)),
        "pixel_env_steps_per_s": bare_steps_per_s(make_task(name, pixels=True), min_steps=1000),
    }


def expert_run(name: str, episodes: int):
    """The expert on seeds 0..episodes-1, recorded; its summary includes demo generation steps/s."""
    task = make_task(name)
    start = time.perf_counter()
    demos = rollout(
        task, task.make_expert(), np.arange(episodes), num_envs=50, record=True, source="expert", progress=False
    )
    elapsed = time.perf_counter() - start
    return demos, {
        "episodes": episodes,
        "success": float(demos.success.mean()),
        "wilson95": wilson_interval(int(demos.success.sum()), len(demos.success)),
        "mean_length": float(demos.lengths.mean()),
        "demo_steps_per_s": float(demos.lengths.sum() / elapsed),
    }


def run_task(name: str, out: Path, args: argparse.Namespace) -> dict:
    result: dict = {"task": name, **speeds(name)}
    demos, result["expert"] = expert_run(name, args.expert_episodes)
    kept = np.flatnonzero(demos.success)[: args.demos]
    if len(kept) < args.demos:
        result["note"] = f"only {len(kept)} successful demonstrations"
    data = out / "data"
    write_dataset(demos.store.select(kept), data, overwrite=True, video=False)
    rates: dict[str, list[float]] = {p: [] for p in POLICIES}
    pooled: dict[str, list[bool]] = {p: [] for p in POLICIES}
    train_s: dict[str, list[float]] = {p: [] for p in POLICIES}
    for seed in range(args.seeds):
        runs = []
        for family in POLICIES:
            t0 = time.perf_counter()
            runs.append(
                train(
                    TrainConfig(
                        dataset=data,
                        policy=policy_class(family).config_class(),
                        out=out / f"seed{seed}" / family,
                        steps=args.steps,
                        batch_size=256,
                        seed=seed,
                        eval_every=0,
                        save_every=args.steps,
                        progress=False,
                    )
                )
            )
            train_s[family].append(time.perf_counter() - t0)
        report = evaluate(
            EvalConfig(
                checkpoints=tuple(runs),
                task=name,
                episodes=args.eval_episodes,
                seed=EVAL_SEED,
                num_envs=50,
                out=out / f"seed{seed}" / "eval",
                progress=False,
            )
        )
        for family in POLICIES:
            rates[family].append(report["policies"][family]["success_rate"])
        for row in _rows(out / f"seed{seed}" / "eval" / "episodes.csv"):
            pooled[row["policy"]].append(row["success"] == "True")
    result["budget"] = {
        "demos": int(len(kept)),
        "steps": args.steps,
        "batch_size": 256,
        "training_seeds": args.seeds,
        "eval_episodes_per_seed": args.eval_episodes,
    }
    result["policies"] = {
        family: {
            "mean_success": float(np.mean(rates[family])),
            "t95_over_seeds": interval_over_seeds(rates[family]),
            "per_seed": rates[family],
            "pooled_wilson95": wilson_interval(sum(pooled[family]), len(pooled[family])),
            "train_s_median": float(np.median(train_s[family])),
        }
        for family in POLICIES
    }
    return result


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _pct(low: float, high: float) -> str:
    return f"[{100 * low:.0f}, {100 * high:.0f}]"


def table(out: Path) -> str:
    """Markdown table of every finished task under ``out``."""
    rows = []
    for path in sorted(out.glob("*/summary.json")):
        r = json.loads(path.read_text())
        cells = [
            f"`{r['task']}`",
            f"{100 * r['expert']['success']:.0f}% {_pct(*r['expert']['wilson95'])}",
            f"{r['expert']['demo_steps_per_s']:,.0f}",
            f"{r['bare_env_steps_per_s']:,.0f} / {r.get('pixel_env_steps_per_s', float('nan')):,.0f}",
        ]
        for family in POLICIES:
            p = r["policies"][family]
            per_seed = " / ".join(f"{100 * x:.0f}" for x in p["per_seed"])
            cells.append(f"{100 * p['mean_success']:.0f}% {_pct(*p['t95_over_seeds'])} ({per_seed})")
        rows.append(cells)
    headers = [
        "task",
        "expert success (100 ep)",
        "demo steps/s",
        "env steps/s: state / 96 px",
        "mlp success",
        "diffusion success",
    ]
    return markdown_table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=[n for n in TASKS if not n.startswith("toy/")])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tasks-cpu"))
    parser.add_argument("--expert-episodes", type=int, default=100)
    parser.add_argument("--demos", type=int, default=50)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--table", action="store_true", help="print the markdown table of finished tasks and exit")
    parser.add_argument("--speed", action="store_true", help="re-measure the speeds of finished tasks and exit")
    args = parser.parse_args()
    if args.table:
        print(table(args.out))
        return
    if args.speed:
        for path in sorted(args.out.glob("*/summary.json")):
            result = json.loads(path.read_text())
            _, expert = expert_run(result["task"], args.expert_episodes)
            measured = speeds(result["task"])
            result |= measured | {"machine": machine()}
            result["expert"]["demo_steps_per_s"] = expert["demo_steps_per_s"]
            write_json_atomic(path, result)
            print(json.dumps({"task": result["task"], **measured, **expert}), flush=True)
        return
    for name in args.tasks:
        folder = args.out / name.replace("/", "-")
        summary = folder / "summary.json"
        if summary.is_file():
            print(summary.read_text())
            continue
        start = time.perf_counter()
        result = run_task(name, folder, args)
        result["wall_s"] = time.perf_counter() - start
        result["machine"] = machine()
        write_json_atomic(summary, result)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
