"""Data-quality metrics of a demonstration dataset: per episode, per source, and state coverage.

Pure numpy functions of an EpisodeStore, vectorized over frames and episodes. Actions are
robust-scaled before any distance (each dimension divided by its interquartile range over the
dataset), so dimensions in different units weigh alike and outlier actions cannot hide themselves
by inflating the scale, as they would with a standard deviation.

The state compared across episodes is ``observation.state``, else every flat float observation
side by side; image-only datasets have no divergence or coverage (NaN, null in the report).
"""

from __future__ import annotations

import math

import numpy as np

from protege.data.store import STATE, EpisodeStore

#: Leading actions compared between episodes that start alike.
DIVERGENCE_STEPS = 10

#: Below this spread (standardized units) a direction is rounding noise, not data.
_TINY = 1e-9


def episode_metrics(store: EpisodeStore) -> dict[str, np.ndarray]:
    """Per-episode columns, each (E,): success, return, length, smoothness, divergence.

    smoothness: mean over steps of ||a_t - a_{t-1}||_2 of robust-scaled actions; lower is smoother,
        0 for one-step episodes. Jittery operators and corrupted logs score high.
    divergence: mean L2 distance (robust-scaled) between the episode's first ``DIVERGENCE_STEPS``
        actions and those of the episode whose standardized initial state is nearest (itself
        excluded); shorter episodes repeat their last action. High where an episode acts unlike
        another that starts alike. 0 for a single episode; NaN without a flat float state.
    """
    actions = robust_scale(store.action)
    return {
        "success": store.episodes["success"].astype(bool),
        "return": store.episodes["return"].astype(np.float64),
        "length": store.episode_lengths,
        "smoothness": smoothness(store, actions),
        "divergence": _divergence(store, actions),
    }


def robust_scale(action: np.ndarray) -> np.ndarray:
    """(N, A) actions divided per dimension by their interquartile range; a dimension whose IQR is
    0 (constant for most frames) keeps its units."""
    q1, q3 = np.percentile(np.asarray(action, dtype=np.float64), [25, 75], axis=0)
    iqr = q3 - q1
    return action / np.where(iqr > 0, iqr, 1.0)


def state_coverage(store: EpisodeStore, bins: int = 10) -> float:
    """Fraction of occupied cells of a ``bins`` x ``bins`` grid spanning the frames' standardized
    states projected on their first two principal components (``bins`` cells for 1-D states).

    A dataset whose episodes all retrace one path occupies a thin band of cells; one that visits
    the state space widely fills the grid. Compare datasets of similar size on the same task.
    """
    _, states = state_features(store)
    if states is None:
        raise ValueError(f"state coverage needs a flat float observation; dataset has only {sorted(store.obs)}")
    return _coverage(states, bins)[0]


def quality_report(store: EpisodeStore, bins: int = 10) -> dict:
    """JSON-serializable quality report: ``per_episode`` metric columns (index, source and the
    columns of ``episode_metrics``), a per-source summary ``sources``, and dataset ``coverage``.

    ``coverage`` holds ``occupied_fraction`` (``state_coverage``) and ``explained_variance``, the
    share of the standardized state variance the grid's principal components capture: a low value
    means the 2-D grid sees little of the state and its occupancy says little.
    """
    metrics = episode_metrics(store)
    sources = store.episodes["source"].astype(str)

    def recorded(name: str, value: float) -> float | None:  # None: the dataset does not record it
        return None if name in store.unrecorded else value

    summary = {}
    for source in sorted(set(sources)):
        mine = sources == source
        summary[source] = {
            "episodes": int(mine.sum()),
            "success_rate": recorded("success", float(metrics["success"][mine].mean())),
            "mean_return": recorded("return", float(metrics["return"][mine].mean())),
            "mean_length": float(metrics["length"][mine].mean()),
            "mean_smoothness": float(metrics["smoothness"][mine].mean()),
            "mean_divergence": _finite_or_none(float(metrics["divergence"][mine].mean())),
        }
    key, states = state_features(store)
    if states is None:
        coverage = {
            "key": None,
            "bins": bins,
            "components": 0,
            "occupied_fraction": None,
            "explained_variance": None,
            "note": "no flat float observation (images only): divergence and coverage are not computed",
        }
    else:
        occupied, explained, components = _coverage(states, bins)
        coverage = {
            "key": key,
            "bins": bins,
            "components": components,
            "occupied_fraction": occupied,
            "explained_variance": explained,
        }
    per_episode = {"index": list(range(store.num_episodes)), "source": sources.tolist()}
    per_episode |= {
        name: [None if name in store.unrecorded else _finite_or_none(v) for v in values.tolist()]
        for name, values in metrics.items()
    }
    return {
        "per_episode": per_episode,
        "sources": summary,
        "coverage": coverage,
        "unrecorded": sorted(store.unrecorded),
    }


