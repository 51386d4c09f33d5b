"""Minari datasets: Minari's own files load with the right values, protege's files load in Minari,
round trips are bit-exact, reads are lazy, and malformed datasets fail with one clear DatasetError."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

h5py = pytest.importorskip("h5py")
minari = pytest.importorskip("minari")

from minari.data_collector import EpisodeBuffer  # noqa: E402
from store_checks import assert_bit_equal  # noqa: E402
from store_checks import assert_stores_equal as assert_stores_equal_in_order  # noqa: E402

from protege.data.store import DatasetError, EpisodeStore  # noqa: E402
from protege.formats import detect_format, read_dataset, write_dataset  # noqa: E402
from protege.formats import minari as minari_format  # noqa: E402
from protege.formats.minari import looks_like_minari, read_minari, write_minari  # noqa: E402


def assert_stores_equal(actual: EpisodeStore, expected: EpisodeStore) -> None:
    """Minari puts observation.state first and sorts the other keys."""
    assert_stores_equal_in_order(actual, expected, key_order=False)


FIXTURES = Path(__file__).parent / "fixtures" / "minari"
FETCH_ID = "fetch/pickplace/expert-v0"
VARIABLE = "MINARI_DATASETS_PATH"


@pytest.fixture(scope="module")
def fetch() -> Path:
    folder = FIXTURES / FETCH_ID
    if not (folder / "data" / "main_data.hdf5").is_file():
        pytest.fail(f"Minari fixture {folder} is missing; it ships in the repo under tests/fixtures/minari")
    return folder


@pytest.fixture
def no_minari_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty datasets root, so no test can see (or create) the user's ~/.minari."""
    root = tmp_path / "minari-root"
    root.mkdir()
    monkeypatch.setenv(VARIABLE, str(root))
    return root


