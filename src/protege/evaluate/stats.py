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


def mean_interval(values: np.ndarray) -> list[float]:
    """Normal 95% interval of a mean (NaN bounds for fewer than 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    sem = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return [float(np.mean(values)) - 1.96 * sem, float(np.mean(values)) + 1.96 * sem]


def summarize(
    success: np.ndarray, returns: np.ndarray, lengths: np.ndarray, max_progress: np.ndarray | None = None
) -> dict:
    """Success rate with its Wilson interval, mean return with a normal 95% interval, episodes; with
    ``max_progress`` (a task's progress signal, max per episode) its mean with a normal 95% interval."""
    n = len(success)
    k = int(np.sum(success))
    lo, hi = wilson_interval(k, n)
    summary = {
        "episodes": n,
        "successes": k,
        "success_rate": k / n if n else float("nan"),
        "success_ci95": [lo, hi],
        "mean_return": float(np.mean(returns)),
        "return_ci95": mean_interval(returns),
        "mean_length": float(np.mean(lengths)),
    }
    if max_progress is not None:
        low, high = mean_interval(max_progress)
        summary["mean_max_progress"] = float(np.mean(max_progress))
        summary["max_progress_ci95"] = [max(0.0, low), min(1.0, high)] if n > 1 else [low, high]
    return summary


#: Two-sided 95% Student-t quantiles for 1..30 degrees of freedom; larger ones use an expansion.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_quantile_975(df: int) -> float:
    """0.975 quantile of Student's t (exact to 3 decimals): for intervals over a few training seeds."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963984540054
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def interval_over_seeds(rates: list[float], clip: bool = True) -> tuple[float, float]:
    """95% t-interval of the mean over training seeds (a point with one seed); ``clip`` bounds it to
    [0, 1] for success rates (a paired difference of rates lives in [-1, 1] and is not clipped)."""
    mean = float(np.mean(rates))
    if len(rates) < 2:
        return mean, mean
    half = t_quantile_975(len(rates) - 1) * float(np.std(rates, ddof=1)) / math.sqrt(len(rates))
    return (max(0.0, mean - half), min(1.0, mean + half)) if clip else (mean - half, mean + half)
