"""One config field picks the curation (``--curation.methods``); methods compose.

Filters (success-only, top-k) intersect into a keep mask over episodes; weightings (quality, awr,
iw-sft) multiply into per-sample weights, rescaled to mean 1 over the kept samples so the loss
stays on uniform BC's scale; median-of-means replaces the batch mean. Any policy family trains
with any combination, because every family returns per-sample losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protege.curation.filters import success_only, top_k
from protege.curation.weights import awr_weights, quality_scores
from protege.data.store import EpisodeStore

METHODS = ("success-only", "top-k", "quality", "awr", "iw-sft", "median-of-means")


@dataclass
class CurationConfig:
    """Which demonstrations to learn from, and how much (default: all, uniformly)."""

    methods: tuple[str, ...] = ()
    """Any of: success-only, top-k (filtered BC / %BC by return), quality (weights from data-quality
    scores, SFT(Q)), awr (advantage-weighted BC), iw-sft (importance-weighted SFT on the filtered
    set; success-only unless top-k is given), median-of-means (robust BC). Combine freely."""
    top_k_percent: float = 30.0
    """top-k: keep this percentage of episodes, highest return first."""
    awr_beta: float = 1.0
    """awr: temperature of exp(advantage / beta), advantages in units of their standard deviation."""
    awr_max_weight: float = 20.0
    """awr: weights are clipped to this value."""
    discount: float = 0.99
    """awr: discount of the Monte-Carlo returns the value function is fitted to."""
    value_steps: int = 1000
    """awr: optimizer steps of the value-function fit."""
    iw_temperature: float = 1.0
    """iw-sft: temperature on the per-episode mean log-likelihood ratio."""
    iw_max_weight: float = 16.0
    """iw-sft: importance weights are clipped to [0, this]."""
    iw_warmup: float = 0.3
    """iw-sft: fraction of the steps spent on plain BC over all data; that policy is the reference."""
    iw_every: int = 100
    """iw-sft: recompute the importance weights every this many steps."""
    mom_blocks: int = 64
    """median-of-means: blocks per batch. The median is robust only while most blocks are clean: with a
    share e of corrupted samples a block of b samples is clean with probability (1 - e)^b, so blocks of
    ~4 samples (64 at batch 256) tolerate up to ~15% corrupted samples; blocks of 32 tolerate ~2%.
    Capped at the batch size (blocks of one sample: the median loss)."""

    def check(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown curation method(s) {', '.join(unknown)}; choose from: {', '.join(METHODS)}")
        if "iw-sft" in self.methods and (not 0 < self.iw_warmup < 1 or self.iw_every < 1):
            raise ValueError(f"iw-sft needs 0 < --curation.iw-warmup < 1 and --curation.iw-every >= 1, got {self.iw_warmup}, {self.iw_every}")

    @property
    def label(self) -> str:
        return "+".join(self.methods) or "uniform"


@dataclass
class Curated:
    """The static part of a curation: kept episodes and per-sample weights (mean 1 over kept samples)."""

    keep: np.ndarray  # (E,) bool
    weights: np.ndarray | None  # (N,) float32, or None for uniform

    def kept_rows(self, store: EpisodeStore) -> np.ndarray:
        """(N,) bool: frames of kept episodes."""
        return np.repeat(self.keep, store.episode_lengths)


def curate(store: EpisodeStore, cfg: CurationConfig, seed: int = 0) -> Curated:
    """Apply ``cfg.methods``' filters and static weights to ``store`` (iw-sft's dynamic weights are
    computed during training, see ``protege.curation.importance``)."""
    cfg.check()
    methods = set(cfg.methods)
    keep = np.ones(store.num_episodes, dtype=bool)
    if "success-only" in methods or ("iw-sft" in methods and "top-k" not in methods):
        keep &= success_only(store)
    if "top-k" in methods:
        keep &= top_k(store, cfg.top_k_percent)
    if not keep.any():
        raise ValueError(f"curation {cfg.label} keeps none of the {store.num_episodes} episodes")
    weights = np.ones(store.num_frames)
    if "quality" in methods:
        weights *= np.repeat(quality_scores(store), store.episode_lengths)
    if "awr" in methods:
        weights *= awr_weights(store, cfg.awr_beta, cfg.awr_max_weight, cfg.discount, cfg.value_steps, seed)
    if not methods & {"quality", "awr"}:
        return Curated(keep, None)
    return Curated(keep, normalize_weights(weights, np.repeat(keep, store.episode_lengths)))


def normalize_weights(weights: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Weights rescaled to mean 1 over the kept rows (zero elsewhere), float32."""
    total = weights[kept].sum()
    if not total > 0:
        raise ValueError("curation weights are zero on every kept sample; nothing would be learned")
    return np.where(kept, weights * kept.sum() / total, 0.0).astype(np.float32)
