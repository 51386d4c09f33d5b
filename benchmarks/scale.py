"""Scaling past one process: data-parallel training under torchrun, and bench / eval on Ray; prints JSON.

    python benchmarks/scale.py [--sections train bench eval] [--nproc 1 2] [--workers 1 2] [--out DIR]
    python benchmarks/scale.py --nproc 1 2 4 8 --device cuda --workers 1 8 --ray-gpus 1   (a multi-GPU node)

Every number comes from the README's commands run as a user runs them, side by side in one run:

- ``train``: PushT (state) diffusion at its defaults, ``protege train --nproc N`` for each N
  (global batch 256 throughout, so every N does the same optimization): training samples/s
  (median of the logged windows, rank 0's clock over the whole global batch), the wall time of
  the command (process start and the process group included), and samples/s against one process.
  On the CPU each process gets cores / N torch threads; one process with one thread is timed too.
- ``bench``: a small policies matrix (toy/fork, mlp + diffusion, 2 training seeds = 4 training
  cells and 2 evaluations), run here without Ray and then on a Ray head started with W CPUs
  (``ray start --head --num-cpus W``) for each W, with one CPU per cell: wall time and speed-up.
- ``eval``: one PushT diffusion checkpoint on 200 seeds in waves of 50 (4 shards), here without
  Ray and on Ray with W workers (one CPU each): wall time, speed-up against one local process with
  one thread, and episodes.csv against the local one: the same seeds, successes and lengths, and the
  largest difference in return and max coverage (set beside a second local run of the same command).

Local runs are timed with one torch thread (a Ray cell's share) and with torch's own threads.

Quiet machine required: nothing else running, or the ratios measure the neighbours.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from protege.machine import machine

PROTEGE = [sys.executable, "-m", "protege"]
QUIET = ["--no-progress"]


def timed(command: list[str], env: dict | None = None) -> float:
    """Wall seconds of a command, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_samples_per_s(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return statistics.median(r["samples_per_s"] for r in rows if "samples_per_s" in r)


def collect(task: str, episodes: int, out: Path) -> Path:
    if not (out / "meta" / "info.json").exists():
        timed([*PROTEGE, "collect", task, "--episodes", str(episodes), "--out", str(out), *QUIET])
    return out


def train_section(folder: Path, nprocs: list[int], steps: int, device: str) -> dict:
    data = collect("pusht", 200, folder / "pusht")
    command = [*PROTEGE, "train", str(data), "policy:diffusion", "--steps", str(steps), "--batch-size", "256"]
    command += ["--eval-every", "0", "--log-every", "50", "--device", device, *QUIET]

    def run(name: str, options: list[str]) -> dict:
        out = folder / name
        shutil.rmtree(out, ignore_errors=True)
        wall = timed([*command, "--out", str(out), *options])
        return {"samples_per_s": median_samples_per_s(out), "wall_s": wall}

    rows = {str(n): run(f"train-nproc{n}", ["--nproc", str(n)]) for n in nprocs}
    if device == "cpu":  # one process on one core: what each of N processes on N cores could add up to
        rows["1, one thread"] = run("train-one-thread", ["--threads", "1"])
    one = rows[str(nprocs[0])]["samples_per_s"]
    return {
        "task": "pusht",
        "policy": "diffusion (defaults)",
        "global_batch": 256,
        "steps": steps,
        "device": device,
        "processes": {n: r | {"vs_first": r["samples_per_s"] / one} for n, r in rows.items()},
    }


class RayHead:
    """A Ray head on 127.0.0.1 with ``cpus`` CPUs (and ``gpus``), as a cluster is joined: by address."""

    def __init__(self, cpus: int, gpus: int, temp: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{s.getsockname()[1]}"
        self.env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
        self.ray = str(Path(sys.executable).parent / "ray")
        command = [self.ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.address.split(':')[1]}"]
        command += [f"--num-cpus={cpus}", f"--num-gpus={gpus}", "--include-dashboard=false", f"--temp-dir={temp}"]
        subprocess.run(command, check=True, env=self.env, capture_output=True)

    def __enter__(self) -> RayHead:
        return self

    def __exit__(self, *_: object) -> None:
        subprocess.run([self.ray, "stop", "--force"], env=self.env, capture_output=True)


def on_ray(workers: list[int], gpus: float, temp: Path, command: list[str], cell_options: list[str]) -> dict:
    """Wall seconds of ``command`` on a fresh Ray head with each worker count (one cell per CPU or GPU)."""
    walls = {}
    for w in workers:
        with RayHead(w, w if gpus else 0, temp) as head:
            walls[w] = timed([*command, "--ray", head.address, *cell_options], env=head.env)
    return walls


def bench_section(folder: Path, workers: list[int], gpus: float, steps: int) -> dict:
    matrix = ["bench", "--suite", "policies", "--tasks", "toy/fork", "--policies", "mlp", "diffusion"]
    matrix += ["--num-seeds", "2", "--episodes", "100", "--steps", str(steps), "--eval-episodes", "100"]
    matrix += ["--train-evals", "0", "--videos", "0", *QUIET]
    data = collect("toy/fork", 100, folder / "bench-data")

    def fresh(name: str) -> list[str]:
        out = folder / name
        shutil.rmtree(out, ignore_errors=True)
        (out / "toy-fork").mkdir(parents=True)
        shutil.copytree(data, out / "toy-fork" / "data")  # the same demonstrations; cells are what is timed
        return [*PROTEGE, *matrix, "--out", str(out)]

    local = timed([*fresh("bench-local"), "--threads", "1"])
    local_threads = timed(fresh("bench-local-threads"))
    walls = {}
    for w in workers:
        walls[w] = on_ray([w], gpus, folder / "ray-tmp", fresh(f"bench-ray{w}"), ["--ray-gpus", str(gpus)])[w]
    return {
        "matrix": "toy/fork x (mlp, diffusion) x 2 seeds, 100 demos, 100 eval episodes per seed",
        "steps": steps,
        "local_one_thread_wall_s": local,
        "local_torch_threads_wall_s": local_threads,
        "ray_wall_s": {str(w): s for w, s in walls.items()},
        "speedup_vs_local_one_thread": {str(w): local / s for w, s in walls.items()},
    }


def compare_rows(a: Path, b: Path) -> dict:
    """Two evaluations' episodes.csv: seeds, success and lengths must match exactly; return and max
    progress may differ in the last digits (two local runs of the same PushT command already do)."""

    def read(folder: Path) -> list[dict]:
        with (folder / "episodes.csv").open(newline="") as f:
            return list(csv.DictReader(f))

    ra, rb = read(a), read(b)
    exact = len(ra) == len(rb) and all(
        x[k] == y[k] for x, y in zip(ra, rb) for k in ("task", "policy", "checkpoint", "seed", "success", "length")
    )
    gaps = [abs(float(x[k]) - float(y[k])) for x, y in zip(ra, rb) for k in ("return", "max_progress") if x[k] and y[k]]
    return {"same_outcomes": exact, "max_abs_difference": max(gaps, default=0.0)}


def eval_section(folder: Path, workers: list[int], gpus: float, device: str, episodes: int) -> dict:
    data = collect("pusht", 200, folder / "pusht")
    run = folder / "eval-policy"
    if not (run / "checkpoints" / "latest.json").exists():
        timed(
            [*PROTEGE, "train", str(data), "policy:diffusion", "--steps", "300", "--eval-every", "0", "--out", str(run)]
        )
    command = [*PROTEGE, "eval", str(run), "--episodes", str(episodes), "--num-envs", "50", "--device", device, *QUIET]
    local = timed([*command, "--out", str(folder / "eval-local"), "--threads", "1"])
    timed([*command, "--out", str(folder / "eval-local-again"), "--threads", "1"])
    local_threads = timed([*command, "--out", str(folder / "eval-local-threads")])
    walls, same = {}, {"local_again": compare_rows(folder / "eval-local", folder / "eval-local-again")}
    for w in workers:
        out = folder / f"eval-ray{w}"
        walls[w] = on_ray([w], gpus, folder / "ray-tmp", [*command, "--out", str(out)], ["--ray-gpus", str(gpus)])[w]
        same[str(w)] = compare_rows(folder / "eval-local", out)
    return {
        "task": "pusht",
        "episodes": episodes,
        "num_envs": 50,
        "local_one_thread_wall_s": local,
        "local_torch_threads_wall_s": local_threads,
        "ray_wall_s": {str(w): s for w, s in walls.items()},
        "speedup_vs_local_one_thread": {str(w): local / s for w, s in walls.items()},
        "episodes_csv_vs_local": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["train", "bench", "eval"], choices=["train", "bench", "eval"])
    parser.add_argument("--nproc", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--bench-steps", type=int, default=500)
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ray-gpus", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="protege-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": machine()}
    if "train" in args.sections:
        result["train"] = train_section(folder, args.nproc, args.train_steps, args.device)
    if "bench" in args.sections:
        result["bench"] = bench_section(folder, args.workers, args.ray_gpus, args.bench_steps)
    if "eval" in args.sections:
        result["eval"] = eval_section(folder, args.workers, args.ray_gpus, args.device, args.eval_episodes)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
