"""Operators of mixed-quality demonstrations: who drives the robot, and what the log keeps.

``protege collect --mixture expert=0.3 noisy=0.4 random=0.2 corrupted=0.1`` splits the episodes
between operators, each built around the task's scripted expert:

- ``expert``: the scripted expert itself.
- ``noisy``: expert action + N(0, (noisy_scale * half_range)^2), clipped to the action bounds.
- ``random``: with probability ``random_epsilon`` per step, a uniform random action in bounds.
- ``sluggish``: a lagging operator, ``a_t = s * a_{t-1} + (1 - s) * expert_t`` with ``a_0 = expert_0``.
- ``corrupted``: the expert acts, but every logged action is an outlier
  ``center +- half_range * U(2, corrupt_scale)``; success and return are the expert's, so they
  cannot reveal the corruption.

Unlike DART exploration (``--noise``/``--epsilon``), which records the expert's clean label in the
perturbed state, an operator's episodes record the action the operator executed: a noisy operator
leaves noisy labels. All randomness comes from per-episode streams ``default_rng([seed, stream])``
(experts: 1, ActionNoise: 3, corruption: 4), so a dataset does not depend on ``--num-envs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from protege.config import CollectConfig
from protege.data.store import EpisodeStore
from protege.tasks.base import Actor, Perturbation, TaskSpec

OPERATORS = ("expert", "noisy", "random", "sluggish", "corrupted")

#: Per-episode stream of the corrupted logs' outliers (experts use 1, ActionNoise 3).
CORRUPT_STREAM = 4


class ActionNoise:
    """Gaussian noise of ``noise`` x the action half-range and, with probability ``epsilon``, a
    uniform random action instead; drawn from per-episode streams so results follow the seeds.

    With ``burst`` > 0 the Gaussian noise comes in bursts of ``burst`` steps, each starting with
    probability 1 / ``gap`` at a clean step: in between, the recorded chunk is the expert's clean
    recovery, which a policy can predict from the state; with noise at every step, a chunk's later
    labels react to noise drawn after its first observation."""

    def __init__(self, spec: TaskSpec, noise: float = 0.0, epsilon: float = 0.0, burst: int = 0, gap: int = 40):
        if noise < 0 or not 0 <= epsilon <= 1:
            raise ValueError(f"need noise >= 0 and 0 <= epsilon <= 1, got noise={noise}, epsilon={epsilon}")
        if burst < 0 or gap < 1:
            raise ValueError(f"need --noise-burst >= 0 and --noise-gap >= 1, got {burst} and {gap}")
        self.low, self.high = spec.action_low, spec.action_high
        self.noise, self.epsilon, self.dim = noise, epsilon, spec.action_dim
        self.burst, self.gap = burst, gap
        self.rngs: list[np.random.Generator] = []
        self.left = np.zeros(0, dtype=int)  # per episode: noisy steps left in the current burst

    def reset(self, seeds: np.ndarray) -> None:
        self.rngs = [np.random.default_rng([int(s), 3]) for s in seeds]
        self.left = np.zeros(len(seeds), dtype=int)

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        draws = np.stack(
            [
                np.concatenate([rng.standard_normal(self.dim), rng.random(self.dim + 1 + bool(self.burst))])
                for rng in self.rngs
            ]
        )
        half = (self.high - self.low) / 2
        scale = self.noise * (self._in_burst(draws[:, -1]) if self.burst else np.ones(len(actions)))
        noisy = actions + scale[:, None] * half * draws[:, : self.dim]
        uniform = self.low + (self.high - self.low) * draws[:, self.dim : 2 * self.dim]
        random = draws[:, 2 * self.dim : 2 * self.dim + 1] < self.epsilon
        return np.clip(np.where(random, uniform, noisy), self.low, self.high).astype(np.float32)

    def _in_burst(self, uniform: np.ndarray) -> np.ndarray:
        """Per episode, whether this step is noisy: inside a burst, or a clean step that starts one."""
        on = (self.left > 0) | (uniform < 1 / self.gap)
        self.left = np.where(self.left > 0, self.left - 1, np.where(on, self.burst - 1, 0))
        return on.astype(float)

    @property
    def label(self) -> str:
        dart = f"dart{self.noise:g}" + (f"-burst{self.burst}gap{self.gap}" if self.burst else "")
        parts = [dart if self.noise else "", f"eps{self.epsilon:g}" if self.epsilon else ""]
        return "-".join(p for p in parts if p)


class PerturbedActor:
    """The expert's action passed through ``perturb``: executed, and recorded as the operator's own."""

    def __init__(self, expert: Actor, perturb: Perturbation):
        self.expert, self.perturb = expert, perturb

    def reset(self, seeds: np.ndarray) -> None:
        self.expert.reset(seeds)
        self.perturb.reset(seeds)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.perturb(self.expert.act(obs))


class SluggishActor:
    """A slow operator: each step moves only ``1 - smoothing`` of the way to the expert's action."""

    def __init__(self, expert: Actor, smoothing: float):
        self.expert, self.smoothing = expert, smoothing
        self.previous: np.ndarray | None = None  # (B, A) last executed actions

    def reset(self, seeds: np.ndarray) -> None:
        self.expert.reset(seeds)
        self.previous = None

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        target = np.asarray(self.expert.act(obs), dtype=np.float64)
        if self.previous is not None:
            target = self.smoothing * self.previous + (1 - self.smoothing) * target
        self.previous = target
        return target.astype(np.float32)