def small_store(
    lengths: tuple[int, ...] = (4, 5, 3), seed: int = 0, image: bool = True, reward: bool = True
) -> EpisodeStore:
    rng = np.random.default_rng(seed)
    n, e = sum(lengths), len(lengths)
    obs = {
        "observation.state": rng.standard_normal((n, 3)).astype(np.float32),
        "observation.goal.position": rng.standard_normal((n, 2)).astype(np.float32),
    }
    if image:
        obs["observation.images.front"] = rng.integers(0, 256, (n, 6, 5, 3), dtype=np.uint8)
    return EpisodeStore(
        obs=obs,
        action=rng.standard_normal((n, 2)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={
            "success": np.arange(e) % 2 == 0,
            "return": rng.standard_normal(e),
            "source": np.array([f"expert-{i}" for i in range(e)], dtype=object),
            "seed": np.arange(e) * 7 - 1,  # the first is -1: unknown
        },
        reward=rng.standard_normal(n).astype(np.float32) if reward else None,
        fps=15,
        task="toy/reach",
        subsets={"train": [0, e - 1], "empty": []},
    )


# ------------------------------------------------------------------------------ Minari's own files


def test_fetch_fixture_has_the_right_shapes_and_values(fetch: Path) -> None:
    store = read_minari(fetch)
    assert store.num_episodes == 20 and store.num_frames == 1000
    np.testing.assert_array_equal(store.episode_lengths, np.full(20, 50))
    shapes = {key: values.shape for key, values in store.obs.items()}
    assert shapes == {
        "observation.state": (1000, 25),
        "observation.achieved_goal": (1000, 3),
        "observation.desired_goal": (1000, 3),
    }
    assert list(store.obs)[0] == "observation.state"
    assert store.action.shape == (1000, 4) and store.action.dtype == np.float32
    assert (store.task, store.fps) == (FETCH_ID, 10)
    with h5py.File(fetch / "data" / "main_data.hdf5", "r") as file:
        for index in (0, 7, 19):
            episode, rows = file[f"episode_{index}"], slice(50 * index, 50 * index + 50)
            for name, key in [
                ("observation", "observation.state"),
                ("achieved_goal", "observation.achieved_goal"),
                ("desired_goal", "observation.desired_goal"),
            ]:
                assert_bit_equal(store.obs[key][rows], episode["observations"][name][:-1].astype(np.float32), key)
            assert_bit_equal(store.action[rows], episode["actions"][()].astype(np.float32), "action")
            assert_bit_equal(store.reward[rows], episode["rewards"][()], "reward")
            assert store.episodes["return"][index] == episode.attrs["rewards_sum"]
            assert store.episodes["seed"][index] == episode.attrs["seed"]
            # no infos recorded and every episode truncated at 50 steps: success falls back to terminations
            assert store.episodes["success"][index] == episode["terminations"][-1]


def test_fetch_fixture_loads_by_dataset_id_and_leaves_the_environment_alone(
    fetch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    by_path = read_minari(fetch, obs_keys=["observation.desired_goal"])
    assert VARIABLE not in os.environ
    monkeypatch.setenv(VARIABLE, str(FIXTURES))
    by_id = read_minari(Path(FETCH_ID), obs_keys=["observation.desired_goal"])
    assert os.environ[VARIABLE] == str(FIXTURES)
    assert_stores_equal(by_id, by_path)
    assert looks_like_minari(Path(FETCH_ID)) and looks_like_minari(fetch)


def test_looks_like_minari_says_no_without_raising(tmp_path: Path, no_minari_root: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.hdf5").write_bytes(b"")
    for path in ("folder", "file.hdf5", "missing", "fetch/pickplace/expert-v0"):
        assert not looks_like_minari(tmp_path / path)
    assert not looks_like_minari(Path(FETCH_ID))


def minari_written(
    root: Path,
    dataset_id: str,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    buffers: list[EpisodeBuffer],
    jpeg: bool,
) -> Path:
    """A dataset written by Minari's own writer (which needs no jax when given whole episodes)."""
    with warnings.catch_warnings():  # Minari's advice to name an author, an env spec, ...
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id, buffers, observation_space=observation_space, action_space=action_space, jpeg_encoding=jpeg
        )
    return root / dataset_id


@pytest.mark.parametrize("jpeg", [True, False])
def test_reads_minari_written_dict_observations_with_images_and_infos(no_minari_root: Path, jpeg: bool) -> None:
    rng = np.random.default_rng(1)
    observation_space = spaces.Dict(
        {
            "pixels": spaces.Box(0, 255, (32, 32, 3), np.uint8),
            "arm": spaces.Dict({"joints": spaces.Box(-1, 1, (3,), np.float64)}),
            "mission": spaces.Text(10),
        }
    )
    action_space = spaces.Discrete(4)
    lengths, buffers = (3, 4), []
    for index, steps in enumerate(lengths):
        buffers.append(
            EpisodeBuffer(
                seed=100 + index,
                observations={
                    "pixels": np.repeat(rng.integers(0, 256, (steps + 1, 4, 4, 3), dtype=np.uint8), 8, axis=1).repeat(
                        8, axis=2
                    ),
                    "arm": {"joints": rng.uniform(-1, 1, (steps + 1, 3))},
                    "mission": ["go"] * (steps + 1),
                },
                actions=rng.integers(0, 4, steps),
                rewards=rng.standard_normal(steps),
                terminations=np.zeros(steps, bool),
                truncations=np.arange(steps) == steps - 1,
                infos={"success": np.arange(steps + 1) == 2 * index},  # episode 0: true only at reset; 1: at step 2
            )
        )
    folder = minari_written(no_minari_root, "robot/toy-v1", observation_space, action_space, buffers, jpeg)
    store = read_minari(folder)
    assert list(store.obs) == ["observation.arm.joints", "observation.images.pixels"]  # Text is skipped
    own = list(minari.load_dataset("robot/toy-v1").iterate_episodes())
    assert_bit_equal(
        store.obs["observation.images.pixels"], np.concatenate([e.observations["pixels"][:-1] for e in own]), "pixels"
    )
    assert_bit_equal(
        store.obs["observation.arm.joints"],
        np.concatenate([e.observations["arm"]["joints"][:-1] for e in own]).astype(np.float32),
        "joints",
    )
    assert_bit_equal(store.action, np.concatenate([e.actions for e in own]).astype(np.float32)[:, None], "action")
    assert_bit_equal(store.reward, np.concatenate([e.rewards for e in own]).astype(np.float32), "reward")
    np.testing.assert_array_equal(store.episodes["success"], [True, True])
    np.testing.assert_array_equal(store.episodes["seed"], [100, 101])
    assert store.task == "robot/toy-v1"
    without_images = read_minari(folder, images=False)
    assert list(without_images.obs) == ["observation.arm.joints"]


def test_raw_frames_in_a_dataset_without_the_jpeg_flag(no_minari_root: Path) -> None:
    """Datasets written before Minari 0.5 have no jpeg_encoding entry; Minari 0.5.4 would decode their raw frames
    as JPEG."""
    frames = np.random.default_rng(2).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    buffers = [
        EpisodeBuffer(
            observations=frames,
            actions=np.zeros((3, 1)),
            rewards=np.zeros(3),
            terminations=np.zeros(3, bool),
            truncations=np.arange(3) == 2,
        )
    ]
    folder = minari_written(
        no_minari_root,
        "old-v0",
        spaces.Box(0, 255, (32, 32, 3), np.uint8),
        spaces.Box(-1, 1, (1,), np.float32),
        buffers,
        jpeg=False,
    )
    edit_metadata(folder, lambda metadata: metadata.pop("jpeg_encoding"))
    assert_bit_equal(read_minari(folder).obs["observation.images.observation"], frames[:-1], "raw frames")


def test_reads_an_array_observation_space_as_the_state(no_minari_root: Path) -> None:
    steps = 5
    buffers = [
        EpisodeBuffer(
            observations=np.arange((steps + 1) * 2, dtype=np.float64).reshape(-1, 2),
            actions=np.ones((steps, 1)),
            rewards=np.ones(steps),
            terminations=np.arange(steps) == steps - 1,
            truncations=np.zeros(steps, bool),
        )
    ]
    folder = minari_written(
        no_minari_root,
        "flat-v0",
        spaces.Box(-9, 99, (2,), np.float64),
        spaces.Box(-1, 1, (1,), np.float32),
        buffers,
        jpeg=True,
    )
    store = read_minari(folder)
    assert list(store.obs) == ["observation.state"] and store.obs["observation.state"].shape == (steps, 2)
    assert store.episodes["success"].tolist() == [True] and store.episodes["return"].tolist() == [5.0]


# ---------------------------------------------------------------------------------- protege's files


def test_written_dataset_loads_in_minari_and_reads_back_bit_exact(tmp_path: Path) -> None:
    store = small_store()
    folder = write_minari(store, tmp_path / "toy-v0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-v0"]  # nothing left beside it
    with minari_format._datasets_path(tmp_path):
        dataset = minari.load_dataset("toy-v0")
        episodes = list(dataset.iterate_episodes())
    assert dataset.spec.total_episodes == 3 and dataset.spec.total_steps == 12 and dataset.spec.version == 0
    assert dataset.action_space.contains(store.action[0])
    first = episodes[0]
    assert first.observations["observation"].shape == (5, 3)  # T+1: the last frame repeated as the final observation
    assert_bit_equal(first.observations["observation"][-1], first.observations["observation"][-2], "final observation")
    assert_bit_equal(first.observations["front"][:-1], store.obs["observation.images.front"][:4], "image")
    assert first.observations["goal"]["position"].shape == (5, 2)
    assert [e.terminations[-1] for e in episodes] == [True, False, True]
    assert [e.truncations[-1] for e in episodes] == [False, True, False]
    assert not any(e.terminations[:-1].any() or e.truncations[:-1].any() for e in episodes)
    assert [bool(e.infos["success"].any()) for e in episodes] == [True, False, True]
    assert_stores_equal(read_minari(folder), store)


def test_round_trip_without_rewards_and_through_the_format_registry(tmp_path: Path) -> None:
    store = small_store(reward=False, image=False)
    write_dataset(store, tmp_path / "plain-v3", "minari")
    back = read_dataset(tmp_path / "plain-v3", "minari")
    assert back.reward is None
    assert_stores_equal(back, store)
    assert detect_format(tmp_path / "plain-v3") == "minari"


def test_written_under_the_datasets_root_gets_the_namespaced_id(no_minari_root: Path) -> None:
    store = small_store(image=False)
    write_minari(store, no_minari_root / "lab" / "arm" / "reach-v2")
    assert minari.load_dataset("lab/arm/reach-v2").spec.dataset_id == "lab/arm/reach-v2"
    assert "lab/arm/reach-v2" in minari.list_local_datasets()
    assert_stores_equal(read_minari(Path("lab/arm/reach-v2")), store)


@st.composite
def stores(draw: st.DrawFn) -> EpisodeStore:
    lengths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    n, e = sum(lengths), len(lengths)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    names = draw(
        st.lists(
            st.sampled_from(["velocity", "goal.xyz", "object.pose.q", "images.wrist", "gripper"]),
            unique=True,
            max_size=3,
        )
    )
    obs = {"observation.state": rng.standard_normal((n, draw(st.integers(1, 4)))).astype(np.float32)}
    for name in names:
        if name.startswith("images."):
            obs[f"observation.{name}"] = rng.integers(0, 256, (n, 3, 2, 3), dtype=np.uint8)
        else:
            obs[f"observation.{name}"] = (rng.standard_normal((n, draw(st.integers(1, 3)))) * 1e6).astype(np.float32)
    return EpisodeStore(
        obs=obs,
        action=rng.standard_normal((n, draw(st.integers(1, 3)))).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={
            "success": rng.random(e) < 0.5,
            "return": rng.standard_normal(e),
            "source": np.array(rng.choice(["expert", "noisy", ""], e), dtype=object),
            "seed": rng.integers(-1, 9, e),
        },
        reward=rng.standard_normal(n).astype(np.float32) if draw(st.booleans()) else None,
        fps=draw(st.integers(1, 60)),
        task=draw(st.text(max_size=8)),
        subsets={"picked": np.flatnonzero(rng.random(e) < 0.5)},
    )


@settings(max_examples=20, deadline=None)
@given(store=stores())
def test_round_trip_is_exact_for_random_stores(store: EpisodeStore) -> None:
    with tempfile.TemporaryDirectory() as folder:
        written = write_minari(store, Path(folder) / "random-v0")
        assert_stores_equal(read_minari(written), store)


def test_image_data_not_asked_for_is_never_read(tmp_path: Path) -> None:
    folder = write_minari(small_store(), tmp_path / "lazy-v0")
    with h5py.File(folder / "data" / "main_data.hdf5", "a") as file:
        del file["episode_1/observations/front"]
    assert "observation.images.front" not in read_minari(folder, images=False).obs
    assert list(read_minari(folder, obs_keys=["observation.goal.position"]).obs) == ["observation.goal.position"]
    with pytest.raises(DatasetError, match=r"main_data\.hdf5: episode 1: no 'observations/front'"):
        read_minari(folder)


def test_unknown_observation_key_names_the_key_the_file_and_its_keys(fetch: Path) -> None:
    with pytest.raises(
        DatasetError,
        match=r"main_data\.hdf5: no observation key\(s\) \['observation\.velocity'\]; "
        r"its keys: observation\.state, observation\.achieved_goal",
    ):
        read_minari(fetch, obs_keys=["observation.velocity"])


def test_progress_bars_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = small_store(image=False)
    write_minari(store, tmp_path / "bar-v0", progress=True)
    assert_stores_equal(read_minari(tmp_path / "bar-v0", progress=True), store)
    assert "Minari episodes" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- writing


def test_existing_destination_needs_overwrite(tmp_path: Path) -> None:
    write_minari(small_store(image=False), tmp_path / "same-v0")
    with pytest.raises(FileExistsError, match="same-v0 already exists"):
        write_minari(small_store(seed=1, image=False), tmp_path / "same-v0")
    replacement = small_store(lengths=(2, 2), seed=1, image=False)
    write_minari(replacement, tmp_path / "same-v0", overwrite=True)
    assert_stores_equal(read_minari(tmp_path / "same-v0"), replacement)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same-v0"]


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(minari_format, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        write_minari(small_store(image=False), tmp_path / "half-v0")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        (
            "observation.observation",
            np.zeros((12, 2), np.float32),
            "observation keys 'observation.state' and 'observation.observation' cannot both be Minari keys",
        ),
        ("observation.goal", np.zeros((12, 2), np.float32), "one would be a group holding the other"),
        ("observation.a..b", np.zeros((12, 2), np.float32), "cannot be a Minari key"),
        ("action.extra", np.zeros((12, 2), np.float32), "cannot be a Minari key"),
    ],
)
def test_observation_keys_that_would_not_read_back_are_refused(
    tmp_path: Path, name: str, values: np.ndarray, message: str
) -> None:
    store = small_store(image=False)
    store.obs[name] = values
    with pytest.raises(DatasetError, match=re.escape(message)):
        write_minari(store, tmp_path / "keys-v0")
    assert not (tmp_path / "keys-v0").exists()


def test_image_keys_outside_the_camera_convention_keep_their_names(tmp_path: Path) -> None:
    """PushT's camera in protege is 'observation.image' (LeRobot's name); Minari's convention would read a
    3-D leaf back as 'observation.images.<name>', so protege records its own names beside them."""
    store = small_store(image=False)
    store.obs["observation.image"] = np.arange(12 * 4 * 4 * 3, dtype=np.uint8).reshape(12, 4, 4, 3)
    store.obs["observation.depth"] = np.zeros((12, 4, 4, 1), np.uint8)
    back = read_minari(write_minari(store, tmp_path / "keys-v0"))
    assert sorted(back.obs) == sorted(store.obs)
    np.testing.assert_array_equal(back.obs["observation.image"], store.obs["observation.image"])


def test_folder_name_must_be_a_minari_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"named by its id, <name>-v<version> \(e.g. 'demos-v0'\)"):
        write_minari(small_store(image=False), tmp_path / "demos")


