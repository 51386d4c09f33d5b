"""Demonstrations from a task's scripted expert, written as a LeRobotDataset v3 folder.

Exploration for robustness (DART, Laskey et al. 2017): the environments execute a perturbed
action while the dataset records the expert's own action in the visited state, so a policy learns
how the expert recovers from the drift its own errors will cause.

Mixed-quality datasets (``--mixture``): the episodes are split between operators built around the
expert (noisy, random, sluggish, corrupted logs; see ``protege.demos.demonstrators``). Unlike DART, each
episode records what its operator executed, so the dataset holds bad labels for curation to find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protege.atomic import refuse_existing
from protege.config import CollectConfig
from protege.data.store import EpisodeStore
from protege.demos.demonstrators import ActionNoise, assign_operators, corrupt_actions, make_operator, parse_mixture
from protege.formats import write_dataset
from protege.runner import rollout
from protege.tasks import make_task
from protege.tasks.base import Actor, Perturbation, Task


def collect(cfg: CollectConfig) -> tuple[Path, EpisodeStore]:
    """Run the expert (or the operators of ``cfg.mixture``) on seeds ``cfg.seed + i`` and save the episodes."""
    task = make_task(cfg.task, pixels=cfg.pixels, image_size=cfg.image_size)
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    if cfg.noise_burst and not cfg.noise:
        raise ValueError(f"--noise-burst {cfg.noise_burst} shapes DART noise in time; give it --noise too")
    out = cfg.out or Path("data") / cfg.task.replace("/", "-")
    refuse_existing(out, cfg.overwrite)  # before simulating, not after
    seeds = cfg.seed + np.arange(cfg.episodes)
    store = _collect_mixture(task, seeds, cfg) if cfg.mixture else _collect_expert(task, seeds, cfg)
    if cfg.success_only:
        kept = np.flatnonzero(store.episodes["success"])
        if len(kept) == 0:
            raise ValueError(
                f"none of the {cfg.episodes} episodes of {cfg.task} succeeded, so --success-only keeps nothing; "
                "collect more episodes or less noise, or drop --success-only"
            )
        store = store.select(kept)
    write_dataset(store, out, overwrite=cfg.overwrite, video=False)  # cameras as PNG frames: bit-exact
    return out, store


def _collect_expert(task: Task, seeds: np.ndarray, cfg: CollectConfig) -> EpisodeStore:
    """The expert on every seed, with DART exploration when --noise/--epsilon ask for it."""
    noise = (
        ActionNoise(task.spec, cfg.noise, cfg.epsilon, cfg.noise_burst, cfg.noise_gap)
        if cfg.noise or cfg.epsilon
        else None
    )
    source = "expert" + (f"-{noise.label}" if noise else "")
    return _record(task, task.make_expert(), seeds, source, cfg, perturb=noise)


def _collect_mixture(task: Task, seeds: np.ndarray, cfg: CollectConfig) -> EpisodeStore:
    """One rollout per operator over its share of the seeds, then all episodes back in seed order."""
    if cfg.noise or cfg.epsilon:
        raise ValueError("--mixture does not combine with --noise/--epsilon; use the noisy and random operators")
    fractions = parse_mixture(cfg.mixture)
    assigned = assign_operators(fractions, cfg.episodes, cfg.seed)  # (E,) operator per seed
    expert = task.make_expert()
    operators = {
        name: make_operator(name, expert, task.spec, cfg) for name in fractions
    }  # validate all before simulating
    stores = []
    for name, (actor, source) in operators.items():
        if not (assigned == name).any():
            continue
        store = _record(task, actor, seeds[assigned == name], source, cfg)
        stores.append(corrupt_actions(store, task.spec, cfg.corrupt_scale) if name == "corrupted" else store)
    store = EpisodeStore.concatenate(stores)
    return store.select(np.argsort(store.episodes["seed"]))


def _record(
    task: Task, actor: Actor, seeds: np.ndarray, source: str, cfg: CollectConfig, perturb: Perturbation | None = None
) -> EpisodeStore:
    return rollout(
        task,
        actor,
        seeds,
        num_envs=cfg.num_envs,
        record=True,
        source=source,
        progress=cfg.progress,
        desc=f"collect {cfg.task} {source}",
        perturb=perturb,
        asynchronous=cfg.async_envs,
    ).store
