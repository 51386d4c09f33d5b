"""Minari -> protege (LeRobot folder) -> Minari gives the dataset back as it was: env_spec, the
spaces (a Box stays a Box, nested Dicts keep their nesting, bounds and dtypes) and the descriptive
metadata, carried in ``EpisodeStore.format_meta["minari"]``; data that no longer fits the source's
spaces is written with spaces built from it, and a warning says why."""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

minari = pytest.importorskip("minari")

from minari.data_collector import EpisodeBuffer  # noqa: E402
from minari.serialization import serialize_space  # noqa: E402
from store_checks import assert_bit_equal, assert_stores_equal  # noqa: E402

from protege.data.store import DatasetError, EpisodeStore  # noqa: E402
from protege.formats.lerobot import read_lerobot, write_lerobot  # noqa: E402
from protege.formats.minari import read_minari, write_minari  # noqa: E402

FETCH = Path(__file__).parent / "fixtures" / "minari" / "fetch" / "pickplace" / "expert-v0"
VARIABLE = "MINARI_DATASETS_PATH"
#: Entries Minari 0.5.4 can write beside those in the Fetch fixture (ref scores need a rollout to be
#: written by Minari, so they are added to a copy by hand); "lab_notes" stands for keys Minari does not know.
DESCRIPTIVE = {
    "eval_env_spec": json.loads((FETCH / "data" / "metadata.json").read_text())["env_spec"].replace("v4", "v3"),
    "ref_min_score": -50.0,
    "ref_max_score": -8.5,
    "num_episodes_average_score": 100,
    "requirements": ["gymnasium-robotics>=1.2"],
    "code_permalink": "https://example.org/collect.py",
    "author_email": ["probe@example.org"],
    "lab_notes": {"camera": "none"},
}


@pytest.fixture(autouse=True)
def minari_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty datasets root, so no test sees (or creates) the user's ~/.minari."""
    root = tmp_path / "minari-root"
    root.mkdir()
    monkeypatch.setenv(VARIABLE, str(root))
    return root


def through_protege(store: EpisodeStore, tmp_path: Path, dataset_id: str = "back-v0") -> minari.MinariDataset:
    """The store through protege's own folder, then written to Minari under the datasets root, as Minari loads it."""
    write_lerobot(store, tmp_path / "protege", video=False)
    write_minari(read_lerobot(tmp_path / "protege"), tmp_path / "minari-root" / dataset_id)
    return minari.load_dataset(dataset_id)


def metadata(folder: Path) -> dict:
    return json.loads((folder / "data" / "metadata.json").read_text())


@pytest.mark.parametrize("descriptive", [{}, DESCRIPTIVE], ids=["fixture", "every-entry"])
def test_fetch_round_trip_gives_back_env_spec_spaces_and_metadata(
    tmp_path: Path, minari_root: Path, descriptive: dict
) -> None:
    source = shutil.copytree(FETCH, minari_root / "fetch" / "pickplace" / "expert-v0")
    (source / "data" / "metadata.json").write_text(json.dumps({**metadata(source), **descriptive}))
    original = minari.load_dataset("fetch/pickplace/expert-v0")
    store = read_minari(source)
    assert store.format_meta["minari"]["env_spec"] == metadata(source)["env_spec"]  # text, never an environment

    back = through_protege(store, tmp_path)
    assert back.spec.env_spec == original.spec.env_spec
    assert back.observation_space == original.observation_space
    assert back.action_space == original.action_space
    written = metadata(minari_root / "back-v0")
    computed = {"dataset_id", "total_episodes", "total_steps", "data_format", "jpeg_encoding", "dataset_size"}
    for key, value in metadata(source).items():
        if key not in computed:
            assert written[key] == value, key  # spaces and env_spec verbatim, descriptive entries as read
    episode = next(back.iterate_episodes())
    assert episode.observations["observation"].dtype == np.float64  # as its space says (protege holds float32)
    assert back.observation_space.contains({key: values[0] for key, values in episode.observations.items()})
    assert back.action_space.contains(episode.actions[0])
    assert_stores_equal(read_minari(minari_root / "back-v0"), store)  # per-step data and episode columns bit-exact


def test_recovered_environment_matches_the_spaces(tmp_path: Path, minari_root: Path) -> None:
    """What the lost env_spec broke: ``recover_environment()`` on protege's export (Minari runs it, never protege)."""
    if not all(importlib.util.find_spec(name) for name in ("gymnasium_robotics", "mujoco")):
        pytest.skip("recovering FetchPickAndPlace needs gymnasium-robotics and mujoco (the [all] extras)")
    back = through_protege(read_minari(FETCH), tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium-robotics' notes on other environments
        env = back.recover_environment()
    try:
        assert env.observation_space == back.observation_space and env.action_space == back.action_space
    finally:
        env.close()


def minari_written(root: Path, dataset_id: str, observation_space: spaces.Space, make_obs: Callable) -> Path:
    """Two episodes written by Minari's own writer, with Discrete actions and an env_spec naming a module that
    does not exist (so nothing could have imported it)."""
    rng = np.random.default_rng(3)
    buffers = [
        EpisodeBuffer(
            seed=index,
            observations=make_obs(rng, steps + 1),
            actions=rng.integers(0, 4, steps),
            rewards=rng.standard_normal(steps),
            terminations=np.arange(steps) == steps - 1,
            truncations=np.zeros(steps, bool),
        )
        for index, steps in enumerate((3, 5))
    ]
    with warnings.catch_warnings():  # Minari's advice to name an author, an env spec, ...
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            observation_space=observation_space,
            action_space=spaces.Discrete(4),
            jpeg_encoding=False,
        )
    folder = root / dataset_id
    spec = EnvSpec("Toy-v0", entry_point="no_such_module.toy:Toy", max_episode_steps=5).to_json()
    (folder / "data" / "metadata.json").write_text(json.dumps({**metadata(folder), "env_spec": spec}))
    return folder