def test_episode_columns_must_be_numbers_or_strings(tmp_path: Path) -> None:
    store = small_store(image=False)
    store.episodes["notes"] = np.array([{"a": 1}, None, 3], dtype=object)
    with pytest.raises(DatasetError, match="episode column 'notes' holds Python objects"):
        write_minari(store, tmp_path / "cols-v0")


# ------------------------------------------------------------------------------------ bad input


@pytest.fixture
def written(tmp_path: Path) -> Path:
    return write_minari(small_store(image=False), tmp_path / "bad-v0")


def edit_episode(folder: Path, edit) -> None:
    with h5py.File(folder / "data" / "main_data.hdf5", "a") as file:
        edit(file["episode_1"])


def edit_metadata(folder: Path, edit) -> None:
    path = folder / "data" / "metadata.json"
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))


def replace(group: h5py.Group, name: str, data: np.ndarray) -> None:
    del group[name]
    group.create_dataset(name, data=data)


def test_missing_dataset_names_the_datasets_root_variable(tmp_path: Path, no_minari_root: Path) -> None:
    with pytest.raises(
        DatasetError,
        match=rf"no Minari dataset at 'nowhere/gone-v0'.*{VARIABLE} \(now {re.escape(str(no_minari_root))}\)",
    ):
        read_minari(Path("nowhere/gone-v0"))


