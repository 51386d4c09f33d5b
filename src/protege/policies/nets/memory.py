"""Data-derived memories shared by the nonparametric families (``bet``, ``knn``, ``mcnn``).

Every training frame becomes one window (its observation history, edge-padded before the episode
start, and the action chunk it starts, edge-padded after the end: the same windows the trainer
samples), searched by chunked exact nearest neighbours and summarized by seeded k-means.
"""

from __future__ import annotations

import torch

from protege.data.store import ACTION, EpisodeStore
from protege.data.windows import frame_tensors, window_index
from protege.policies.base import Policy

#: Queries and keys per block of a distance matrix (16 MiB of float32 distances per block).
QUERY_BLOCK, KEY_BLOCK = 1024, 4096
#: Extra candidates per query ranked by exact distance after the fast ranking (see ``nearest``).
SLACK = 8


@torch.no_grad()
def frame_windows(policy: Policy, store: EpisodeStore, encode: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Every frame's encoded observation history (N, n_obs * obs_dim; None without ``encode``) and
    normalized action chunk (N, horizon, A), on the policy's device; call after the normalizer is
    fitted. Frames are encoded as in evaluation (centre crops), whatever the policy's mode, so a
    stored frame is where a query of the same frame lands."""
    index = window_index(store.episode_ends, policy.config.n_obs, policy.config.horizon)
    keys = policy.spec.obs_shapes if encode else policy.state_keys  # chunks alone need the state (relative actions)
    obs = frame_tensors({key: store.obs[key] for key in keys})
    action = torch.as_tensor(store.action, dtype=torch.float32)
    obs_rows, action_rows = torch.as_tensor(index.obs_rows), torch.as_tensor(index.action_rows)
    features, chunks = [], []
    training = policy.training
    policy.eval()
    try:
        for rows in torch.arange(len(obs_rows)).split(QUERY_BLOCK):
            batch = {k: v[obs_rows[rows]].to(policy.device) for k, v in obs.items()}
            batch[ACTION] = action[action_rows[rows]].to(policy.device)
            if encode:
                features.append(policy.encode_obs(batch))
            chunks.append(policy.normalized_action(batch))
    finally:
        policy.train(training)
    return (torch.cat(features) if encode else None), torch.cat(chunks)


def nearest(queries: torch.Tensor, keys: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest keys (Euclidean) of every query: distances and indices (Q, k), closest first.

    ``cdist``'s fast matrix-product form is off by ~1e-3 near zero distance (a frame would not be
    at distance 0 from itself), so it only shortlists ``k + SLACK`` candidates per block of keys;
    those are ranked by directly computed distances. Blocked over queries and keys, so memory
    stays bounded however large the key set is.
    """
    if not 1 <= k <= len(keys):
        raise ValueError(f"need 1 <= k <= {len(keys)} keys, got k={k}")
    out_d, out_i = [], []
    for q in queries.split(QUERY_BLOCK):
        best_d = q.new_zeros((len(q), 0))
        best_i = torch.zeros((len(q), 0), dtype=torch.long, device=q.device)
        for start in range(0, len(keys), KEY_BLOCK):
            block = torch.cdist(q, keys[start : start + KEY_BLOCK])
            i = block.topk(min(k + SLACK, block.shape[1]), dim=1, largest=False).indices + start
            cand_d = torch.cat([best_d, (q[:, None] - keys[i]).norm(dim=-1)], dim=1)
            cand_i = torch.cat([best_i, i], dim=1)
            best_d, pick = cand_d.topk(min(k + SLACK, cand_d.shape[1]), dim=1, largest=False)
            best_i = cand_i.gather(1, pick)
        out_d.append(best_d[:, :k])
        out_i.append(best_i[:, :k])
    return torch.cat(out_d), torch.cat(out_i)


@torch.no_grad()
def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 100) -> torch.Tensor:
    """Centers (k, D) of ``x`` (N, D): k-means++ seeding from a generator seeded with ``seed``, then
    Lloyd iterations until the assignment stops changing. Same data and seed, same centers (on one
    device); an emptied cluster keeps its previous center."""
    if len(x) < k:
        raise ValueError(f"k-means needs at least k={k} points, got {len(x)}; lower the number of bins/memories")
    generator = torch.Generator(device=x.device).manual_seed(seed)
    first = torch.randint(len(x), (1,), generator=generator, device=x.device)
    centers = x[first]
    d2 = (x - centers[0]).pow(2).sum(1)
    for _ in range(k - 1):  # k-means++: next center with probability proportional to squared distance
        weights = d2 if d2.sum() > 0 else torch.ones_like(d2)  # fewer distinct points than k: any point
        pick = torch.multinomial(weights, 1, generator=generator)
        centers = torch.cat([centers, x[pick]])
        d2 = torch.minimum(d2, (x - x[pick]).pow(2).sum(1))
    assign = None
    for _ in range(iters):
        new_assign = nearest(x, centers)[1][:, 0]
        if assign is not None and torch.equal(new_assign, assign):
            break
        assign = new_assign
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        centers = torch.where(counts > 0, sums / counts.clamp(min=1), centers)
    return centers
