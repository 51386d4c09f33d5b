"""Curation as the trainer sees it: one lifecycle object, whatever methods it holds.

``--curation.methods`` picks the methods; they compose. Filters (success-only, top-k) intersect
into a keep mask over episodes; weightings (quality, awr) multiply into per-sample weights,
rescaled to mean 1 over the kept samples so the loss stays on uniform BC's scale; iw-sft reweighs
during training; median-of-means replaces the batch mean. Any policy family trains with any
combination, because every family returns per-sample losses.

The trainer calls ``Curation`` in this order (the shape of robomimic's algorithm hooks and
LeRobot's ``sample_weighter``), never naming a method::

    curation = Curation(cfg.curation, train_store, seed)    filters and static weights
    policy.fit(curation.fit_store())                        the episodes data-derived buffers see
    curation.start(sampler, batch_size, steps, run_dir)     which rows and weights the sampler draws
    for step ...:
        curation.before_step(step, start, policy, ema)      a method may re-weigh the sampler
        loss = curation.reduce(policy.loss(batch), batch)   weighted mean, or a robust reduction

Each method is a ``Method`` with those hooks, registered in ``METHODS``; adding one is a small
class here (its math as pure functions beside the others) plus its settings in ``CurationConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from protege.curation.filters import success_only, top_k
from protege.curation.importance import ImportanceWeighting
from protege.curation.robust import median_of_means
from protege.curation.weights import awr_weights, normalize_weights, quality_scores
from protege.data.store import EpisodeStore
from protege.data.windows import SAMPLE_WEIGHT, WindowSampler
from protege.policies import Policy


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
        """Raise a ValueError naming an unknown method or an inconsistent setting."""
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown curation method(s) {', '.join(unknown)}; choose from: {', '.join(METHODS)}")
        if "iw-sft" in self.methods and (not 0 < self.iw_warmup < 1 or self.iw_every < 1):
            raise ValueError(
                "iw-sft needs 0 < --curation.iw-warmup < 1 and --curation.iw-every >= 1, "
                f"got {self.iw_warmup}, {self.iw_every}"
            )

    @property
    def label(self) -> str:
        return "+".join(self.methods) or "uniform"


class Method:
    """One curation method's hooks; the defaults have no say (keep all, weigh 1, mean loss)."""

    #: True: the policy fits, and training starts, on all episodes (iw-sft's warm-up).
    fits_all_data: ClassVar[bool] = False

    def __init__(self, cfg: CurationConfig, seed: int):
        self.cfg, self.seed = cfg, seed

    def keep(self, store: EpisodeStore) -> np.ndarray | None:
        """(E,) episodes to learn from, or None for all."""
        return None

    def weights(self, store: EpisodeStore) -> np.ndarray | None:
        """(N,) per-sample weights before rescaling, or None for uniform."""
        return None

    def start(
        self, curation: Curation, sampler: WindowSampler, batch_size: int, total_steps: int, run_dir: Path
    ) -> None:
        """Before the first step of this process."""

    def before_step(self, step: int, start: int, policy: Policy, ema_policy: Policy) -> None:
        """Before optimizer step ``step`` (``start``: the first step of this process)."""

    def reduce(self, losses: torch.Tensor) -> torch.Tensor | None:
        """Scalar loss from the weighted per-sample losses (B,), or None for their mean."""
        return None


class SuccessOnly(Method):
    def keep(self, store: EpisodeStore) -> np.ndarray:
        return success_only(store)


class TopK(Method):
    def keep(self, store: EpisodeStore) -> np.ndarray:
        return top_k(store, self.cfg.top_k_percent)


class Quality(Method):
    def weights(self, store: EpisodeStore) -> np.ndarray:
        return np.repeat(quality_scores(store), store.episode_lengths)


class AWR(Method):
    def weights(self, store: EpisodeStore) -> np.ndarray:
        cfg = self.cfg
        return awr_weights(store, cfg.awr_beta, cfg.awr_max_weight, cfg.discount, cfg.value_steps, self.seed)