def test_corrupt_main_file(written: Path) -> None:
    main = written / "data" / "main_data.hdf5"
    main.write_bytes(main.read_bytes()[:200])
    with pytest.raises(
        DatasetError, match=r"main_data\.hdf5: cannot read the episode attributes.*truncated or corrupt"
    ):
        read_minari(written)


def test_missing_main_file(written: Path) -> None:
    (written / "data" / "main_data.hdf5").unlink()
    with pytest.raises(DatasetError, match=r"main_data\.hdf5: missing"):
        read_minari(written)


def test_observations_must_be_one_longer_than_actions(written: Path) -> None:
    edit_episode(written, lambda group: replace(group, "observations/observation", np.zeros((5, 3), np.float32)))
    with pytest.raises(
        DatasetError,
        match=r"episode 1: 'observations/observation' has 5 frames but 'actions' has 5 steps; "
        r"Minari stores one more observation than actions \(6\)",
    ):
        read_minari(written)


def test_missing_actions(written: Path) -> None:
    edit_episode(written, lambda group: group.__delitem__("actions"))
    with pytest.raises(DatasetError, match=r"main_data\.hdf5: episode 1: no 'actions' in the file"):
        read_minari(written)


def test_missing_rewards(written: Path) -> None:
    edit_episode(written, lambda group: group.__delitem__("rewards"))
    with pytest.raises(DatasetError, match=r"episode 1: no 'rewards' in the file"):
        read_minari(written)