def make_operator(name: str, expert: Actor, spec: TaskSpec, cfg: CollectConfig) -> tuple[Actor, str]:
    """The actor that drives ``name``'s episodes and their ``source`` label. ``corrupted`` is driven
    by the expert; its logs are rewritten afterwards by ``corrupt_actions``."""
    if name == "noisy":
        if not cfg.noisy_scale >= 0:
            raise ValueError(f"--noisy-scale must be >= 0, got {cfg.noisy_scale}")
        return PerturbedActor(expert, ActionNoise(spec, noise=cfg.noisy_scale)), f"noisy{cfg.noisy_scale:g}"
    if name == "random":
        if not 0 <= cfg.random_epsilon <= 1:
            raise ValueError(f"--random-epsilon must be in [0, 1], got {cfg.random_epsilon}")
        return PerturbedActor(expert, ActionNoise(spec, epsilon=cfg.random_epsilon)), f"random{cfg.random_epsilon:g}"
    if name == "sluggish":
        if not 0 <= cfg.sluggish < 1:
            raise ValueError(f"--sluggish must be in [0, 1), got {cfg.sluggish}")
        return SluggishActor(expert, cfg.sluggish), f"sluggish{cfg.sluggish:g}"
    if name == "corrupted" and not cfg.corrupt_scale >= 2:
        raise ValueError(
            f"--corrupt-scale must be >= 2 (outliers lie 2 to corrupt_scale half-ranges out), got {cfg.corrupt_scale}"
        )
    return expert, name


def corrupt_actions(store: EpisodeStore, spec: TaskSpec, scale: float) -> EpisodeStore:
    """Replace every recorded action by ``center +- half_range * U(2, scale)``, a random sign per
    element; drawn from each episode's seed, so an episode's corruption does not depend on the batch."""
    draws = np.concatenate(
        [
            np.random.default_rng([int(seed), CORRUPT_STREAM]).random((length, 2, store.action_dim))
            for seed, length in zip(store.episodes["seed"], store.episode_lengths)
        ]
    )  # (N, 2, A): magnitude, sign
    center, half = (spec.action_high + spec.action_low) / 2, (spec.action_high - spec.action_low) / 2
    magnitude = 2 + (scale - 2) * draws[:, 0]
    sign = np.where(draws[:, 1] < 0.5, -1.0, 1.0)
    return replace(store, action=(center + sign * half * magnitude).astype(np.float32))


def parse_mixture(items: Sequence[str]) -> dict[str, float]:
    """``["expert=0.3", "noisy=0.7"]`` -> ``{"expert": 0.3, "noisy": 0.7}``; known operators only,
    fractions > 0 summing to 1."""
    fractions: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--mixture entries look like NAME=FRACTION, got '{item}'")
        if name not in OPERATORS:
            raise ValueError(f"--mixture: unknown operator '{name}'; known operators: {', '.join(OPERATORS)}")
        if name in fractions:
            raise ValueError(f"--mixture names operator '{name}' twice")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"--mixture: fraction of '{name}' must be a number, got '{value}'") from None
        if not fraction > 0:
            raise ValueError(f"--mixture: fraction of '{name}' must be > 0, got {value}")
        fractions[name] = fraction
    total = sum(fractions.values())
    if abs(total - 1) > 1e-6:
        raise ValueError(f"--mixture fractions must sum to 1, got {total:g} ({' '.join(items)})")
    return fractions


def assign_operators(fractions: dict[str, float], episodes: int, seed: int) -> np.ndarray:
    """(episodes,) operator name of each episode: largest-remainder counts of ``fraction * episodes``,
    interleaved over the episodes by a permutation seeded with ``seed``."""
    names = list(fractions)
    exact = np.array([fractions[name] for name in names]) / sum(fractions.values()) * episodes
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact, kind="stable")[: episodes - counts.sum()]] += 1  # largest remainders first
    return np.random.default_rng(seed).permutation(np.repeat(names, counts))
