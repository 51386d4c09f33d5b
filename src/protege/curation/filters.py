"""Episode filters (filtered BC / %BC): pure functions from a store to a per-episode keep mask."""

from __future__ import annotations

import math

import numpy as np

from protege.data.store import EpisodeStore


def success_only(store: EpisodeStore) -> np.ndarray:
    """(E,) keep the successful episodes; an all-failure dataset is an error, not an empty run."""
    store.require_recorded("success", "success-only curation")
    keep = store.episodes["success"].astype(bool)
    if not keep.any():
        raise ValueError(f"success-only curation: none of the {store.num_episodes} episodes succeeded")
    return keep


def top_k(store: EpisodeStore, percent: float) -> np.ndarray:
    """(E,) keep the ceil(percent% of E) episodes with the highest return.

    Equal returns (a sparse success reward) rank the shorter episode first, then the earlier one.
    """
    if not 0 < percent <= 100:
        raise ValueError(f"top-k curation needs 0 < --curation.top-k-percent <= 100, got {percent}")
    store.require_recorded("return", "top-k curation")
    n = max(1, math.ceil(percent / 100 * store.num_episodes))
    order = np.lexsort((np.arange(store.num_episodes), store.episode_lengths, -store.episodes["return"]))
    keep = np.zeros(store.num_episodes, dtype=bool)
    keep[order[:n]] = True
    return keep
