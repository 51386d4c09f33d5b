"""Intervention learning (Sirius, Liu et al. 2023) with the scripted expert as the human in the loop.

The policy drives; the expert watches. Where the policy's action strays from the expert's by more
than ``threshold`` (root-mean-square over action dimensions, in units of the action box's
half-width) for ``patience`` steps in a row, the expert takes over for ``takeover`` steps, and
for ``takeover`` more each time it ends while the policy's own action (still computed) strays.
Only the takeover steps count as expert labels (the expert is queried at every step to decide,
as a human watching would be). A round's training episodes are, as in Sirius' weighting, the
intervention segments repeated ``intervention_weight`` times (weighted up: they show how to
recover) and the policy's own segments of the episodes that succeeded (what already works); the
policy's segments of failed episodes are left out.
"""

from __future__ import annotations

import numpy as np

from protege.data.store import EpisodeStore
from protege.evaluate.actor import PolicyActor
from protege.improve.rounds import Collected, improve_by_rounds, record_round
from protege.improve.run import ImproveRun, action_box
from protege.policies import Policy
from protege.tasks.base import Actor


class Supervisor:
    """Runs the policy, hands control to the expert when it strays, logs who acted at every step."""

    def __init__(self, policy_actor: PolicyActor, expert: Actor, half_range: np.ndarray, cfg):
        self.policy_actor, self.expert, self.half_range = policy_actor, expert, half_range
        self.threshold, self.patience, self.takeover = cfg.threshold, cfg.patience, cfg.takeover
        self.waves: list[np.ndarray] = []  # per wave (T, B): the expert acted
        self.log: list[np.ndarray] = []

    def reset(self, seeds: np.ndarray) -> None:
        if self.log:
            self.waves.append(np.stack(self.log))
        self.log = []
        self.policy_actor.reset(seeds)
        self.expert.reset(seeds)
        self.streak = np.zeros(len(seeds), dtype=np.int64)
        self.left = np.zeros(len(seeds), dtype=np.int64)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        own = self.policy_actor.act(obs)
        expert = np.asarray(self.expert.act(obs), dtype=np.float32)
        strays = np.sqrt((((own - expert) / self.half_range) ** 2).mean(axis=1)) > self.threshold
        self.streak = np.where(strays, self.streak + 1, 0)
        # the streak goes on counting during a takeover: control returns once the policy's own action agrees
        self.left = np.where((self.left == 0) & (self.streak >= self.patience), self.takeover, self.left)
        intervening = self.left > 0
        self.left = np.maximum(self.left - 1, 0)
        self.log.append(intervening)
        return np.where(intervening[:, None], expert, own)

    def take_flags(self, lengths: np.ndarray) -> np.ndarray:
        """(N,) per recorded step, in the runner's episode-major order: the expert acted."""
        if self.log:
            self.waves.append(np.stack(self.log))
        self.log, flags, i = [], [], 0
        for wave in self.waves:
            for b in range(min(wave.shape[1], len(lengths) - i)):
                flags.append(wave[: lengths[i], b])
                i += 1
        self.waves = []
        return np.concatenate(flags)


def segments(store: EpisodeStore, expert_acted: np.ndarray, weight: int) -> EpisodeStore | None:
    """The round's training episodes: each run of expert steps ``weight`` times (source
    ``intervention``), each run of policy steps of a successful episode once (source ``policy``)."""
    rows, ends, success, sources, seeds = [], [], [], [], []
    for e, (start, end) in enumerate(zip(store.episode_starts, store.episode_ends)):
        flags = expert_acted[start:end]
        cuts = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(flags)]])):
            repeat = weight if flags[lo] else int(store.episodes["success"][e])
            for _ in range(repeat):
                rows.append(np.arange(start + lo, start + hi))
                ends.append(sum(len(r) for r in rows))
                success.append(bool(store.episodes["success"][e]))
                sources.append("intervention" if flags[lo] else "policy")
                seeds.append(int(store.episodes["seed"][e]))
    if not rows:
        return None
    index = np.concatenate(rows)
    return EpisodeStore(
        obs={k: v[index] for k, v in store.obs.items()},
        action=store.action[index],
        episode_ends=np.asarray(ends),
        episodes={
            "success": np.asarray(success),
            "source": np.asarray(sources, dtype=object),
            "seed": np.asarray(seeds),
        },
        reward=None if store.reward is None else store.reward[index],
        fps=store.fps,
        task=store.task,
    )


def improve(run: ImproveRun) -> Policy:
    low, high = action_box(run.task)
    half_range = (high - low) / 2

    def collect(policy: Policy, seeds: np.ndarray, k: int) -> Collected:
        supervisor = Supervisor(PolicyActor(policy, seed=run.cfg.seed), run.task.make_expert(), half_range, run.cfg)
        out = record_round(run, supervisor, seeds, "policy", k)
        flags = supervisor.take_flags(out.lengths)
        store = segments(out.store, flags, run.cfg.intervention_weight)
        return Collected(store, int(flags.sum()), int(out.lengths.sum()))

    return improve_by_rounds(run, collect)
