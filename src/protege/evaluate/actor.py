"""PolicyActor: turns a chunk-predicting policy into a per-step actor. The runner owns chunking.

Receding-horizon execution with ``n_obs=2, horizon=8, n_action_steps=4``::

    step:        0   1   2   3   4   5   6   7   8
    observe:    [o0] o1  o2  o3 [o4] o5 ...            history (o_{t-1}, o_t) at each replan
    predict:     a0  a1  a2  a3  a4  a5  a6  a7        chunk from o_{-1}=o0, o0 (edge-padded)
    execute:     a0  a1  a2  a3                        then replan at step 4 from (o3, o4)

All environments of a wave step in lockstep, so one queue position serves the whole batch and
every replan is a single batched policy call.
"""

from __future__ import annotations

import numpy as np
import torch

from protege.policies.base import Policy


class PolicyActor:
    """Keeps the observation history and the queue of planned actions for a batch of envs.

    ``n_action_steps`` of each predicted chunk are executed before the next prediction (default:
    the policy's own setting). Sampling noise comes from a generator seeded with ``seed`` at
    every reset, so an evaluation is reproducible.
    """

    def __init__(self, policy: Policy, n_action_steps: int | None = None, seed: int = 0):
        self.policy = policy
        self.n_action_steps = n_action_steps or policy.config.n_action_steps
        if not 1 <= self.n_action_steps <= policy.config.horizon:
            raise ValueError(f"n_action_steps must be in [1, horizon={policy.config.horizon}], got {self.n_action_steps}")
        self.seed = seed
        self.history: dict[str, torch.Tensor] = {}
        self.queue: torch.Tensor | None = None
        self.generator = torch.Generator(device="cpu")

    def reset(self, seeds: np.ndarray) -> None:
        self.history, self.queue = {}, None
        self.generator.manual_seed(int(self.seed) * 1_000_003 + int(seeds[0]))

    def _push(self, obs: dict[str, np.ndarray]) -> None:
        device = self.policy.device
        for key, value in obs.items():
            if key not in self.policy.spec.obs_shapes:
                continue
            frame = torch.as_tensor(value, dtype=torch.float32, device=device).unsqueeze(1)  # (B, 1, *shape)
            if key not in self.history:  # first step: the history repeats the first frame
                self.history[key] = frame.expand(-1, self.policy.config.n_obs, *frame.shape[2:]).clone()
            else:
                self.history[key] = torch.cat([self.history[key][:, 1:], frame], dim=1)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self._push(obs)
        if self.queue is None or len(self.queue) == 0:
            batch = next(iter(self.history.values())).shape[0]
            noise = self.policy.sample_noise(batch, self.generator)
            chunk = self.policy.predict(self.history, noise=noise)  # (B, H, A)
            self.queue = chunk[:, : self.n_action_steps].transpose(0, 1)  # (k, B, A)
        action, self.queue = self.queue[0], self.queue[1:]
        return action.float().cpu().numpy()
