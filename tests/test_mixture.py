"""`protege collect --mixture`: operators get their share of the seeds, record what they executed
(corrupted logs excepted), follow the seeds whatever the batch, and bad mixtures are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from protege.cli import main
from protege.config import CollectConfig
from protege.data.store import STATE, EpisodeStore
from protege.demos.collect import collect
from protege.demos.demonstrators import assign_operators, parse_mixture
from protege.formats import read_dataset
from protege.tasks import make_task

ALL = ("expert=0.3", "noisy=0.2", "random=0.2", "sluggish=0.2", "corrupted=0.1")


def run(tmp_path: Path, name: str, **options) -> EpisodeStore:
    cfg = CollectConfig(task=options.pop("task", "toy/reach"), out=tmp_path / name, progress=False, **options)
    return collect(cfg)[1]


def episodes_of(store: EpisodeStore, source: str) -> EpisodeStore:
    return store.select(np.flatnonzero(store.episodes["source"] == source))


def expert_labels(store: EpisodeStore) -> np.ndarray:
    """toy/reach's expert is stateless: its action is a function of the state alone."""
    return make_task("toy/reach").make_expert().act({STATE: store.obs[STATE]})


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> EpisodeStore:
    return run(tmp_path_factory.mktemp("mix"), "mixed", episodes=20, mixture=ALL, noisy_scale=0.25)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> EpisodeStore:
    return run(tmp_path_factory.mktemp("plain"), "plain", episodes=20)


def test_counts_labels_and_seed_order(mixed: EpisodeStore) -> None:
    sources, counts = np.unique(mixed.episodes["source"].astype(str), return_counts=True)
    assert dict(zip(sources, counts)) == {"expert": 6, "noisy0.25": 4, "random0.5": 4, "sluggish0.7": 4, "corrupted": 2}
    np.testing.assert_array_equal(mixed.episodes["seed"], np.arange(20))
    first_half = set(mixed.episodes["source"][:10])
    assert len(first_half) >= 3  # operators are interleaved over the seeds, not in blocks


def test_largest_remainder_counts() -> None:
    # 7 x (0.5, 0.25, 0.25) = (3.5, 1.75, 1.75): floors (3, 1, 1), the two largest remainders get the rest
    names = assign_operators({"expert": 0.5, "noisy": 0.25, "sluggish": 0.25}, 7, seed=0)
    assert sorted(names.tolist()) == ["expert"] * 3 + ["noisy"] * 2 + ["sluggish"] * 2
    np.testing.assert_array_equal(names, assign_operators({"expert": 0.5, "noisy": 0.25, "sluggish": 0.25}, 7, seed=0))


def test_expert_episodes_match_plain_collect(mixed: EpisodeStore, plain: EpisodeStore) -> None:
    expert = episodes_of(mixed, "expert")
    same = plain.select(expert.episodes["seed"])
    np.testing.assert_array_equal(expert.action, same.action)
    np.testing.assert_array_equal(expert.obs[STATE], same.obs[STATE])


def test_operators_record_what_they_executed(mixed: EpisodeStore) -> None:
    for source in ("noisy0.25", "random0.5"):
        episodes = episodes_of(mixed, source)
        assert not np.allclose(episodes.action, expert_labels(episodes), atol=1e-3), source
        assert np.abs(episodes.action).max() <= 1.0
    sluggish = episodes_of(mixed, "sluggish0.7")
    labels, actions, first = expert_labels(sluggish), sluggish.action, sluggish.episode_starts
    later = np.setdiff1d(np.arange(sluggish.num_frames), first)
    np.testing.assert_allclose(actions[first], labels[first], atol=1e-6)
    np.testing.assert_allclose(actions[later], 0.7 * actions[later - 1] + 0.3 * labels[later], atol=1e-5)


