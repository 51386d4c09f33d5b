"""EpisodeStore bookkeeping: selection, split by episode, validation errors."""

import numpy as np
import pytest

from protege.data.store import DatasetError, EpisodeStore


def make_store(lengths):
    n = sum(lengths)
    return EpisodeStore(
        obs={"observation.state": np.arange(n, dtype=np.float32)[:, None]},
        action=np.zeros((n, 2), dtype=np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={"success": np.arange(len(lengths)) % 2 == 0, "seed": np.arange(len(lengths))},
    )


def test_split_is_by_whole_episodes_and_disjoint():
    store = make_store([3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    train, val = store.split(0.3, seed=0)
    assert train.num_episodes == 7 and val.num_episodes == 3
    assert set(train.episodes["seed"]).isdisjoint(val.episodes["seed"])
    assert train.num_frames + val.num_frames == store.num_frames
    for part in (train, val):  # every episode's frames come along intact
        for e, seed in enumerate(part.episodes["seed"]):
            rows = part.obs["observation.state"][part.episode_starts[e] : part.episode_ends[e], 0]
            src = store.obs["observation.state"][store.episode_starts[seed] : store.episode_ends[seed], 0]
            np.testing.assert_array_equal(rows, src)


def test_split_zero_fraction_keeps_everything():
    store = make_store([2, 2])
    train, val = store.split(0.0, seed=0)
    assert val is None and train is store


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda kw: kw.update(action=np.zeros((5, 2))), "'observation.state' has 9 frames but 'action' has 5"),
        (lambda kw: kw.update(episode_ends=np.array([4, 3, 9])), "episode boundaries"),
        (lambda kw: kw["obs"]["observation.state"].__setitem__((6, 0), np.nan), "NaN"),
        (lambda kw: kw.update(obs={}), "no observation keys"),
    ],
)
def test_validation_names_the_problem(change, message):
    kw = dict(
        obs={"observation.state": np.zeros((9, 1), dtype=np.float32)},
        action=np.zeros((9, 2)),
        episode_ends=np.array([4, 9]),
    )
    change(kw)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EpisodeStore(**kw)