def state_features(store: EpisodeStore) -> tuple[str | None, np.ndarray | None]:
    """The state metrics compare, (N, D) float64, and its name: ``observation.state``, else every
    flat float observation side by side; ``(None, None)`` for image-only datasets."""
    if STATE in store.obs:
        return STATE, np.asarray(store.obs[STATE], dtype=np.float64).reshape(store.num_frames, -1)
    keys = [k for k, v in store.obs.items() if v.ndim == 2 and np.issubdtype(v.dtype, np.floating)]
    if not keys:
        return None, None
    return "+".join(keys), np.concatenate([store.obs[k] for k in keys], axis=1).astype(np.float64)


def smoothness(store: EpisodeStore, actions: np.ndarray) -> np.ndarray:
    """(E,) mean step-to-step jump of the scaled actions within each episode."""
    episode = store.episode_index()
    jumps = np.linalg.norm(np.diff(actions, axis=0), axis=1)  # (N-1,) jump into frames 1..N-1
    within = episode[1:] == episode[:-1]
    totals = np.bincount(episode[1:][within], weights=jumps[within], minlength=store.num_episodes)
    return totals / np.maximum(store.episode_lengths - 1, 1)


def _divergence(store: EpisodeStore, actions: np.ndarray) -> np.ndarray:
    """(E,) distance of each episode's leading actions to those of its nearest-start neighbour."""
    _, states = state_features(store)
    if states is None:
        return np.full(store.num_episodes, np.nan)
    if store.num_episodes == 1:
        return np.zeros(1)
    nearest = _nearest_other(_standardize(states[store.episode_starts]))
    steps = np.minimum(np.arange(DIVERGENCE_STEPS), store.episode_lengths[:, None] - 1)  # (E, K) last action repeated
    leading = actions[store.episode_starts[:, None] + steps]  # (E, K, A)
    return np.linalg.norm(leading - leading[nearest], axis=-1).mean(axis=1)


def _nearest_other(points: np.ndarray, block: int = 1024) -> np.ndarray:
    """(E,) index of each point's nearest other point; blocks of rows bound memory to block x E."""
    squared = (points**2).sum(axis=1)
    nearest = np.empty(len(points), dtype=np.int64)
    for lo in range(0, len(points), block):
        rows = np.arange(lo, min(lo + block, len(points)))
        distance = squared[rows, None] - 2 * points[rows] @ points.T + squared[None, :]  # (b, E)
        distance[np.arange(len(rows)), rows] = np.inf
        nearest[rows] = distance.argmin(axis=1)
    return nearest


def _standardize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column; (near-)constant columns are only centered."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    return (x - mean) / np.where(std > _TINY * (1 + np.abs(mean)), std, 1.0)


def _coverage(states: np.ndarray, bins: int) -> tuple[float, float, int]:
    """Occupied fraction of the grid over the first principal components, their explained variance
    share, and how many components (min(2, D))."""
    if bins < 1:
        raise ValueError(f"coverage bins must be >= 1, got {bins}")
    x = _standardize(states)
    variances, directions = np.linalg.eigh(x.T @ x / len(x))  # ascending
    components = min(2, x.shape[1])
    projected = x @ directions[:, ::-1][:, :components]  # (N, k)
    total = variances.sum()
    explained = float(variances[::-1][:components].sum() / total) if total > _TINY else 1.0
    low, span = projected.min(axis=0), np.ptp(projected, axis=0)
    scaled = (projected - low) / np.where(span > _TINY, span, np.inf)  # a flat direction is one cell
    cells = np.minimum((scaled * bins).astype(np.int64), bins - 1)
    occupied = len(np.unique(np.ravel_multi_index(cells.T, (bins,) * components)))
    return occupied / bins**components, explained, components


def _finite_or_none(value: float | int | bool) -> float | int | bool | None:
    """JSON has no NaN: missing metrics become null."""
    return None if isinstance(value, float) and math.isnan(value) else value
