"""Residual RL on a frozen base (ResiP, Ankile et al. 2024; residual off-policy RL, Ankile et al. 2025).

The base policy runs as it always does, chunks and all, through its own ``PolicyActor``; at every
env step the RL actor sees the observation history and the base action the actor picked for this
step, and outputs a correction in [-1, 1] that ``ResidualPolicy.apply`` bounds to ``--scale`` of
the action box. SAC learns it off-policy from the sparse success reward (or the task's dense one,
``--reward dense``). The improved policy is a ``residual`` policy folder holding the base's weights
untouched beside the correcting actor, so ``protege eval`` runs base and correction together.
"""

from __future__ import annotations

import numpy as np
import torch

from protege.evaluate.actor import PolicyActor
from protege.improve.run import ImproveRun, action_box
from protege.improve.sac import Step, reward_of, train_sac
from protege.policies import Policy
from protege.policies.residual import ResidualConfig, ResidualPolicy
from protege.policies.storage import policy_json

#: Spread of the warm-up corrections, in units of the correction bound (``--scale``).
EXPLORE_STD = 0.3


class ResidualProblem:
    """Observation: normalized history + this step's base action; action: the bounded correction."""

    def __init__(self, run: ImproveRun, policy: ResidualPolicy):
        self.run, self.policy = run, policy
        self.obs_dim, self.action_dim = policy.feature_dim, policy.spec.action_dim
        self.env = run.task.make_env(run.cfg.num_envs)
        self.actor = PolicyActor(policy, seed=run.cfg.seed)  # plans the base's steps; the correction is ours
        self.base_action = torch.zeros(0)

    def _observe(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.base_action = self.actor.planned(obs)
        return self.policy.features(self.actor.history, self.base_action).cpu().numpy()

    def explore(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """With a base: small corrections around none (the base's own behaviour, slightly perturbed);
        without one (SAC from scratch): uniform over the action box."""
        if self.policy.base is None:
            return rng.uniform(-1, 1, (batch, self.action_dim))
        return np.clip(rng.normal(0, EXPLORE_STD, (batch, self.action_dim)), -1, 1)

    def close(self) -> None:
        self.env.close()

    @torch.inference_mode()
    def reset(self, seeds: np.ndarray) -> np.ndarray:
        obs, _ = self.env.reset(seed=seeds.tolist())
        self.actor.reset(seeds)
        self.done = np.zeros(len(seeds), dtype=bool)
        return self._observe(obs)

    @torch.inference_mode()
    def step(self, action: np.ndarray) -> Step:
        squashed = torch.as_tensor(action, dtype=torch.float32, device=self.policy.device)
        executed = self.policy.apply(self.base_action, squashed).cpu().numpy()
        obs, reward, terminated, truncated, info = self.env.step(executed)
        live = ~self.done
        terminated, truncated = np.asarray(terminated) & live, np.asarray(truncated) & live
        self.done |= terminated | truncated
        success = np.asarray(info["success"], dtype=bool) & live
        return Step(
            self._observe(obs),
            reward_of(self.run.cfg.reward, reward, success),
            terminated,
            truncated,
            live.astype(np.int64),
        )


def residual_policy(run: ImproveRun, base: Policy | None, scale: float) -> ResidualPolicy:
    """A residual policy around ``base`` (None: a plain actor) with the base run's observation normalizer."""
    low, high = action_box(run.task)
    source = base or run.base
    config = ResidualConfig(
        n_obs=source.config.n_obs,
        horizon=base.config.horizon if base else 1,
        n_action_steps=base.config.n_action_steps if base else 1,
        obs_keys=source.config.obs_keys,
        **source.vision_settings(),
        base=policy_json(base) if base else {},
        hidden=run.cfg.hidden,
        scale=scale,
        action_low=tuple(low.tolist()),
        action_high=tuple(high.tolist()),
    )
    policy = ResidualPolicy(config, source.spec).to(run.device)
    if base is not None:
        policy.base.load_state_dict(base.state_dict())
    policy.adopt_encoding(source)
    return policy.eval()


def improve(run: ImproveRun) -> Policy:
    return train_sac(run, ResidualProblem(run, residual_policy(run, run.base, run.cfg.scale)))
