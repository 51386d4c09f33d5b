"""``gmm`` and ``gaussian``: an MLP that outputs a mixture of diagonal Gaussians over the whole action
chunk, trained by negative log-likelihood (robomimic's BC-GMM, applied to chunks).

The cheapest multimodal family: one forward pass, an explicit likelihood, and each mode is a whole
chunk, so a sample commits to one way around an obstacle for all its steps. ``gaussian`` is the
one-mode case: it learns the spread of the actions but not their modes (its mean is MSE's mean).

The loss is the NLL per chunk dimension minus the smallest value it can take (every std is at least
``min_std``), so it is >= 0 like every family's loss; the offset is a constant and changes no gradient.

Measured: docs/results.md#family-gaussian-and-gmm
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from protege.policies.base import FeatureSpec, Policy, PolicyConfig
from protege.policies.nets.common import mlp


@dataclass
class GMMConfig(PolicyConfig):
    """Mixture-of-Gaussians head over (horizon, action_dim) chunks, conditioned on the obs history."""

    n_obs: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    num_modes: int = 5
    """Mixture components (robomimic's default)."""
    hidden_dim: int = 256
    """Width of every hidden layer of the MLP trunk."""
    depth: int = 3
    """Hidden layers of the MLP trunk."""
    min_std: float = 0.1
    """Floor of every component's std (normalized action units), which keeps the likelihood bounded."""
    sample: bool = True
    """Sample a component by its weight, then its Gaussian; False: the mean of the most likely component
    (deterministic)."""

    name: ClassVar[str] = "gmm"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_modes < 1 or self.min_std <= 0:
            raise ValueError(
                f"need num_modes >= 1 and min_std > 0, got num_modes={self.num_modes}, min_std={self.min_std}"
            )


@dataclass
class GaussianConfig(GMMConfig):
    """One diagonal Gaussian over the chunk: the unimodal likelihood baseline."""

    num_modes: int = 1

    name: ClassVar[str] = "gaussian"


class GMMPolicy(Policy):
    config_class = GMMConfig

    def __init__(self, config: GMMConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.chunk_dim = config.horizon * spec.action_dim
        self.net = mlp(
            config.n_obs * self.obs_dim, config.hidden_dim, config.depth, config.num_modes * (2 * self.chunk_dim + 1)
        )

    def _mixture(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Component means and stds (B, K, D) and log-weights (B, K) for flattened chunks of size D."""
        k, d = self.config.num_modes, self.chunk_dim
        out = self.net(features)
        means, raw_std = out[:, : 2 * k * d].view(-1, k, 2, d).unbind(2)
        return means, F.softplus(raw_std) + self.config.min_std, out[:, 2 * k * d :].log_softmax(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = self.normalized_action(batch).flatten(1).unsqueeze(1)  # (B, 1, D)
        means, std, log_weights = self._mixture(self.encode_obs(batch))
        log_gauss = -0.5 * ((target - means) / std).pow(2) - std.log()  # (B, K, D), without the 2π term
        steps = self.loss_steps(batch["action_is_pad"])
        if steps is None:
            nll_per_dim = -torch.logsumexp(log_weights + log_gauss.sum(-1), dim=-1) / self.chunk_dim
        else:  # the marginal likelihood of the kept steps: a diagonal Gaussian drops the others' dims
            kept = steps.repeat_interleave(self.spec.action_dim, dim=1).unsqueeze(1)  # (B, 1, D)
            nll_per_dim = -torch.logsumexp(log_weights + (log_gauss * kept).sum(-1), dim=-1) / kept.sum((1, 2)).clamp(
                min=1
            )
        return nll_per_dim - math.log(self.config.min_std)

    def noise_shape(self) -> tuple[int, ...] | None:
        """D + 1 standard normals when sampling: D for the Gaussian, the last picks the component (via its CDF)."""
        return (self.chunk_dim + 1,) if self.config.sample else None

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        means, std, log_weights = self._mixture(obs_features)
        if not self.config.sample:
            pick = log_weights.argmax(-1)
            chunk = means[torch.arange(len(means), device=means.device), pick]
        else:
            uniform = 0.5 * (1 + torch.erf(noise[:, -1:] / math.sqrt(2)))  # (B, 1), Φ(z) ~ U(0, 1)
            pick = (log_weights.exp().cumsum(-1) < uniform).sum(-1).clamp(max=self.config.num_modes - 1)
            rows = torch.arange(len(means), device=means.device)
            chunk = means[rows, pick] + std[rows, pick] * noise[:, :-1]
        return chunk.view(-1, self.config.horizon, self.spec.action_dim)


class GaussianPolicy(GMMPolicy):
    config_class = GaussianConfig
