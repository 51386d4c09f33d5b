"""``mip``: the minimal iterative policy of Pan et al., "Much Ado About Noising: Dispelling the Myths
of Generative Robotic Control" (2025): two supervised regression steps of one network.

The paper finds that what generative policies gain over regression comes from iterating with
supervised intermediate steps plus noise injected in training, not from fitting a distribution;
MIP keeps only that. With f(x, t, obs) any chunk denoiser, a the normalized chunk, t* = ``t_star``
and z ~ N(0, I), as in the authors' code (``mip_loss`` / ``mip_sampler``, t* = 0.9):

    step 1   a0 = f(0, 0, obs)                              regress a      (MSE behavior cloning)
    step 2   a1 = f(a + (1 - t*) z, t*, obs)                regress a      (denoise a slightly noised chunk)
    loss     (|a0 - a|^2 / t*^2 + |a1 - a|^2 / (1 - t*)^2) / (1 / t*^2 + 1 / (1 - t*)^2)

(squared errors averaged over the chunk; the paper's weights, divided by their sum so the loss has
MSE's scale under the trainer's gradient clipping). Inference is a1 = f(a0 + s z', t*, obs) with
s = ``inference_noise``: the authors' sampler feeds a0 unchanged (s = 0: deterministic, no noise
argument; their "original" variant feeds t* a0); s > 0 draws z' from ``sample_noise`` so
``predict(obs, noise)`` stays reproducible.

Measured: docs/results.md#family-mip
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from protege.policies.base import FeatureSpec, Policy
from protege.policies.nets.denoisers import TIME_SCALE, DenoiserConfig, make_denoiser


@dataclass
class MIPConfig(DenoiserConfig):
    """Two-step iterative regression of (horizon, action_dim) chunks from the obs history."""

    n_obs: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    t_star: float = 0.9
    """Time of the refinement step; its training input is the chunk plus (1 - t_star) x standard noise."""
    inference_noise: float = 0.0
    """Std of the noise added to the first step's chunk before refining it (0: deterministic, as in the paper)."""

    name: ClassVar[str] = "mip"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.t_star < 1 or self.inference_noise < 0:
            raise ValueError(
                f"need 0 < t_star < 1 and inference_noise >= 0, "
                f"got t_star={self.t_star}, inference_noise={self.inference_noise}"
            )


class MIPPolicy(Policy):
    config_class = MIPConfig

    def __init__(self, config: MIPConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.denoiser = make_denoiser(config, spec.action_dim, config.n_obs * self.obs_dim)

    def _step(self, x: torch.Tensor, t: float, cond: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, torch.full((len(x),), t * TIME_SCALE, device=x.device), cond)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        a = self.normalized_action(batch)  # (B, H, A)
        cond = self.encode_obs(batch)
        t_star = self.config.t_star
        noised = a + (1 - t_star) * torch.randn_like(a)
        # both steps in one network call over the doubled batch
        x = torch.cat([torch.zeros_like(a), noised])
        t = torch.cat(
            [torch.zeros(len(a), device=a.device), torch.full((len(a),), t_star * TIME_SCALE, device=a.device)]
        )
        errors = self.chunk_mse(
            self.denoiser(x, t, cond.repeat(2, 1)), a.repeat(2, 1, 1), batch["action_is_pad"].repeat(2, 1)
        )
        first, second = errors.chunk(2)
        w1, w2 = 1 / t_star**2, 1 / (1 - t_star) ** 2
        return (w1 * first + w2 * second) / (w1 + w2)

    def noise_shape(self) -> tuple[int, ...] | None:
        return (self.config.horizon, self.spec.action_dim) if self.config.inference_noise > 0 else None

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        shape = (len(obs_features), self.config.horizon, self.spec.action_dim)
        first = self._step(torch.zeros(shape, device=obs_features.device), 0.0, obs_features)
        if noise is not None:
            first = first + self.config.inference_noise * noise
        return self._step(first, self.config.t_star, obs_features)
