"""Window gathering: vectorized index arithmetic against a slow per-sample reference."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protege.data.store import EpisodeStore
from protege.data.windows import WindowSampler, window_index


def reference_windows(lengths: list[int], n_obs: int, horizon: int):
    """One Python loop per sample: obvious, slow, and the definition we test against."""
    rows = []
    start = 0
    for length in lengths:
        end = start + length
        for t in range(start, end):
            obs = [min(max(t + k, start), end - 1) for k in range(-n_obs + 1, 1)]
            act = [min(max(t + k, start), end - 1) for k in range(horizon)]
            act_pad = [not start <= t + k < end for k in range(horizon)]
            rows.append((obs, act, act_pad))
        start = end
    return [np.array([r[i] for r in rows]) for i in range(3)]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    n_obs=st.integers(1, 4),
    horizon=st.integers(1, 10),
)
def test_window_index_matches_reference(lengths, n_obs, horizon):
    index = window_index(np.cumsum(lengths), n_obs, horizon)
    obs, act, act_pad = reference_windows(lengths, n_obs, horizon)
    np.testing.assert_array_equal(index.obs_rows, obs)
    np.testing.assert_array_equal(index.action_rows, act)
    np.testing.assert_array_equal(index.action_is_pad, act_pad)


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5), n_obs=st.integers(1, 3), horizon=st.integers(1, 6))
def test_sampler_gathers_the_rows_it_indexes(lengths, n_obs, horizon):
    n = sum(lengths)
    store = EpisodeStore(
        obs={"observation.state": np.arange(n, dtype=np.float32)[:, None].repeat(3, 1)},
        action=-np.arange(n, dtype=np.float32)[:, None].repeat(2, 1),
        episode_ends=np.cumsum(lengths),
    )
    sampler = WindowSampler(store, n_obs, horizon)
    samples = torch.arange(n)
    batch = sampler.gather(samples)
    obs, act, act_pad = reference_windows(lengths, n_obs, horizon)
    assert batch["observation.state"].shape == (n, n_obs, 3)
    assert batch["action"].shape == (n, horizon, 2)
    np.testing.assert_array_equal(batch["observation.state"][..., 0].numpy(), obs)
    np.testing.assert_array_equal(-batch["action"][..., 0].numpy(), act)
    np.testing.assert_array_equal(batch["action_is_pad"].numpy(), act_pad)


def test_windows_never_cross_episode_boundaries():
    ends = np.array([5, 8, 20])
    index = window_index(ends, n_obs=3, horizon=6)
    episode = np.searchsorted(ends, np.arange(20), side="right")
    assert (episode[index.obs_rows] == episode[:, None]).all()
    assert (episode[index.action_rows] == episode[:, None]).all()
