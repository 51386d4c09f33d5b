"""How long `protege report` takes and how big its page gets on a large benchmark: a synthetic
policies matrix of TASKS x POLICIES cells (3 training seeds, 100 evaluation episodes each, an 8000-step
metrics log per run, 2 + 2 rollout videos per cell of seed 0), laid out as `protege bench --suite
policies` lays it out, built with the real report code. The rows are random draws (the numbers are
not results); the size and the time are. Prints JSON.

    python benchmarks/report_size.py --tasks 10 --policies 10 --work /tmp/report-size
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np

from protege.evaluate.evaluate import EPISODE_FIELDS
from protege.evaluate.videos import write_webm
from protege.machine import machine
from protege.report.build import write_report


def _video(path: Path, rng: np.random.Generator) -> None:
    """A 40-frame 128 px clip of a moving dot: about the size of a toy task's rollout video."""
    frames = np.full((40, 128, 128, 3), 245, np.uint8)
    x = np.cumsum(rng.integers(1, 4, 40)) % 120
    for t, xt in enumerate(x):
        frames[t, 60:68, xt : xt + 8] = (40, 90, 200)
    write_webm(path, frames, 10)


def _run(folder: Path, policy: str, seed: int, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": seed, "steps": 8000, "policy": {"name": policy}}))
    rows = [
        {"step": s, "loss": float(np.exp(-s / 3000) + 0.01 * rng.random()), "samples_per_s": 9000.0, "train_s": s / 50}
        for s in range(100, 8001, 100)
    ]
    rows += [
        {"step": s, "train_s": s / 50, "val_loss": float(np.exp(-s / 3000)), "success": float(rng.random())}
        for s in (2000, 4000, 6000, 8000)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def build(work: Path, tasks: int, policies: int, seeds: int, episodes: int) -> Path:
    rng = np.random.default_rng(0)
    names = [f"policy{i}" for i in range(policies)]
    clip = work / "clip.webm"
    _video(clip, rng)
    summary = {"tasks": {}, "baseline": names[0], "machine": machine()}
    for t in range(tasks):
        task = f"toy/task{t}"
        summary["tasks"][task] = {
            n: {"inference_ms_per_action": {"batch_1": float(rng.uniform(0.1, 5))}} for n in names
        }
        for seed in range(seeds):
            base = work / f"toy-task{t}" / f"seed{seed}"
            rate = {n: rng.uniform(0.1, 0.95) for n in names}
            rows, videos = [], []
            for n in names:
                _run(base / n, n, seed, rng)
                success = rng.random(episodes) < rate[n]
                for e in range(episodes):
                    rows.append(
                        {
                            "task": task,
                            "policy": n,
                            "checkpoint": str(base / n / "checkpoints" / "step_8000"),
                            "seed": 100_000 + e,
                            "success": bool(success[e]),
                            "return": float(success[e]),
                            "length": int(rng.integers(20, 80)),
                            "max_progress": "",
                            "wall_time_s": 0.1,
                        }
                    )
                if seed == 0:
                    for k, e in enumerate([*np.flatnonzero(success)[:2], *np.flatnonzero(~success)[:2]]):
                        name = f"{n}-seed{100_000 + e}-{'success' if k < 2 else 'failure'}.webm"
                        (base / "eval" / "videos").mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(clip, base / "eval" / "videos" / name)
                        videos.append(
                            {
                                "policy": n,
                                "task": task,
                                "seed": 100_000 + int(e),
                                "success": k < 2,
                                "length": 40,
                                "file": f"videos/{name}",
                                "width": 128,
                                "height": 128,
                                "fps": 10,
                            }
                        )
            (base / "eval").mkdir(parents=True, exist_ok=True)
            with (base / "eval" / "episodes.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=EPISODE_FIELDS)
                writer.writeheader()
                writer.writerows(rows)
            summary_json = {"task": task, "policies": {n: {} for n in names}, "videos": videos}
            (base / "eval" / "summary.json").write_text(json.dumps(summary_json))
    (work / "summary.json").write_text(json.dumps(summary))
    return work


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--policies", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--work", type=Path, default=Path("/tmp/report-size"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    folder = build(args.work, args.tasks, args.policies, args.seeds, args.episodes)
    start = time.perf_counter()
    out = write_report(folder)
    seconds = time.perf_counter() - start
    result = {
        "cells": args.tasks * args.policies,
        "training_seeds": args.seeds,
        "episodes_per_seed": args.episodes,
        "build_s": round(seconds, 2),
        "index_html_bytes": (out / "index.html").stat().st_size,
        "videos": len(list((out / "videos").glob("*.webm"))),
        "report_folder_bytes": size(out),
        "machine": machine(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
