"""Per-sample and per-episode training weights: quality scores (SFT(Q)), advantage-weighted BC
(AWR) and iw-SFT importance weights. Pure functions of arrays; the trainer multiplies each
sample's loss by its weight.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from protege.curation.metrics import robust_scale, smoothness, state_features
from protege.data.store import EpisodeStore


def quality_scores(store: EpisodeStore) -> np.ndarray:
    """(E,) score in [0, 1]: min-max normalized return x exp(-smoothness / median smoothness).

    Return alone cannot see corrupted logs (the expert still succeeded); their actions jump, so
    the smoothness factor drives them towards zero while typical episodes keep about e^-1.
    """
    store.require_recorded("return", "quality scores")
    returns = store.episodes["return"].astype(np.float64)
    spread = returns.max() - returns.min()
    value = (returns - returns.min()) / spread if spread > 0 else np.ones_like(returns)
    roughness = smoothness(store, robust_scale(store.action))
    typical = np.median(roughness)
    return value * np.exp(-roughness / typical) if typical > 0 else value


def returns_to_go(reward: np.ndarray, episode_ends: np.ndarray, discount: float) -> np.ndarray:
    """(N,) discounted Monte-Carlo return from every step to its episode's end.

    Episodes are laid out as rows of a padded (E, L) matrix and swept backwards in time: one
    vector operation per time step over all episodes at once.
    """
    ends = np.asarray(episode_ends, dtype=np.int64)
    lengths = np.diff(np.concatenate([[0], ends]))
    starts = ends - lengths
    offsets = np.arange(lengths.max())
    valid = offsets[None, :] < lengths[:, None]  # (E, L)
    rows = np.where(valid, starts[:, None] + offsets[None, :], 0)
    padded = np.where(valid, np.asarray(reward, dtype=np.float64)[rows], 0.0)
    out = np.zeros_like(padded)
    running = np.zeros(len(ends))
    for t in range(padded.shape[1] - 1, -1, -1):
        running = padded[:, t] + discount * running
        out[:, t] = running
    return out[valid]


def fit_value(features: np.ndarray, targets: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Least-squares MLP V(s) ~ target on standardized inputs and targets; returns V at every row."""
    x = torch.as_tensor(features, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0, correction=0).clamp_min(1e-6)
    y = torch.as_tensor(targets, dtype=torch.float32)
    y_mean, y_std = y.mean(), y.std(correction=0).clamp_min(1e-6)
    y = (y - y_mean) / y_std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(len(x), (min(512, len(x)),), generator=generator)
            loss = (net(x[idx]).squeeze(-1) - y[idx]).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.inference_mode():
        return (net(x).squeeze(-1) * y_std + y_mean).numpy().astype(np.float64)


def advantage_weights(returns: np.ndarray, values: np.ndarray, beta: float, max_weight: float) -> np.ndarray:
    """(N,) AWR weights min(exp(A / beta), max_weight), A = return - value in units of its std.

    Standardizing the advantage lets one beta serve tasks whose rewards differ in scale.
    """
    if beta <= 0 or max_weight <= 0:
        raise ValueError(f"advantage weights need beta > 0 and max weight > 0, got {beta} and {max_weight}")
    advantage = returns - values
    advantage = advantage / max(float(advantage.std()), 1e-8)
    return np.minimum(np.exp(np.minimum(advantage / beta, np.log(max_weight))), max_weight)


def awr_weights(
    store: EpisodeStore, beta: float, max_weight: float, discount: float, value_steps: int, seed: int
) -> np.ndarray:
    """(N,) advantage-weighted BC weights with a value function fitted to Monte-Carlo returns."""
    if store.reward is None:
        raise ValueError("awr curation needs per-step rewards; the dataset has no 'next.reward' column")
    _, states = state_features(store)
    if states is None:
        raise ValueError(
            "awr curation fits its value function on a flat float observation; "
            f"the dataset has only {sorted(store.obs)}"
        )
    returns = returns_to_go(store.reward, store.episode_ends, discount)
    values = fit_value(states.astype(np.float32), returns, value_steps, seed)
    return advantage_weights(returns, values, beta, max_weight)


def iw_sft_weights(
    episode_index: np.ndarray,
    logp_policy: np.ndarray,
    logp_reference: np.ndarray,
    temperature: float,
    max_weight: float,
) -> np.ndarray:
    """(N,) iw-SFT weights: per episode, clip(exp(temperature x mean_t[log q - log p_ref]), 0, max_weight).

    ``q`` is the policy being trained (its EMA), ``p_ref`` the behaviour-cloned policy on all data
    the curated set was drawn from; the per-episode mean log-ratio (the trajectory ratio scaled by
    its length) and the clip keep the weights bounded, as in Qin & Springenberg (2025).
    """
    episode_index = np.asarray(episode_index, dtype=np.int64)
    count = np.bincount(episode_index)
    log_ratio = np.bincount(
        episode_index, weights=np.asarray(logp_policy, np.float64) - np.asarray(logp_reference, np.float64)
    )
    mean = log_ratio / np.maximum(count, 1)
    per_episode = np.minimum(np.exp(np.minimum(temperature * mean, np.log(max_weight))), max_weight)
    return per_episode[episode_index]


def normalize_weights(weights: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Weights rescaled to mean 1 over the kept rows (zero elsewhere), float32."""
    total = weights[kept].sum()
    if not total > 0:
        raise ValueError("curation weights are zero on every kept sample; nothing would be learned")
    return np.where(kept, weights * kept.sum() / total, 0.0).astype(np.float32)
