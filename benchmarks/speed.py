"""Training and inference speed of every registered policy, side by side in one run; prints JSON.

    python benchmarks/speed.py [--steps 200] [--repeats 50]

Training: optimizer steps/s and samples/s at batch 256 (median of 5 timed windows). Inference:
milliseconds per predicted chunk at batch 1 and 64 (median over repeats), under inference_mode.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from protege.bench.machine import machine
from protege.data.windows import WindowSampler
from protege.evaluate.timing import predict_ms
from protege.policies import POLICIES, FeatureSpec, make_policy
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per timed window")
    parser.add_argument("--repeats", type=int, default=50, help="timed predict calls per batch size")
    args = parser.parse_args()
    task = make_task("toy/fork")
    store = rollout(task, task.make_expert(), np.arange(100), num_envs=100, record=True, progress=False).store
    results = {"machine": machine(), "task": task.name, "policies": {}}
    for name, cls in POLICIES.items():
        if "teacher" in cls.config_class.__dataclass_fields__:
            continue  # a student needs a trained teacher: benchmarks/sampling_steps.py times it
        torch.manual_seed(0)
        config = cls.config_class()
        policy = make_policy(config, FeatureSpec.from_store(store))
        policy.fit(store)
        sampler = WindowSampler(store, config.n_obs, config.horizon)
        trainable = any(p.requires_grad for p in policy.parameters())
        results["policies"][name] = {
            "parameters": sum(p.numel() for p in policy.parameters()),
            "train": train_speed(policy, sampler, 256, args.steps) if trainable else None,
            "inference_ms_per_chunk": {f"batch_{b}": inference_ms(policy, sampler, b, args.repeats) for b in (1, 64)},
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