def test_corrupted_logs_hide_behind_expert_success(mixed: EpisodeStore, plain: EpisodeStore) -> None:
    corrupted = episodes_of(mixed, "corrupted")
    same = plain.select(corrupted.episodes["seed"])
    distance = np.abs(corrupted.action)  # toy/reach: bounds [-1, 1], center 0, half-range 1
    assert distance.min() >= 2 and distance.max() <= 5
    np.testing.assert_array_equal(corrupted.episodes["success"], same.episodes["success"])
    np.testing.assert_array_equal(corrupted.episodes["return"], same.episodes["return"])
    np.testing.assert_array_equal(corrupted.obs[STATE], same.obs[STATE])


def test_dataset_follows_the_seeds_whatever_the_batch(tmp_path: Path, mixed: EpisodeStore) -> None:
    other = run(tmp_path, "seven", episodes=20, mixture=ALL, noisy_scale=0.25, num_envs=7)
    single = run(tmp_path, "one", episodes=20, mixture=ALL, noisy_scale=0.25, num_envs=1)
    for store in (other, single):
        np.testing.assert_array_equal(store.action, mixed.action)
        np.testing.assert_array_equal(store.obs[STATE], mixed.obs[STATE])
        np.testing.assert_array_equal(store.episode_ends, mixed.episode_ends)
        for column in ("source", "seed", "success", "return"):
            np.testing.assert_array_equal(store.episodes[column], mixed.episodes[column])


def test_success_only_applies_after_mixing(tmp_path: Path) -> None:
    options = {"task": "toy/fork", "episodes": 20, "mixture": ("expert=0.5", "random=0.5"), "random_epsilon": 0.8}
    everything = run(tmp_path, "all", **options)
    kept = run(tmp_path, "kept", success_only=True, **options)
    assert 0 < kept.num_episodes < everything.num_episodes
    np.testing.assert_array_equal(kept.episodes["seed"], everything.episodes["seed"][everything.episodes["success"]])


@pytest.mark.parametrize(
    ("mixture", "message"),
    [
        (("expert=0.5", "noisy=0.4"), "--mixture fractions must sum to 1, got 0.9"),
        (
            ("expert=0.5", "wizard=0.5"),
            "unknown operator 'wizard'; known operators: expert, noisy, random, sluggish, corrupted",
        ),
        (("expert=1.2", "noisy=-0.2"), "fraction of 'noisy' must be > 0, got -0.2"),
        (("expert",), "--mixture entries look like NAME=FRACTION, got 'expert'"),
        (("expert=half",), "fraction of 'expert' must be a number, got 'half'"),
        (("expert=0.5", "expert=0.5"), "names operator 'expert' twice"),
    ],
)
def test_bad_mixtures_name_the_problem(mixture: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_mixture(mixture)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"noise": 0.2}, "--mixture does not combine with --noise/--epsilon"),
        ({"sluggish": 1.0}, "--sluggish must be in [0, 1), got 1.0"),
        ({"corrupt_scale": 1.5}, "--corrupt-scale must be >= 2"),
    ],
)
def test_bad_operator_settings_fail_before_simulating(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        run(tmp_path, "bad", episodes=4, mixture=("sluggish=0.5", "corrupted=0.5"), **options)
    assert message in str(err.value)
    assert not (tmp_path / "bad").exists()


def test_cli_collects_a_mixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    main(
        [
            "collect",
            "toy/reach",
            "--episodes",
            "10",
            "--mixture",
            "expert=0.5",
            "noisy=0.5",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert "wrote 10 episodes" in capsys.readouterr().out
    sources, counts = np.unique(read_dataset(out).episodes["source"].astype(str), return_counts=True)
    assert dict(zip(sources, counts)) == {"expert": 5, "noisy0.3": 5}
    with pytest.raises(SystemExit) as err:
        main(
            [
                "collect",
                "toy/reach",
                "--episodes",
                "10",
                "--mixture",
                "expert=0.5",
                "--out",
                str(tmp_path / "x"),
                "--no-progress",
            ]
        )
    assert "--mixture fractions must sum to 1" in str(err.value.code) and "\n" not in str(err.value.code)
