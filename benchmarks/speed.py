"""Training and inference speed, batch assembly, policy-in-the-loop evaluation and shared cores,
each section side by side in one run; prints JSON.

    python benchmarks/speed.py [--sections policies assembly loop images shared] [--families ...] [--steps 200]
        [--repeats 50]     (images: --sections images --steps 20)

- ``policies``: every registered family at its defaults on toy/fork: optimizer steps/s and samples/s
  at batch 256 (median of 5 timed windows) and milliseconds per predicted chunk at batch 1 and 64
  (median over repeats, under inference_mode).
- ``assembly``: training batches of 2-frame, 16-step windows gathered per second (batch 256).
- ``loop``: PushT and Meta-World push with 50 envs: env steps/s of the bare simulator (a constant
  action) and with default diffusion choosing every action, and the policy's share of the wall time.
- ``images``: diffusion from PushT's 96 px camera plus the agent's position (``observation.image``,
  ``observation.proprio``) with each camera backbone: training samples/s at batch 64 and
  milliseconds per predicted chunk at batch 1 and 50, under bf16 autocast or not and with
  channels-last or contiguous frames, side by side; on CUDA too when a GPU is present.
- ``shared``: toy/fork diffusion training steps/s of one job alone (torch's threads), two jobs side
  by side with torch's threads each, and two side by side with one thread each (``--threads 1``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from protege.bench.matrix import is_student
from protege.data.store import IMAGE, PROPRIO, EpisodeStore
from protege.data.windows import WindowSampler
from protege.evaluate.actor import PolicyActor
from protege.evaluate.timing import predict_ms
from protege.formats import write_dataset
from protege.machine import machine
from protege.policies import POLICIES, FeatureSpec, make_policy, policy_class
from protege.runner import rollout
from protege.tasks import make_task


def train_speed(policy, sampler, batch_size: int, steps: int) -> dict:
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    windows = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(steps):
            loss = policy.loss(sampler.sample(batch_size, generator)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        windows.append(steps / (time.perf_counter() - start))
    rate = statistics.median(windows)
    return {"steps_per_s": rate, "samples_per_s": rate * batch_size, "batch_size": batch_size}


def inference_ms(policy, sampler, batch: int, repeats: int) -> float:
    policy.eval()
    obs = {k: v for k, v in sampler.gather(torch.arange(batch) % len(sampler)).items() if k.startswith("observation.")}
    ms = predict_ms(policy, obs, repeats=repeats)
    policy.train()
    return ms


def expert_store(task_name: str, episodes: int) -> EpisodeStore:
    task = make_task(task_name)
    return rollout(task, task.make_expert(), np.arange(episodes), num_envs=episodes, record=True, progress=False).store


def policies(store: EpisodeStore, steps: int, repeats: int, families: list[str]) -> dict:
    results = {}
    for name in families:
        cls = policy_class(name)
        if is_student(name):
            continue  # a student needs a trained teacher: benchmarks/sampling_steps.py times it
        torch.manual_seed(0)
        config = cls.config_class()
        policy = make_policy(config, FeatureSpec.from_store(store))
        policy.fit(store)
        sampler = WindowSampler(store, config.n_obs, config.horizon)
        trainable = any(p.requires_grad for p in policy.parameters())
        results[name] = {
            "parameters": sum(p.numel() for p in policy.parameters()),
            "train": train_speed(policy, sampler, 256, steps) if trainable else None,
            "inference_ms_per_chunk": {f"batch_{b}": inference_ms(policy, sampler, b, repeats) for b in (1, 64)},
        }
    return results


def images(steps: int, repeats: int) -> dict:
    """Image diffusion at 96 px: every backbone x (bf16, channels-last) on the devices present."""
    task = make_task("pusht", pixels=True)
    store = rollout(task, task.make_expert(), np.arange(10), num_envs=10, record=True, progress=False).store
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    results: dict = {"frames": len(store.action), "bytes_per_frame": int(np.prod(store.obs[IMAGE].shape[1:]))}
    for device in devices:
        for backbone in ("small", "resnet18"):
            for bf16 in (True, False):
                for channels_last in (True, False):
                    torch.manual_seed(0)
                    config = policy_class("diffusion").config_class(
                        obs_keys=(IMAGE, PROPRIO), vision=backbone, vision_bf16=bf16
                    )
                    policy = make_policy(config, FeatureSpec.from_store(store, config.obs_keys))
                    policy.fit(store)
                    policy.to(device)
                    for camera in policy.cameras.values():
                        camera.channels_last = channels_last
                    sampler = WindowSampler(store, config.n_obs, config.horizon, device)
                    layout = "channels_last" if channels_last else "nchw"
                    name = f"{device}/{backbone}/{'bf16' if bf16 else 'fp32'}/{layout}"
                    # resnet18 at batch 64 takes seconds per step on a CPU: fewer timed steps there
                    timed = steps if device == "cuda" or backbone == "small" else max(2, steps // 10)
                    results[name] = {
                        "parameters": sum(p.numel() for p in policy.parameters()),
                        "train": train_speed(policy, sampler, 64, timed),
                        "inference_ms_per_chunk": {
                            f"batch_{b}": inference_ms(policy, sampler, b, repeats) for b in (1, 50)
                        },
                    }
    return results


def assembly(store: EpisodeStore, batch_size: int = 256, calls: int = 2000) -> dict:
    """Batches of 2-frame, 16-step windows gathered per second (what the trainer does every step)."""
    sampler = WindowSampler(store, 2, 16)
    generator = torch.Generator().manual_seed(0)
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls // 5):
            sampler.sample(batch_size, generator)
        rates.append(calls // 5 * batch_size / (time.perf_counter() - start))
    return {"samples_per_s": statistics.median(rates), "batch_size": batch_size, "n_obs": 2, "horizon": 16}


class TimedActor:
    """An actor that counts the seconds spent choosing actions."""

    def __init__(self, actor) -> None:
        self.actor, self.seconds = actor, 0.0

    def reset(self, seeds: np.ndarray) -> None:
        self.actor.reset(seeds)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        start = time.perf_counter()
        action = self.actor.act(obs)
        self.seconds += time.perf_counter() - start
        return action


class ConstantActor:
    """The middle of the action box at every step: the bare simulator's cost."""

    def __init__(self, low: float, high: float, action_dim: int) -> None:
        self.action = np.full(action_dim, (low + high) / 2, dtype=np.float32)

    def reset(self, seeds: np.ndarray) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.broadcast_to(self.action, (len(next(iter(obs.values()))), len(self.action)))


