"""``bet``: Behavior Transformer (Shafiullah et al. 2022), a categorical over k-means action bins
plus a per-bin continuous offset, predicted by a small causal transformer over the obs history.

Bins are k-means centers of whole normalized action chunks (horizon x A), not of single steps:
one categorical draw then commits a chunk to one mode, where per-step bins drawn independently
could mix modes within a chunk (left at step 1, right at step 2). The classifier picks the mode,
the offset refines it within its bin, so multimodal demonstrations are not averaged.

Loss per sample: focal loss on the bin nearest the target chunk + ``offset_weight`` x the MSE of
that bin's center + predicted offset against the target.

Measured: docs/results.md#family-bet
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from protege.data.store import EpisodeStore
from protege.policies.base import FeatureSpec, Generators, Policy, PolicyConfig, per_row
from protege.policies.nets.gpt import GPT
from protege.policies.nets.memory import frame_windows, kmeans, nearest


@dataclass
class BETConfig(PolicyConfig):
    """Behavior Transformer: k-means bins over action chunks, bin classifier + per-bin offsets."""

    n_obs: int = 2
    horizon: int = 8
    n_action_steps: int = 4
    num_bins: int = 32
    """k-means clusters of the normalized training action chunks."""
    kmeans_seed: int = 0
    """Seed of the k-means++ initialization (same data and seed, same bins)."""
    n_layers: int = 2
    """Transformer blocks."""
    n_heads: int = 4
    """Attention heads per block; must divide embed_dim."""
    embed_dim: int = 128
    """Token width of the transformer."""
    dropout: float = 0.0
    """Dropout in the transformer during training."""
    focal_gamma: float = 2.0
    """Focal-loss focusing exponent on the bin classification; 0 is plain cross-entropy."""
    offset_weight: float = 1.0
    """Weight of the offset MSE (normalized action units) against the bin classification loss."""
    temperature: float = 1.0
    """Softmax temperature of the bin draw at prediction; lower is greedier (must be > 0)."""

    name: ClassVar[str] = "bet"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_bins < 1 or self.temperature <= 0:
            raise ValueError(
                f"need num_bins >= 1 and temperature > 0, got num_bins={self.num_bins}, temperature={self.temperature}"
            )


class BETPolicy(Policy):
    config_class = BETConfig

    def __init__(self, config: BETConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.chunk_dim = config.horizon * spec.action_dim
        self.gpt = GPT(self.obs_dim, config.n_obs, config.embed_dim, config.n_layers, config.n_heads, config.dropout)
        self.head = nn.Linear(config.embed_dim, config.num_bins * (1 + self.chunk_dim))
        self.register_buffer("bins", torch.zeros(config.num_bins, self.chunk_dim))

    def fit(self, store: EpisodeStore) -> None:
        """Normalizer stats, then the bins: k-means centers of every training frame's chunk."""
        super().fit(store)
        _, chunks = frame_windows(self, store, encode=False)
        self.bins.copy_(kmeans(chunks.flatten(1), self.config.num_bins, self.config.kmeans_seed))

    def bin_targets(self, chunks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest bin (B,) of each normalized chunk (B, H, A) and its offset from that bin's center."""
        flat = chunks.flatten(1)
        bin_index = nearest(flat, self.bins)[1][:, 0]
        return bin_index, (flat - self.bins[bin_index]).view_as(chunks)

    def _forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bin logits (B, K) and per-bin offsets (B, K, H, A) from the last history token."""
        tokens = features.view(len(features), self.config.n_obs, self.obs_dim)
        out = self.head(self.gpt(tokens)[:, -1])
        k = self.config.num_bins
        return out[:, :k], out[:, k:].view(-1, k, self.config.horizon, self.spec.action_dim)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = self.normalized_action(batch)
        logits, offsets = self._forward(self.encode_obs(batch))
        bin_index, _ = self.bin_targets(target)
        log_p = F.log_softmax(logits, dim=-1).gather(1, bin_index[:, None])[:, 0]
        focal = -(1 - log_p.exp()).pow(self.config.focal_gamma) * log_p
        chosen = offsets[torch.arange(len(target), device=target.device), bin_index]
        pred = self.bins[bin_index].view_as(target) + chosen
        return focal + self.config.offset_weight * self.chunk_mse(pred, target, batch["action_is_pad"])

    def sample_noise(self, batch_size: int, generator: Generators = None) -> torch.Tensor:
        """One uniform per sample: the inverse-CDF draw of its bin."""
        return per_row(lambda g, n: torch.rand(n, generator=g), batch_size, generator).to(self.device)

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        logits, offsets = self._forward(obs_features)
        cdf = torch.softmax(logits / self.config.temperature, dim=-1).cumsum(-1)
        bin_index = torch.searchsorted(cdf, (noise * cdf[:, -1])[:, None]).clamp(max=self.config.num_bins - 1)[:, 0]
        chosen = offsets[torch.arange(len(bin_index), device=bin_index.device), bin_index]
        return self.bins[bin_index].view_as(chosen) + chosen
