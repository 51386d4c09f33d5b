"""``mcnn``: Memory-Consistent Neural Networks (Sridhar et al. 2023), an MLP whose output is
confined to a region around the action chunk of the nearest memorized demonstration frame.

Memories are ``num_memories`` training frames: k-means centers of the frame embeddings (the
normalized, flattened obs history), each snapped to its nearest real frame so it carries a real
action chunk. For a query embedding ``s`` with nearest memory ``m`` at distance ``d``::

    a(s) = a_m + bound * tanh(g(s, a_m)) * (1 - exp(-d / lambda))

in normalized action units, ``g`` an MLP on the embedding and the memory's chunk. At a memory
(d = 0) the policy returns the memory's chunk exactly; anywhere, every action coordinate stays
within ``bound`` of it, and the network's freedom grows with the distance at scale ``lambda``.
So the learner cannot drift far from demonstrated behaviour where it has no data, and it cannot
average two modes further apart than ``2 * bound``. Training minimizes the MSE of ``a(s)``.

Measured: docs/results.md#family-mcnn
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from protege.data.store import EpisodeStore
from protege.policies.base import FeatureSpec, Policy, PolicyConfig, require_fixed_encoding
from protege.policies.nets.common import mlp
from protege.policies.nets.memory import frame_windows, kmeans, nearest


@dataclass
class MCNNConfig(PolicyConfig):
    """An MLP residual bounded around the nearest memory's action chunk, vanishing at the memory."""

    horizon: int = 8
    n_action_steps: int = 4
    num_memories: int = 512
    """Memorized training frames (k-means centers of the frame embeddings, snapped to frames)."""
    kmeans_seed: int = 0
    """Seed of the k-means++ initialization choosing the memories."""
    bound: float = 0.1
    """Largest deviation of any action coordinate from the memory's, in normalized units ([-1, 1] range)."""
    length_scale: float | None = None
    """lambda, the embedding distance over which the allowed deviation grows; None fits it as the
    median distance from a memory to its nearest other memory (the memories' spacing)."""
    hidden_dim: int = 256
    """Width of every hidden layer of g."""
    depth: int = 3
    """Hidden layers of g."""

    vision: str = "pixels"
    """Camera features are the normalized frame on an 8x8 grid: the memories are embedded once, at
    ``fit``, so a learned encoder would drift away from them."""

    name: ClassVar[str] = "mcnn"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_fixed_encoding(self)
        if self.num_memories < 1 or self.bound < 0 or (self.length_scale is not None and self.length_scale <= 0):
            raise ValueError(
                f"need num_memories >= 1, bound >= 0 and length_scale > 0 or None, got num_memories="
                f"{self.num_memories}, bound={self.bound}, length_scale={self.length_scale}"
            )


class MCNNPolicy(Policy):
    config_class = MCNNConfig

    def __init__(self, config: MCNNConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        feature_dim, chunk_dim = config.n_obs * self.obs_dim, config.horizon * spec.action_dim
        self.net = mlp(feature_dim + chunk_dim, config.hidden_dim, config.depth, chunk_dim)
        self.register_buffer("memory_keys", torch.zeros(config.num_memories, feature_dim))
        self.register_buffer("memory_chunks", torch.zeros(config.num_memories, config.horizon, spec.action_dim))
        self.register_buffer("length_scale", torch.tensor(config.length_scale or 1.0))

    def fit(self, store: EpisodeStore) -> None:
        """Normalizer stats, then the memories and (unless configured) lambda."""
        super().fit(store)
        features, chunks = frame_windows(self, store)
        centers = kmeans(features, self.config.num_memories, self.config.kmeans_seed)
        rows = nearest(centers, features)[1][:, 0]
        self.memory_keys.copy_(features[rows])
        self.memory_chunks.copy_(chunks[rows])
        if self.config.length_scale is None:
            spacing = nearest(self.memory_keys, self.memory_keys, min(2, len(self.memory_keys)))[0][:, -1]
            spacing = spacing[spacing > 0]
            self.length_scale.fill_(float(spacing.median()) if len(spacing) else 1.0)

    def _forward(self, features: torch.Tensor) -> torch.Tensor:
        dist, idx = nearest(features, self.memory_keys)
        anchor = self.memory_chunks[idx[:, 0]]  # (B, H, A)
        residual = torch.tanh(self.net(torch.cat([features, anchor.flatten(1)], dim=1))).view_as(anchor)
        reach = 1 - torch.exp(-dist / self.length_scale)  # (B, 1): 0 at the memory, -> 1 far away
        return anchor + self.config.bound * residual * reach[:, :, None]

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.chunk_mse(
            self._forward(self.encode_obs(batch)), self.normalized_action(batch), batch["action_is_pad"]
        )

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self._forward(obs_features)
