"""Bit-exact comparison of EpisodeStores, shared by the format round-trip and corruption tests
(and benchmarks/damage.py), and the small store they damage."""

from __future__ import annotations

import numpy as np

from protege.data.store import EpisodeStore


def assert_bit_equal(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), what
    if expected.dtype == object:
        assert actual.tolist() == expected.tolist(), what
    else:
        assert actual.tobytes() == expected.tobytes(), what


def assert_stores_equal(actual: EpisodeStore, expected: EpisodeStore, key_order: bool = True) -> None:
    """Every array bit-equal, per-episode columns, subsets, fps and task equal; observation keys in
    the same order unless ``key_order`` is False (formats that sort their keys)."""
    keys = (list(actual.obs), list(expected.obs)) if key_order else (sorted(actual.obs), sorted(expected.obs))
    assert keys[0] == keys[1]
    for key in expected.obs:
        assert_bit_equal(actual.obs[key], expected.obs[key], key)
    assert_bit_equal(actual.action, expected.action, "action")
    assert_bit_equal(actual.episode_ends, expected.episode_ends, "episode_ends")
    assert sorted(actual.episodes) == sorted(expected.episodes)
    assert actual.unrecorded == expected.unrecorded
    for name in expected.episodes:
        assert_bit_equal(actual.episodes[name], expected.episodes[name], name)
    assert (actual.reward is None) == (expected.reward is None)
    if expected.reward is not None:
        assert_bit_equal(actual.reward, expected.reward, "reward")
    assert (actual.fps, actual.task) == (expected.fps, expected.task)
    assert sorted(actual.subsets) == sorted(expected.subsets)
    for name in expected.subsets:
        assert_bit_equal(actual.subsets[name], expected.subsets[name], name)


def two_episode_store(frames: int = 30) -> EpisodeStore:
    """Two episodes of random state, action and reward with every per-episode column set."""
    rng = np.random.default_rng(0)
    return EpisodeStore(
        obs={"observation.state": rng.normal(size=(frames, 3)).astype(np.float32)},
        action=rng.normal(size=(frames, 2)).astype(np.float32),
        episode_ends=np.array([frames * 2 // 5, frames]),
        episodes={
            "success": np.array([True, False]),
            "seed": np.array([3, 4]),
            "return": np.array([1.0, 0.0]),
            "source": np.array(["expert", "noisy"], dtype=object),
        },
        reward=rng.normal(size=frames).astype(np.float32),
        task="toy/fork",
    )
