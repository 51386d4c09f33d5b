"""Statistics computed from per-episode records: Wilson intervals and the exact McNemar test."""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% (by default) Wilson score interval for a binomial proportion; sane at 0 and n."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z**2 / n
    center = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo = 0.0 if successes == 0 else max(0.0, center - half)  # exact ends: no 1e-17 rounding residue
    hi = 1.0 if successes == n else min(1.0, center + half)
    return (lo, hi)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> dict:
    """Exact (binomial) McNemar test for paired binary outcomes of two policies on the same seeds.

    Only discordant pairs carry information: ``a_only`` seeds where A succeeded and B failed,
    ``b_only`` the reverse. Under H0 each discordant pair goes either way with probability 1/2;
    the two-sided p-value is 2 * P(X <= min(a_only, b_only)), capped at 1.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have the same shape, got {a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    tail = sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2**n if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": min(1.0, 2 * tail), "difference": float(a.mean() - b.mean())}


def summarize(success: np.ndarray, returns: np.ndarray, lengths: np.ndarray) -> dict:
    """Success rate with its Wilson interval, mean return with a normal 95% interval, episodes."""
    n = len(success)
    k = int(np.sum(success))
    lo, hi = wilson_interval(k, n)
    sem = float(np.std(returns, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {
        "episodes": n, "successes": k, "success_rate": k / n if n else float("nan"),
        "success_ci95": [lo, hi], "mean_return": float(np.mean(returns)),
        "return_ci95": [float(np.mean(returns)) - 1.96 * sem, float(np.mean(returns)) + 1.96 * sem],
        "mean_length": float(np.mean(lengths)),
    }
