"""Demonstrations from a task's scripted expert, written as a LeRobotDataset v3 folder.

Exploration for robustness (DART, Laskey et al. 2017): the environments execute a perturbed
action while the dataset records the expert's own action in the visited state, so a policy learns
how the expert recovers from the drift its own errors will cause.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protege.config import CollectConfig
from protege.data.store import EpisodeStore
from protege.evaluate.rollout import rollout
from protege.tasks import make_task
from protege.tasks.base import TaskSpec


class ActionNoise:
    """Gaussian noise of ``noise`` x the action half-range and, with probability ``epsilon``, a
    uniform random action instead; drawn from per-episode streams so results follow the seeds."""

    def __init__(self, spec: TaskSpec, noise: float = 0.0, epsilon: float = 0.0):
        if noise < 0 or not 0 <= epsilon <= 1:
            raise ValueError(f"need noise >= 0 and 0 <= epsilon <= 1, got noise={noise}, epsilon={epsilon}")
        self.low, self.high = spec.action_low, spec.action_high
        self.noise, self.epsilon, self.dim = noise, epsilon, spec.action_dim
        self.rngs: list[np.random.Generator] = []

    def reset(self, seeds: np.ndarray) -> None:
        self.rngs = [np.random.default_rng([int(s), 3]) for s in seeds]

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        draws = np.stack([np.concatenate([rng.standard_normal(self.dim), rng.random(self.dim + 1)]) for rng in self.rngs])
        half = (self.high - self.low) / 2
        noisy = actions + self.noise * half * draws[:, : self.dim]
        uniform = self.low + (self.high - self.low) * draws[:, self.dim : 2 * self.dim]
        random = draws[:, -1:] < self.epsilon
        return np.clip(np.where(random, uniform, noisy), self.low, self.high).astype(np.float32)

    @property
    def label(self) -> str:
        parts = [f"dart{self.noise:g}" if self.noise else "", f"eps{self.epsilon:g}" if self.epsilon else ""]
        return "-".join(p for p in parts if p)


def collect(cfg: CollectConfig) -> tuple[Path, EpisodeStore]:
    """Run the expert on seeds ``cfg.seed + i`` and save the recorded episodes."""
    task = make_task(cfg.task, pixels=cfg.pixels, image_size=cfg.image_size)
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    noise = ActionNoise(task.spec, cfg.noise, cfg.epsilon) if cfg.noise or cfg.epsilon else None
    source = "expert" + (f"-{noise.label}" if noise else "")
    seeds = cfg.seed + np.arange(cfg.episodes)
    result = rollout(task, task.make_expert(), seeds, num_envs=cfg.num_envs, record=True, source=source,
                     progress=cfg.progress, desc=f"collect {cfg.task}", perturb=noise, asynchronous=cfg.async_envs)
    store = result.store
    if cfg.success_only:
        kept = np.flatnonzero(store.episodes["success"])
        if len(kept) == 0:
            raise RuntimeError(f"the expert solved none of {cfg.episodes} episodes of {cfg.task}; nothing to keep")
        store = store.select(kept)
    out = cfg.out or Path("data") / cfg.task.replace("/", "-")
    store.save(out, overwrite=cfg.overwrite)
    return out, store