BOX = spaces.Box(-9.0, 99.0, (2,), np.float64)
NESTED = spaces.Dict(
    {
        "observation": spaces.Box(-1.0, 1.0, (3,), np.float32),
        "arm": spaces.Dict({"joints": spaces.Box(-2.0, 2.0, (2,), np.float64), "grip": spaces.Box(0, 1, (1,))}),
        "pixels": spaces.Box(0, 255, (32, 32, 3), np.uint8),
    }
)


def box_obs(rng: np.random.Generator, frames: int) -> np.ndarray:
    return rng.uniform(-9, 99, (frames, 2))


def nested_obs(rng: np.random.Generator, frames: int) -> dict:
    return {
        "observation": rng.uniform(-1, 1, (frames, 3)).astype(np.float32),
        "arm": {"joints": rng.uniform(-2, 2, (frames, 2)), "grip": rng.uniform(0, 1, (frames, 1)).astype(np.float32)},
        "pixels": rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8),
    }


@pytest.mark.parametrize(("space", "make_obs"), [(BOX, box_obs), (NESTED, nested_obs)], ids=["box", "nested-dict"])
def test_minari_written_spaces_come_back_as_they_were(
    tmp_path: Path, minari_root: Path, space: spaces.Space, make_obs: Callable
) -> None:
    source = minari_written(minari_root, "toy/spaces-v0", space, make_obs)
    store = read_minari(source)
    back = through_protege(store, tmp_path)
    assert type(back.observation_space) is type(space) and back.observation_space == space
    assert metadata(minari_root / "back-v0")["observation_space"] == serialize_space(space)
    assert back.spec.env_spec.entry_point == "no_such_module.toy:Toy"
    original = list(minari.load_dataset("toy/spaces-v0").iterate_episodes())
    for mine, theirs in zip(back.iterate_episodes(), original, strict=True):
        assert_bit_equal(mine.actions, theirs.actions, "Discrete actions, int64 (T,) as written by Minari")
        if isinstance(space, spaces.Box):
            assert mine.observations.dtype == np.float64 and mine.observations.shape == theirs.observations.shape
            np.testing.assert_array_equal(mine.observations[:-1], theirs.observations[:-1].astype(np.float32))
        else:
            assert list(mine.observations) == list(theirs.observations)
            assert list(mine.observations["arm"]) == list(theirs.observations["arm"])
            assert_bit_equal(mine.observations["pixels"][:-1], theirs.observations["pixels"][:-1], "pixels")
    assert_stores_equal(read_minari(minari_root / "back-v0"), store)


def fewer_keys(store: EpisodeStore) -> None:
    del store.obs["observation.desired_goal"]


def reshaped(store: EpisodeStore) -> None:
    store.obs["observation.achieved_goal"] = np.repeat(store.obs["observation.achieved_goal"], 2, axis=1)


def scaled_actions(store: EpisodeStore) -> None:
    store.action = store.action * 3


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (fewer_keys, r"only in the space: \['observation.desired_goal'\]"),
        (reshaped, r"observation 'observation.achieved_goal' has shape \(6,\) per step, its space \(3,\)"),
        (scaled_actions, r"the actions have values outside its Box bounds"),
    ],
    ids=["fewer-keys", "reshaped-key", "actions-out-of-bounds"],
)
def test_data_that_no_longer_fits_the_spaces_gets_spaces_from_the_data_with_a_warning(
    tmp_path: Path, minari_root: Path, edit: Callable, why: str
) -> None:
    store = read_minari(FETCH)
    edit(store)
    with pytest.warns(UserWarning, match=f"do not fit this data: .*{why}"):
        write_minari(store, minari_root / "edited-v0")
    dataset = minari.load_dataset("edited-v0")
    names = {
        key: "observation" if key == "observation.state" else key.removeprefix("observation.") for key in store.obs
    }
    built = {names[key]: spaces.Box(-np.inf, np.inf, values.shape[1:], np.float32) for key, values in store.obs.items()}
    assert dataset.observation_space == spaces.Dict(built)  # float32 Boxes from the data, not the source's float64
    low, high = store.action.min(axis=0), store.action.max(axis=0)
    assert dataset.action_space == spaces.Box(low, high, dtype=np.float32)
    assert dataset.spec.env_spec.id == "FetchPickAndPlace-v4"  # still the environment the data came from
    assert_stores_equal(read_minari(minari_root / "edited-v0"), store, key_order=False)


def test_other_formats_metadata_survives_a_minari_round_trip(tmp_path: Path) -> None:
    store = read_minari(FETCH)
    store.format_meta["robomimic"] = {"env_args": {"env_name": "Lift", "type": 1}}
    back = read_minari(write_minari(store, tmp_path / "kept-v0"))
    assert back.format_meta["robomimic"] == store.format_meta["robomimic"]
    assert back.format_meta["minari"] == {**store.format_meta["minari"], "dataset_id": "kept-v0"}


def test_an_env_spec_that_is_not_text_is_refused(tmp_path: Path) -> None:
    store = read_minari(FETCH)
    store.format_meta["minari"]["env_spec"] = {"id": "FetchPickAndPlace-v4"}
    with pytest.raises(DatasetError, match=r"format_meta\['minari'\]\['env_spec'\] must be the EnvSpec JSON string"):
        write_minari(store, tmp_path / "bad-v0")
