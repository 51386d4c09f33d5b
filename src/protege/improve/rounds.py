"""The round loop of the methods that ask the scripted expert for labels (DAgger, intervention
learning, continued BC): collect an aggregate's worth of episodes, fine-tune, score, repeat.

Round k writes its new episodes to ``OUT/data/round-k`` and fine-tunes the previous round's
policy (the base, in round 1) on the base run's dataset plus every round's episodes so far, with
the base run's own training settings (``protege train --init --add-data``), into
``OUT/rounds/round-k``. The episodes of a round are a deterministic function of its seeds and the
policy that collected them, so a run killed mid-round collects them again and resumes the
round's training run; a finished round is never redone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from protege.config import TrainConfig
from protege.curation.curate import CurationConfig
from protege.data.store import EpisodeStore
from protege.formats import write_dataset
from protege.improve.run import ImproveRun
from protege.policies import Policy
from protege.policies.storage import load_policy, read_checkpoint_json
from protege.runner import Rollouts, rollout
from protege.tasks.base import Actor


@dataclass
class Collected:
    """One round's new training episodes, the expert labels they cost and the env steps taken."""

    store: EpisodeStore | None
    labels: int
    env_steps: int


#: A method's collection: (current policy, this round's seeds, round number) -> what it gathered.
Collect = Callable[[Policy, np.ndarray, int], Collected]


def record_round(run: ImproveRun, actor: Actor, seeds: np.ndarray, source: str, k: int, **options) -> Rollouts:
    """Round ``k``'s episodes on ``seeds`` with ``actor``, recorded (``options`` go to ``rollout``)."""
    return rollout(
        run.task,
        actor,
        seeds,
        num_envs=run.cfg.num_envs,
        record=True,
        source=source,
        progress=run.cfg.progress,
        desc=f"{run.cfg.method} round {k}",
        **options,
    )


def base_training(run: ImproveRun) -> TrainConfig:
    """The base run's training settings, with its dataset found (``--dataset`` overrides it)."""
    saved = read_checkpoint_json(run.base_folder / "config.json")
    if "train" not in saved:
        raise ValueError(
            f"'{run.base_folder}' was not trained by `protege train` (no train settings to fine-tune with)"
        )
    cfg = TrainConfig.from_json(saved["train"])
    dataset = run.cfg.dataset or cfg.dataset
    if not Path(dataset).exists():
        raise FileNotFoundError(
            f"the base run's dataset '{dataset}' is not there (relative to where it was trained?); pass --dataset"
        )
    return replace(cfg, dataset=Path(dataset))


def improve_by_rounds(run: ImproveRun, collect: Collect) -> Policy:
    """Rounds until the env-step (or label) budget is spent; the last round's policy."""
    cfg, state = run.cfg, run.state
    base_cfg = base_training(run)
    rounds = state.setdefault("rounds", 0)
    policy = load_policy(_round_dir(run, rounds), device=run.device) if rounds else run.base
    if state["points"] == 0:
        run.record(policy, 0, 0, 0, {"round": 0})
    while not run.done:
        k = state["rounds"] + 1
        seeds = run.seeds(cfg.episodes_per_round)
        got = collect(policy, seeds, k)
        data = [run.out / "data" / f"round-{i:03d}" for i in range(1, k + 1)]
        if got.store is not None:
            write_dataset(got.store, data[-1], overwrite=True, video=False)
        init = _round_dir(run, k - 1) if k > 1 else run.base_folder
        train_cfg = replace(
            base_cfg,
            curation=CurationConfig(),  # a filter (success-only) would drop the failed rollouts DAgger learns from
            add_data=tuple(path for path in data if path.exists()),
            init=init,
            out=_round_dir(run, k),
            steps=cfg.round_steps,
            warmup_steps=min(base_cfg.warmup_steps, cfg.round_steps // 10),
            save_every=cfg.round_steps,
            eval_every=0,
            keep_best=0,
            log=(),
            resume=True,
            seed=base_cfg.seed + k,
            device=cfg.device,
            progress=cfg.progress,
        )
        from protege.train.trainer import train  # the trainer imports the evaluation loop, not improve

        train(train_cfg)
        policy = load_policy(_round_dir(run, k), device=run.device)
        state["rounds"] = k
        run.record(
            policy,
            state["env_steps"] + got.env_steps,
            state["labels"] + got.labels,
            state["episodes"] + len(seeds),
            {"round": k},
        )
    return policy


def _round_dir(run: ImproveRun, k: int) -> Path:
    return run.out / "rounds" / f"round-{k:03d}"
