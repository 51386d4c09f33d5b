"""``mlp``: plain behavior cloning, an MLP regressing the (chunk of) actions with MSE.

The baseline every other family must beat; on multimodal data it averages the modes.

Measured: docs/results.md#family-mlp
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from protege.policies.base import FeatureSpec, Policy, PolicyConfig
from protege.policies.nets.common import mlp


@dataclass
class MLPConfig(PolicyConfig):
    """MSE regression of an action chunk from the flattened observation history."""

    hidden_dim: int = 256
    """Width of every hidden layer."""
    depth: int = 3
    """Number of hidden layers."""

    name: ClassVar[str] = "mlp"


class MLPPolicy(Policy):
    config_class = MLPConfig

    def __init__(self, config: MLPConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.net = mlp(config.n_obs * self.obs_dim, config.hidden_dim, config.depth, config.horizon * spec.action_dim)

    def _forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).view(-1, self.config.horizon, self.spec.action_dim)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = self.normalized_action(batch)  # (B, H, A)
        return self.chunk_mse(self._forward(self.encode_obs(batch)), target, batch["action_is_pad"])

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self._forward(obs_features)
