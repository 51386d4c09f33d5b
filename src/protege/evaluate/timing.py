"""Latency of a policy call, measured one way everywhere (benchmarks and the comparison matrix)."""

from __future__ import annotations

import statistics
import time

import torch

from protege.policies.base import Policy


def predict_ms(
    policy: Policy, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None, repeats: int = 20
) -> float:
    """Median milliseconds of one batched ``predict`` after a warm-up call, synchronized on CUDA."""

    def call() -> None:
        policy.predict(obs, noise=noise)
        if policy.device.type == "cuda":
            torch.cuda.synchronize(policy.device)

    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
