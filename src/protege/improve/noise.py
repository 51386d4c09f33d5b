"""Noise-space RL (DSRL, Wagenmaker et al. 2025): steer a frozen diffusion / flow / mip / distilled
policy by choosing the initial noise its sampler turns into an action chunk.

One RL step is one executed chunk: the actor sees the normalized observation history and picks
the noise in [-1, 1]^(horizon x A) (scaled by ``--noise-bound``), the frozen base samples its
chunk from that noise (``predict(obs, noise=...)``), the environment executes the base's
``n_action_steps`` of it, and the reward is the chunk's summed (sparse or dense) reward. SAC
learns the actor; the base is never updated, and every executed chunk is one the base could
have produced, which is why DSRL stays close to the demonstrations while it improves.

The noise-aliased variant (DSRL-NA) learns an action-space critic and distils it into the noise
space, so it can also learn from transitions it did not choose the noise of; it needs a second
critic outside SB3's SAC and is not implemented here (docs/improve.md).
"""

from __future__ import annotations

import numpy as np
import torch

from protege.evaluate.actor import PolicyActor
from protege.improve.run import ImproveRun
from protege.improve.sac import Step, reward_of, train_sac
from protege.policies import Policy
from protege.policies.dsrl import NoiseSpaceConfig, NoiseSpacePolicy
from protege.policies.storage import policy_json


class NoiseProblem:
    """Observation: the normalized history; action: the base's initial noise; a step: one chunk."""

    def __init__(self, run: ImproveRun, policy: NoiseSpacePolicy):
        self.run, self.policy = run, policy
        self.obs_dim, self.action_dim = policy.config.n_obs * policy.obs_dim, policy.noise_dim
        self.env = run.task.make_env(run.cfg.num_envs)
        self.history = PolicyActor(policy)  # keeps the observation history exactly as evaluation does

    def explore(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """The base's own noise (standard normal, clipped to the bound): warm-up transitions show
        what the base does unsteered."""
        bound = self.policy.config.noise_bound
        return np.clip(rng.normal(0, 1, (batch, self.action_dim)), -bound, bound) / bound

    def close(self) -> None:
        self.env.close()

    @torch.inference_mode()
    def reset(self, seeds: np.ndarray) -> np.ndarray:
        obs, _ = self.env.reset(seed=seeds.tolist())
        self.history.reset(seeds)
        self.history.observe(obs)
        self.done = np.zeros(len(seeds), dtype=bool)
        return self.policy.features(self.history.history).cpu().numpy()

    @torch.inference_mode()
    def step(self, action: np.ndarray) -> Step:
        squashed = torch.as_tensor(action, dtype=torch.float32, device=self.policy.device)
        chunk = self.policy.predict(self.history.history, noise=squashed).cpu().numpy()  # (B, H, A)
        batch = len(action)
        total, taken = np.zeros(batch, dtype=np.float32), np.zeros(batch, dtype=np.int64)
        terminated, truncated = np.zeros(batch, dtype=bool), np.zeros(batch, dtype=bool)
        live_at_start = ~self.done
        for j in range(self.policy.config.n_action_steps):
            obs, reward, term, trunc, info = self.env.step(chunk[:, j])
            live = ~self.done
            success = np.asarray(info["success"], dtype=bool) & live
            total += np.where(live, reward_of(self.run.cfg.reward, reward, success), 0.0)
            taken += live
            terminated |= np.asarray(term) & live
            truncated |= np.asarray(trunc) & live
            self.done |= terminated | truncated
            self.history.observe(obs)  # evaluation adds every step's frame to the history
            if self.done.all():
                break
        return Step(
            self.policy.features(self.history.history).cpu().numpy(),
            total,
            terminated & live_at_start,
            truncated & live_at_start & ~terminated,
            taken,
        )


def improve(run: ImproveRun) -> Policy:
    base = run.base
    config = NoiseSpaceConfig(
        n_obs=base.config.n_obs,
        horizon=base.config.horizon,
        n_action_steps=base.config.n_action_steps,
        obs_keys=base.config.obs_keys,
        **base.vision_settings(),
        base=policy_json(base),
        hidden=run.cfg.hidden,
        noise_bound=run.cfg.noise_bound,
    )
    policy = NoiseSpacePolicy(config, base.spec).to(run.device)
    policy.base.load_state_dict(base.state_dict())
    policy.adopt_encoding(base)
    return train_sac(run, NoiseProblem(run, policy.eval()))