class IWSFT(Method):
    """BC on all data for the warm-up, then the filtered set (success-only unless top-k is given)
    with importance weights (``protege.curation.importance``)."""

    fits_all_data = True

    def keep(self, store: EpisodeStore) -> np.ndarray | None:
        return None if "top-k" in self.cfg.methods else success_only(store)

    def start(
        self, curation: Curation, sampler: WindowSampler, batch_size: int, total_steps: int, run_dir: Path
    ) -> None:
        cfg = self.cfg
        self.weighting = ImportanceWeighting(
            curation.kept_rows,
            curation.weights,
            curation.store.episode_index(),
            sampler,
            warmup=max(1, int(cfg.iw_warmup * total_steps)),
            every=cfg.iw_every,
            temperature=cfg.iw_temperature,
            max_weight=cfg.iw_max_weight,
            run_dir=run_dir,
            seed=self.seed,
        )

    def before_step(self, step: int, start: int, policy: Policy, ema_policy: Policy) -> None:
        self.weighting.before_step(step, start, ema_policy)


class MedianOfMeans(Method):
    def start(
        self, curation: Curation, sampler: WindowSampler, batch_size: int, total_steps: int, run_dir: Path
    ) -> None:
        self.blocks = min(self.cfg.mom_blocks, batch_size)

    def reduce(self, losses: torch.Tensor) -> torch.Tensor:
        return median_of_means(losses, self.blocks)


#: Every method by its ``--curation.methods`` name; hooks run in this order.
METHODS: dict[str, type[Method]] = {
    "success-only": SuccessOnly,
    "top-k": TopK,
    "quality": Quality,
    "awr": AWR,
    "iw-sft": IWSFT,
    "median-of-means": MedianOfMeans,
}


class Curation:
    """The curation of one training set: its kept episodes and per-sample weights (mean 1 over
    the kept samples, or None for uniform), and the hooks the trainer calls (see the module doc)."""

    def __init__(self, cfg: CurationConfig, store: EpisodeStore, seed: int = 0):
        cfg.check()
        self.cfg, self.store = cfg, store
        self.methods = [cls(cfg, seed) for name, cls in METHODS.items() if name in cfg.methods]
        self.keep = np.ones(store.num_episodes, dtype=bool)  # (E,)
        for keep in (m.keep(store) for m in self.methods):
            if keep is not None:
                self.keep &= keep
        if not self.keep.any():
            raise ValueError(f"curation {cfg.label} keeps none of the {store.num_episodes} episodes")
        factors = [w for w in (m.weights(store) for m in self.methods) if w is not None]
        self.weights: np.ndarray | None = None  # (N,) float32
        if factors:
            weights = np.ones(store.num_frames)
            for factor in factors:
                weights *= factor
            self.weights = normalize_weights(weights, self.kept_rows)

    @property
    def kept_rows(self) -> np.ndarray:
        """(N,) bool: frames of kept episodes."""
        return np.repeat(self.keep, self.store.episode_lengths)

    def fit_store(self) -> EpisodeStore:
        """The episodes a policy fits its data-derived buffers (normalizer, bins, memory) on."""
        if any(m.fits_all_data for m in self.methods):
            return self.store
        return self.store.select(np.flatnonzero(self.keep))

    def start(self, sampler: WindowSampler, batch_size: int, total_steps: int, run_dir: Path) -> None:
        """Point ``sampler`` (over ``store``'s windows) at the kept rows and their weights."""
        if not any(m.fits_all_data for m in self.methods):
            sampler.restrict(self.kept_rows, self.weights)
        for method in self.methods:
            method.start(self, sampler, batch_size, total_steps, run_dir)

    def before_step(self, step: int, start: int, policy: Policy, ema_policy: Policy) -> None:
        for method in self.methods:
            method.before_step(step, start, policy, ema_policy)

    def reduce(self, losses: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss from per-sample losses (B,): weighted by the batch's sample weights,
        then a method's reduction (median-of-means) or the mean."""
        weights = batch.get(SAMPLE_WEIGHT)
        if weights is not None:
            losses = losses * weights
        for method in self.methods:
            reduced = method.reduce(losses)
            if reduced is not None:
                return reduced
        return losses.mean()