def test_nan_observation_names_the_episode_and_key(written: Path) -> None:
    def poison(group: h5py.Group) -> None:
        group["observations/goal/position"][2, 0] = np.nan

    edit_episode(written, poison)
    with pytest.raises(
        DatasetError, match=r"main_data\.hdf5: 'observation\.goal\.position' has NaN/inf values \(first in episode 1"
    ):
        read_minari(written)


def test_inf_action_names_the_episode(written: Path) -> None:
    def poison(group: h5py.Group) -> None:
        group["actions"][0, 1] = np.inf

    edit_episode(written, poison)
    with pytest.raises(DatasetError, match=r"'action' has NaN/inf values \(first in episode 1"):
        read_minari(written)


def test_string_observations_are_refused_without_reading_them(written: Path) -> None:
    edit_episode(written, lambda group: replace(group, "observations/observation", np.array([b"x"] * 6)))
    with pytest.raises(DatasetError, match=r"episode 1: 'observations/observation' holds \|S1 data, expected numbers"):
        read_minari(written)


def test_actions_of_the_wrong_width(written: Path) -> None:
    edit_episode(written, lambda group: replace(group, "actions", np.zeros((5, 3), np.float32)))
    with pytest.raises(DatasetError, match=r"episode 1: 'actions' has shape \(5, 3\), expected .*\(2,\)"):
        read_minari(written)


