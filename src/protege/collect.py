"""Demonstrations from a task's scripted expert, written as a LeRobotDataset v3 folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protege.config import CollectConfig
from protege.data.store import EpisodeStore
from protege.evaluate.rollout import rollout
from protege.tasks import make_task


def collect(cfg: CollectConfig) -> tuple[Path, EpisodeStore]:
    """Run the expert on seeds ``cfg.seed + i`` and save the recorded episodes."""
    task = make_task(cfg.task)
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    seeds = cfg.seed + np.arange(cfg.episodes)
    result = rollout(task, task.make_expert(), seeds, num_envs=cfg.num_envs, record=True, source="expert",
                     progress=cfg.progress, desc=f"collect {cfg.task}")
    store = result.store
    if cfg.success_only:
        kept = np.flatnonzero(store.episodes["success"])
        if len(kept) == 0:
            raise RuntimeError(f"the expert solved none of {cfg.episodes} episodes of {cfg.task}; nothing to keep")
        store = store.select(kept)
    out = cfg.out or Path("data") / cfg.task.replace("/", "-")
    store.save(out, overwrite=cfg.overwrite)
    return out, store