def in_the_loop(task_name: str, envs: int = 50) -> dict:
    """Env steps/s with default diffusion in the loop vs a constant action, the same 50 seeds."""
    task = make_task(task_name)
    store = expert_store(task_name, 10)  # fits the (untrained) policy's normalizer; speed only
    policy = make_policy(policy_class("diffusion").config_class(), FeatureSpec.from_store(store))
    policy.fit(store)
    policy.eval()
    seeds = 300_000 + np.arange(envs)
    out = {}
    low, high = getattr(task, "action_low", -1.0), getattr(task, "action_high", 1.0)
    for name, actor in (("bare", ConstantActor(low, high, task.spec.action_dim)), ("diffusion", PolicyActor(policy))):
        timed = TimedActor(actor)
        start = time.perf_counter()
        done = rollout(task, timed, seeds, num_envs=envs, progress=False)
        wall = time.perf_counter() - start
        out[name] = {"env_steps_per_s": float(done.lengths.sum() / wall), "actor_share": timed.seconds / wall}
    out["ratio"] = out["diffusion"]["env_steps_per_s"] / out["bare"]["env_steps_per_s"]
    return out


def shared(store: EpisodeStore, steps: int = 600) -> dict:
    """toy/fork diffusion training: one job alone, then two side by side at torch's threads and at one."""
    folder = Path(tempfile.mkdtemp(prefix="protege-shared-"))
    data = write_dataset(store, folder / "data")

    def jobs(count: int, threads: int | None) -> list[float]:
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        command = [
            sys.executable,
            "-m",
            "protege.cli",
            "train",
            str(data),
            "policy:diffusion",
            "--steps",
            str(steps),
            "--eval-every",
            "0",
            "--log-every",
            "100",
            "--no-progress",
            "--device",
            "cpu",
        ]
        threads_arg = ["--threads", str(threads)] if threads else []
        runs = [folder / f"run-{count}-{threads}-{i}" for i in range(count)]
        procs = [
            subprocess.Popen([*command, *threads_arg, "--out", str(r)], env=env, stdout=subprocess.DEVNULL)
            for r in runs
        ]
        for p in procs:
            if p.wait():
                raise RuntimeError(f"training job failed: {p.args}")
        rates = []
        for run in runs:
            rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            rates.append(steps / rows[-1]["train_s"])
        return rates

    alone = jobs(1, None)[0]
    two_default, two_single = jobs(2, None), jobs(2, 1)
    return {
        "steps": steps,
        "alone_steps_per_s": alone,
        "two_jobs_torch_threads_steps_per_s": two_default,
        "two_jobs_one_thread_steps_per_s": two_single,
        "ratio_each_vs_alone": {
            "torch_threads": [r / alone for r in two_default],
            "one_thread": [r / alone for r in two_single],
        },
        "ratio_together_vs_alone": {"torch_threads": sum(two_default) / alone, "one_thread": sum(two_single) / alone},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["policies", "assembly", "loop", "shared"],
        choices=["policies", "assembly", "loop", "images", "shared"],
    )
    parser.add_argument("--families", nargs="+", default=list(POLICIES), help="families the policies section times")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per timed window")
    parser.add_argument("--repeats", type=int, default=50, help="timed predict calls per batch size")
    args = parser.parse_args()
    store = expert_store("toy/fork", 100)
    results: dict = {"machine": machine(), "task": "toy/fork"}
    if "policies" in args.sections:
        results["policies"] = policies(store, args.steps, args.repeats, args.families)
    if "assembly" in args.sections:
        results["batch_assembly"] = assembly(store)
    if "loop" in args.sections:
        results["policy_in_the_loop"] = {name: in_the_loop(name) for name in ("pusht", "metaworld/push")}
    if "images" in args.sections:
        results["images"] = images(args.steps, args.repeats)
    if "shared" in args.sections:
        results["shared_cores"] = shared(store)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
