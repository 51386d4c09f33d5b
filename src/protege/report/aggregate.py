"""Aggregates across tasks with stratified-bootstrap intervals (Agarwal et al. 2021, "Deep RL at
the Edge of the Statistical Precipice"): the interquartile mean of every run's score on every
task, and the probability that one method beats another on a task, averaged over tasks.

Written here in vectorized numpy rather than imported from ``rliable``: rliable pulls pandas,
seaborn and arch for two small functions, and draws its resamples one at a time in Python. Point
estimates equal rliable's exactly and the intervals agree within bootstrap noise
(tests/test_report.py compares both). Scores are arrays of shape (runs, tasks): one
training seed's success rate per task.
"""

from __future__ import annotations

import numpy as np

#: Bootstrap resamples per interval; the percentile bounds move by well under 0.01 between draws.
REPS = 5000


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean over all runs and tasks, batched over leading axes: (..., runs, tasks) -> (...).

    The middle 50% of the pooled scores, cut as ``scipy.stats.trim_mean(x, 0.25)`` cuts (which rliable uses).
    """
    flat = np.sort(scores.reshape(*scores.shape[:-2], -1), axis=-1)
    cut = int(0.25 * flat.shape[-1])
    return flat[..., cut : flat.shape[-1] - cut].mean(axis=-1)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(a run of X scores above a run of Y on a task; ties count half), averaged over tasks, batched
    over leading axes: (..., runs_x, tasks), (..., runs_y, tasks) -> (...). rliable's Mann-Whitney form."""
    greater = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    ties = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return (greater + 0.5 * ties).mean(axis=-1)


def _resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, runs, tasks): each task's runs drawn with replacement, independently per task (the strata)."""
    runs, tasks = scores.shape
    return scores[rng.integers(0, runs, size=(reps, runs, tasks)), np.arange(tasks)]


def _interval(samples: np.ndarray) -> list[float]:
    return [float(v) for v in np.percentile(samples, [2.5, 97.5])]


def iqm_interval(scores: np.ndarray, reps: int = REPS, seed: int = 0) -> dict:
    """IQM of (runs, tasks) scores with its 95% stratified-bootstrap percentile interval."""
    scores = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return {"iqm": float(iqm(scores)), "ci95": _interval(iqm(_resample(scores, reps, rng)))}


def improvement_interval(x: np.ndarray, y: np.ndarray, reps: int = REPS, seed: int = 0) -> dict:
    """P(X > Y) with its 95% interval, X's and Y's runs resampled independently within each task."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    samples = probability_of_improvement(_resample(x, reps, rng), _resample(y, reps, rng))
    return {"probability": float(probability_of_improvement(x, y)), "ci95": _interval(samples)}
