"""DAgger (Ross et al. 2011) with the task's scripted expert as the labeller.

Each round the current policy drives (with probability beta^k per step the expert does, in round
k), the expert labels every visited state with the action it would take there, the labelled
states join the aggregate, and the policy is fine-tuned on it (protege.improve.rounds). So the
policy learns to recover from the states its own mistakes lead to, which demonstrations never
visit. Every visited step costs one expert label.
"""

from __future__ import annotations

import numpy as np

from protege.evaluate.actor import PolicyActor
from protege.improve.rounds import Collected, improve_by_rounds, record_round
from protege.improve.run import ImproveRun
from protege.policies import Policy
from protege.tasks.base import Actor


class Relabel:
    """Acts as the recorded actor (the expert's labels) and as the perturbation that replaces them by
    what is executed: the policy's action, or with probability ``beta`` the expert's."""

    def __init__(self, policy_actor: PolicyActor, expert: Actor, beta: float):
        self.policy_actor, self.expert, self.beta = policy_actor, expert, beta
        self.executed = np.zeros(0)
        self.rng = np.random.default_rng()

    def reset(self, seeds: np.ndarray) -> None:
        """Called by the runner for the actor and for the perturbation: both resets start the same wave."""
        self.policy_actor.reset(seeds)
        self.expert.reset(seeds)
        self.rng = np.random.default_rng([int(s) for s in seeds[:1]] + [len(seeds)])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        label = np.asarray(self.expert.act(obs), dtype=np.float32)
        self.executed = self.policy_actor.act(obs)
        if self.beta > 0:
            take = self.rng.random(len(label)) < self.beta
            self.executed = np.where(take[:, None], label, self.executed)
        return label

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        return self.executed


def improve(run: ImproveRun) -> Policy:
    def collect(policy: Policy, seeds: np.ndarray, k: int) -> Collected:
        relabel = Relabel(PolicyActor(policy, seed=run.cfg.seed), run.task.make_expert(), run.cfg.beta**k)
        out = record_round(run, relabel, seeds, "dagger", k, perturb=relabel)
        return Collected(out.store, out.store.num_frames, int(out.lengths.sum()))

    return improve_by_rounds(run, collect)