def test_more_episodes_announced_than_stored(written: Path) -> None:
    edit_metadata(written, lambda metadata: metadata.update(total_episodes=4))
    with pytest.raises(DatasetError, match="the 4 episodes metadata.json announces"):
        read_minari(written)


@pytest.mark.parametrize("key", ["observation_space", "dataset_id", "minari_version"])
def test_missing_metadata_entry(written: Path, key: str) -> None:
    edit_metadata(written, lambda metadata: metadata.pop(key))
    with pytest.raises(DatasetError, match=rf"metadata\.json: no '{key}' entry"):
        read_minari(written)


def test_spaces_are_never_rebuilt_from_the_env_spec(written: Path) -> None:
    edit_metadata(
        written, lambda metadata: (metadata.pop("action_space"), metadata.update(env_spec='{"id": "Evil-v0"}'))
    )
    with pytest.raises(DatasetError, match="does not rebuild spaces from env_spec"):
        read_minari(written)


def test_unsupported_storage_and_bad_json(written: Path) -> None:
    edit_metadata(written, lambda metadata: metadata.update(data_format="arrow"))
    with pytest.raises(DatasetError, match="data_format 'arrow' is not supported"):
        read_minari(written)
    (written / "data" / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"metadata\.json: not valid JSON"):
        read_minari(written)


def test_unsupported_minari_version_is_reported_by_minari(written: Path) -> None:
    edit_metadata(written, lambda metadata: metadata.update(minari_version="0.1.0"))
    with pytest.raises(DatasetError, match=r"minari cannot load it \(ValueError: The installed Minari version"):
        read_minari(written)


def test_bad_protege_metadata(written: Path) -> None:
    edit_metadata(written, lambda metadata: metadata["protege"].update(subsets={"train": [0, "one"]}))
    with pytest.raises(DatasetError, match=r"'protege\.subsets' has an invalid value"):
        read_minari(written)


def test_copy_of_fixture_with_corrupt_observation_chunk(fetch: Path, tmp_path: Path) -> None:
    folder = tmp_path / "expert-v0"
    shutil.copytree(fetch, folder)
    with h5py.File(folder / "data" / "main_data.hdf5", "a") as file:
        del file["episode_3/observations/desired_goal"]
        file["episode_3/observations"].create_dataset("desired_goal", data=np.zeros((51, 4)))
    with pytest.raises(
        DatasetError,
        match=r"episode 3: 'observations/desired_goal' has frames of shape \(4,\); "
        r"the observation space says \(3,\)",
    ):
        read_minari(folder)
