"""``knn``: nonparametric behavior cloning by retrieval (VINN, Pari et al. 2021; "BC via search in
an embedded demonstration dataset", Malato et al.). No trainable parameters.

``fit`` stores every training frame's embedding (its normalized, flattened observation history,
exactly what ``encode_obs`` gives) and the normalized action chunk that followed it (edge-padded).
``predict`` returns the chunk of the nearest stored frame, or a distance-weighted average over
the ``k`` nearest. Replaying the nearest demonstration keeps its mode: retrieval never averages
two demonstrations unless asked to (``weighting="distance"``).

The memory's size depends on the dataset, so loading a checkpoint resizes the memory buffers to
the saved shapes before copying (``_load_from_state_dict``).

Measured: docs/results.md#family-knn
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from protege.data.store import EpisodeStore
from protege.policies.base import FeatureSpec, Policy, PolicyConfig, require_fixed_encoding
from protege.policies.nets.memory import frame_windows, nearest

#: Distance under which a retrieved frame counts as the query itself (leave-one-out loss).
SELF_MATCH = 1e-6


@dataclass
class KNNConfig(PolicyConfig):
    """Retrieval BC: replay the action chunk that followed the nearest demonstration frame."""

    horizon: int = 8
    n_action_steps: int = 4
    k: int = 1
    """Neighbours retrieved; with weighting="nearest" only the closest one's chunk is used."""
    weighting: Literal["nearest", "distance"] = "nearest"
    """"nearest": the closest frame's chunk; "distance": average of the k chunks weighted by 1/distance."""
    vision: str = "pixels"
    """Camera features are the normalized frame on an 8x8 grid: retrieval trains nothing, so it
    cannot use a learned encoder."""

    name: ClassVar[str] = "knn"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        require_fixed_encoding(self)


class KNNPolicy(Policy):
    config_class = KNNConfig

    def __init__(self, config: KNNConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.register_buffer("memory_keys", torch.zeros(0, config.n_obs * self.obs_dim))
        self.register_buffer("memory_chunks", torch.zeros(0, config.horizon, spec.action_dim))

    def fit(self, store: EpisodeStore) -> None:
        """Normalizer stats, then the memory: every training frame's embedding and chunk."""
        super().fit(store)
        self.memory_keys, self.memory_chunks = frame_windows(self, store)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        for name in ("memory_keys", "memory_chunks"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=self.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def retrieve(self, obs_features: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
        """Normalized chunk (B, H, A) for each query; ``exclude_self`` skips a neighbour at distance
        ~0 (the query's own frame) so training frames are scored leave-one-out."""
        if len(self.memory_keys) == 0:
            raise RuntimeError("knn policy has an empty memory; call fit(store) before predicting")
        k = 1 if self.config.weighting == "nearest" else self.config.k
        n = min(k + exclude_self, len(self.memory_keys))
        dist, idx = nearest(obs_features, self.memory_keys, n)
        if n > k:  # one neighbour too many: drop the query's own frame if retrieved, else the farthest
            own = dist[:, :1] < SELF_MATCH
            dist, idx = torch.where(own, dist[:, 1:], dist[:, :-1]), torch.where(own, idx[:, 1:], idx[:, :-1])
        chunks = self.memory_chunks[idx]  # (B, k, H, A)
        if self.config.weighting == "nearest":
            return chunks[:, 0]
        weights = 1 / (dist + SELF_MATCH)
        return torch.einsum("bk,bkha->bha", weights / weights.sum(1, keepdim=True), chunks)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Leave-one-out retrieval error (B,) for monitoring; nothing to optimize, so no gradient."""
        with torch.no_grad():
            pred = self.retrieve(self.encode_obs(batch), exclude_self=True)
            return self.chunk_mse(pred, self.normalized_action(batch), batch["action_is_pad"])

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self.retrieve(obs_features)
