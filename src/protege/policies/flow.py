"""``flow``: rectified flow (conditional flow matching) over action chunks, with optional
variance-adaptive sampling in the spirit of AdaFlow (Hu et al., 2024).

Training: x_t = (1 - t) x0 + t x1 with x0 ~ N(0, I), x1 the normalized chunk and t ~ U(0, 1); the
denoiser regresses the velocity x1 - x0. Sampling integrates dx/dt = v(x, t) from the given noise
(t = 0) to the chunk (t = 1) with Euler steps.

A small second head predicts the conditional variance of that velocity given (x_t, t, obs): where
the expert is unimodal the velocity is nearly determined and one Euler step lands on the chunk;
where it is multimodal (a fork) the velocity varies and straight steps would average the modes.
The head is trained on the detached squared velocity error with the Itakura-Saito divergence
r - 1 - log r, r = error / variance: its minimizer is the conditional mean of the error (the
variance), it is >= 0, and it is scale-free, so it cannot dominate the clipped gradient of the flow.
It is always trained, so one checkpoint samples either way (``adaptive`` is a sampling switch).

Adaptive sampling gives each sample its own step ``clamp(threshold / std, 1 / max_steps,
1 / min_steps)`` (cut at t = 1), with std the predicted velocity std; samples that reached t = 1
leave the batch. ``last_steps`` holds the mean number of network calls per sample of the last call.

Measured: docs/results.md#family-flow
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from protege.policies.base import FeatureSpec, Policy
from protege.policies.nets.common import SinusoidalEmbedding, mlp
from protege.policies.nets.denoisers import TIME_SCALE, DenoiserConfig, make_denoiser

#: Keeps the variance head's divergence finite where the velocity error is exactly zero.
_EPS = 1e-6


@dataclass
class FlowConfig(DenoiserConfig):
    """Flow matching over (horizon, action_dim) chunks conditioned on the obs history."""

    n_obs: int = 2
    horizon: int = 16
    n_action_steps: int = 4
    """Steps of each chunk executed before predicting again: 4 of 16 gives +20 points of success on
    PushT, paired, and no loss on toy/fork or Meta-World push (as for diffusion)."""
    num_inference_steps: int = 10
    """Euler steps of the fixed schedule (used when adaptive is False)."""
    adaptive: bool = False
    """Variance-adaptive steps per sample: one big step where the predicted velocity variance is low, small ones
    where it is high."""
    min_steps: int = 1
    """Adaptive: fewest steps a sample takes (its largest step is 1 / min_steps)."""
    max_steps: int = 10
    """Adaptive: most steps a sample takes (its smallest step is 1 / max_steps)."""
    threshold: float = 0.2
    """Adaptive: predicted velocity std (normalized units) up to which the largest step is taken; above it the step is
    threshold / std."""
    variance_hidden_dim: int = 128
    """Width of the two-layer velocity-variance head."""

    name: ClassVar[str] = "flow"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_inference_steps < 1 or not 1 <= self.min_steps <= self.max_steps or self.threshold <= 0:
            raise ValueError(
                f"need num_inference_steps >= 1, 1 <= min_steps <= max_steps and threshold > 0, got "
                f"{self.num_inference_steps}, {self.min_steps}, {self.max_steps}, {self.threshold}"
            )


class VarianceHead(nn.Module):
    """Predicted variance (B,) of the velocity at (x_t (B, H, A), t (B,) in [0, 1], cond (B, C))."""

    def __init__(self, chunk_dim: int, cond_dim: int, hidden_dim: int, time_dim: int = 32):
        super().__init__()
        self.time_embed = SinusoidalEmbedding(time_dim)
        self.net = mlp(chunk_dim + cond_dim + time_dim, hidden_dim, 2, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x.flatten(1), cond, self.time_embed(t * TIME_SCALE)], dim=-1)
        return F.softplus(self.net(h)).squeeze(-1) + _EPS


class FlowPolicy(Policy):
    config_class = FlowConfig

    def __init__(self, config: FlowConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        cond_dim = config.n_obs * self.obs_dim
        self.denoiser = make_denoiser(config, spec.action_dim, cond_dim)
        self.variance = VarianceHead(config.horizon * spec.action_dim, cond_dim, config.variance_hidden_dim)
        self.last_steps = float(config.num_inference_steps)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, t * TIME_SCALE, cond)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x1 = self.normalized_action(batch)  # (B, H, A)
        cond = self.encode_obs(batch)
        x0 = torch.randn_like(x1)
        t = torch.rand(len(x1), device=x1.device)
        xt = torch.lerp(x0, x1, t.view(-1, 1, 1))
        error = self.chunk_mse(self.velocity(xt, t, cond), x1 - x0, batch["action_is_pad"])
        ratio = (error.detach() + _EPS) / self.variance(xt, t, cond)
        return error + ratio - 1 - ratio.log()

    def noise_shape(self) -> tuple[int, ...]:
        return (self.config.horizon, self.spec.action_dim)

    def step_sizes(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Euler step (B,) for each sample: fixed, or from the predicted velocity std when adaptive."""
        cfg = self.config
        if not cfg.adaptive:
            return torch.full_like(t, 1 / cfg.num_inference_steps)
        std = self.variance(x, t, cond).sqrt()
        return (cfg.threshold / std).clamp(1 / cfg.max_steps, 1 / cfg.min_steps)

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        x = noise.clone()  # integrated in place
        t = torch.zeros(len(x), device=x.device)
        steps = torch.zeros(len(x), device=x.device)
        live = torch.arange(len(x), device=x.device)
        while len(live):
            xs, ts, cond = x[live], t[live], obs_features[live]
            dt = self.step_sizes(xs, ts, cond)
            last = ts + dt > 1 - 1e-4  # within rounding of t = 1: land on it exactly
            dt = torch.where(last, 1 - ts, dt)
            x[live] = xs + dt.view(-1, 1, 1) * self.velocity(xs, ts, cond)
            t[live] = torch.where(last, 1.0, ts + dt)
            steps[live] += 1
            live = live[~last]
        self.last_steps = float(steps.mean())
        return x
