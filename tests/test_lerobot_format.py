"""LeRobotDataset v3 reading and writing: LeRobot's own files load, round trips are bit-exact,
writes are atomic, and every malformed folder fails with a DatasetError naming what is wrong."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_checks import assert_bit_equal, assert_stores_equal

from protege.data.store import DatasetError, EpisodeStore
from protege.formats import lerobot, read_dataset, write_dataset
from protege.formats.lerobot import read_lerobot, write_lerobot

FIXTURES = Path(__file__).parent / "fixtures"
INFO = "meta/info.json"
DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
TASKS = "meta/tasks.parquet"


def fixture_folder(name: str) -> Path:
    folder = FIXTURES / "lerobot" / name
    if not folder.is_dir():
        pytest.fail(f"LeRobot fixture {folder} is missing; it ships in the repo under tests/fixtures/lerobot")
    return folder


@pytest.fixture(scope="module")
def pusht() -> Path:
    return fixture_folder("pusht-like-v3")


@pytest.fixture(scope="module")
def pusht_store(pusht: Path) -> EpisodeStore:
    return read_lerobot(pusht)


def small_store(lengths: tuple[int, ...] = (4, 5, 3), seed: int = 0) -> EpisodeStore:
    rng = np.random.default_rng(seed)
    n, e = sum(lengths), len(lengths)
    return EpisodeStore(
        obs={"observation.state": rng.standard_normal((n, 2)).astype(np.float32)},
        action=rng.standard_normal((n, 2)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={
            "success": np.arange(e) % 2 == 0,
            "return": rng.standard_normal(e),
            "source": np.array(["expert", "noisy", "expert"][:e] + ["expert"] * (e - 3), dtype=object),
            "seed": np.arange(e, dtype=np.int64) + 100,
        },
        reward=rng.standard_normal(n).astype(np.float32),
        fps=10,
        task="reach the goal",
    )


# ------------------------------------------------------------------------------ LeRobot's own files


def test_lerobot_fixture_loads(pusht_store: EpisodeStore) -> None:
    store = pusht_store
    assert (store.num_episodes, store.num_frames, store.fps, store.task) == (50, 5000, 10, "push the T")
    assert store.obs["observation.state"].shape == (5000, 2)
    assert store.obs["observation.environment_state"].shape == (5000, 16)
    assert store.action.shape == (5000, 2)
    assert {value.dtype for value in [*store.obs.values(), store.action]} == {np.dtype(np.float32)}
    assert (store.episode_lengths == 100).all()
    assert store.reward is None


def test_lerobot_image_reward_fixture_reads_cameras_rewards_and_done() -> None:
    """LeRobot's PNG 'image' camera comes back bit-exact, as LeRobot wrote it; the return is the sum of
    next.reward (as the robomimic and Minari readers do), not 0; next.done is checked against the
    episode ends; success, source and seed, which LeRobot does not record, are named unrecorded."""
    folder = fixture_folder("image-reward-v3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every feature is read: nothing to warn about
        store = read_lerobot(folder)
    table = pq.read_table(folder / DATA)
    rewards = table.column("next.reward").to_numpy().astype(np.float64)
    ids, frames = table.column("episode_index").to_numpy(), table.column("frame_index").to_numpy()
    expected = [rewards[ids == e].sum() for e in range(store.num_episodes)]
    np.testing.assert_allclose(store.episodes["return"], expected, rtol=1e-6)
    assert store.unrecorded == {"success", "source", "seed"}
    images = store.obs["observation.images.cam"]
    assert images.shape == (130, 64, 64, 3) and images.dtype == np.uint8
    for row in (0, 36, 37, 129):
        np.testing.assert_array_equal(images[row], gradient_picture(int(ids[row]), int(frames[row])))


def gradient_picture(episode: int, frame: int) -> np.ndarray:
    """The fixture's pictures (tests/fixtures/regenerate.py writes them through LeRobot)."""
    spec = importlib.util.spec_from_file_location("regenerate", Path(__file__).parent / "fixtures" / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.gradient_picture(episode, frame)


def test_lerobot_done_before_an_episode_ends_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(fixture_folder("image-reward-v3"), folder)
    table = pq.read_table(folder / DATA)
    done = table.column("next.done").to_numpy(zero_copy_only=False).copy()
    done[5] = True
    pq.write_table(
        table.set_column(table.schema.get_field_index("next.done"), "next.done", pa.array(done)), folder / DATA
    )
    with pytest.raises(DatasetError, match=r"'next.done' is true at frame row 5, inside episode 0"):
        read_lerobot(folder)


def test_lerobot_fixture_values_match_pyarrow(pusht: Path, pusht_store: EpisodeStore) -> None:
    table = pq.read_table(pusht / DATA)
    for row in (0, 1, 2345, 4999):
        frame = table.slice(row, 1).to_pylist()[0]
        for key in ("observation.state", "observation.environment_state"):
            np.testing.assert_array_equal(pusht_store.obs[key][frame["index"]], np.float32(frame[key]))
        np.testing.assert_array_equal(pusht_store.action[frame["index"]], np.float32(frame["action"]))


def test_lerobot_fixture_rewritten_by_protege_reads_the_same(pusht_store: EpisodeStore, tmp_path: Path) -> None:
    assert_stores_equal(read_lerobot(write_lerobot(pusht_store, tmp_path / "copy")), pusht_store)


def test_written_folder_has_lerobots_layout(pusht: Path, pusht_store: EpisodeStore, tmp_path: Path) -> None:
    ours = write_dataset(pusht_store, tmp_path / "copy", video=False)
    assert pq.read_schema(ours / DATA).remove_metadata() == pq.read_schema(pusht / DATA).remove_metadata()
    hf_features = [
        json.loads(pq.read_schema(root / DATA).metadata[b"huggingface"])["info"]["features"] for root in (ours, pusht)
    ]
    assert hf_features[0] == hf_features[1]
    lerobot_episodes, our_episodes = pq.read_schema(pusht / EPISODES), pq.read_schema(ours / EPISODES)
    for field in lerobot_episodes:
        assert our_episodes.field(field.name).type == field.type, field.name
    assert pq.read_schema(ours / TASKS).pandas_metadata["index_columns"] == ["__index_level_0__"]
    info, lerobot_info = (json.loads((root / INFO).read_text()) for root in (ours, pusht))
    for feature in lerobot_info["features"].values():
        feature["names"] = None  # the store keeps no per-dimension names
    assert info == lerobot_info
    stats, lerobot_stats = (json.loads((root / "meta/stats.json").read_text()) for root in (ours, pusht))
    assert stats.keys() == lerobot_stats.keys()
    for key, feature_stats in lerobot_stats.items():
        assert stats[key].keys() == feature_stats.keys()
        for name in ("min", "max", "mean", "std", "count"):
            np.testing.assert_allclose(stats[key][name], feature_stats[name], rtol=1e-6, err_msg=f"{key}/{name}")


def test_video_features_are_skipped_without_images() -> None:
    store = read_lerobot(fixture_folder("video-v3"), images=False)
    assert list(store.obs) == ["observation.state"]
    assert store.episode_lengths.tolist() == [30, 25, 40, 35, 20]


# --------------------------------------------------------------------------------------- round trip


@st.composite
def stores(draw: st.DrawFn) -> EpisodeStore:
    lengths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=5))
    n, e = sum(lengths), len(lengths)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def floats(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4)).astype(np.float32)

    obs = {"observation.state": floats(n, draw(st.integers(1, 4)))}
    if draw(st.booleans()):
        obs["observation.grid"] = floats(n, 2, 3)
    episodes = {
        "success": rng.random(e) < 0.5,
        "return": rng.standard_normal(e) * 100,
        "source": np.array(draw(st.lists(st.text(max_size=8), min_size=e, max_size=e)), dtype=object),
        "seed": rng.integers(-(2**63), 2**63 - 1, e),
    }
    if draw(st.booleans()):
        episodes["difficulty"] = rng.integers(0, 5, e)
    return EpisodeStore(
        obs=obs,
        action=floats(n, draw(st.integers(1, 3))),
        episode_ends=np.cumsum(lengths),
        episodes=episodes,
        reward=floats(n) if draw(st.booleans()) else None,
        fps=draw(st.integers(1, 60)),
        task=draw(st.text(max_size=12)),
    )


@settings(max_examples=25, deadline=None)
@given(store=stores())
def test_round_trip_is_bit_exact(store: EpisodeStore) -> None:
    with tempfile.TemporaryDirectory() as folder:
        assert_stores_equal(read_dataset(write_dataset(store, Path(folder) / "ds", video=False)), store)


def test_data_and_episodes_split_across_files_read_in_index_order(tmp_path: Path) -> None:
    store = small_store((4, 5, 3, 6))
    root = write_lerobot(store, tmp_path / "ds")
    for relative, rows in ((DATA, 9), (EPISODES, 2)):
        table = pq.read_table(root / relative)
        (root / relative).unlink()
        later = root / relative.replace("chunk-000/file-000", "chunk-001/file-000")
        later.parent.mkdir(parents=True)
        pq.write_table(table.slice(0, rows), later)  # first rows in the last file: order comes from 'index'
        pq.write_table(table.slice(rows), root / relative)
    assert_stores_equal(read_lerobot(root), store)


def test_one_dimensional_observation_reads_back_with_shape_1(tmp_path: Path) -> None:
    store = small_store()
    store.obs["observation.speed"] = np.arange(store.num_frames, dtype=np.float32)
    back = read_lerobot(write_lerobot(store, tmp_path / "ds"))
    assert_bit_equal(back.obs["observation.speed"], store.obs["observation.speed"][:, None], "observation.speed")


def test_observation_keys_must_use_lerobot_naming(tmp_path: Path) -> None:
    store = small_store()
    store.obs["state"] = store.obs.pop("observation.state")
    with pytest.raises(DatasetError, match="'state'"):
        write_lerobot(store, tmp_path / "ds")


# ------------------------------------------------------------------------------------ atomic writes


def test_existing_root_raises_unless_overwrite(tmp_path: Path) -> None:
    root = write_lerobot(small_store(seed=1), tmp_path / "ds")
    with pytest.raises(FileExistsError, match=re.escape(str(root))):
        write_lerobot(small_store(seed=2), root)
    assert_stores_equal(read_lerobot(root), small_store(seed=1))
    write_lerobot(small_store((2, 2), seed=3), root, overwrite=True)
    assert_stores_equal(read_lerobot(root), small_store((2, 2), seed=3))
    assert os.listdir(tmp_path) == ["ds"]


@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_no_partial_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool) -> None:
    root = tmp_path / "ds"
    if existing:
        write_lerobot(small_store(seed=1), root)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lerobot.pq, "write_table", killed)
    with pytest.raises(KeyboardInterrupt):
        write_lerobot(small_store(seed=2), root, overwrite=True)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == (["ds"] if existing else [])
    if existing:
        assert_stores_equal(read_lerobot(root), small_store(seed=1))


# ------------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def valid_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lerobot(small_store(), tmp_path_factory.mktemp("valid") / "ds")


def rewrite_parquet(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def edit_info(root: Path, key: str, value: object) -> None:
    info = json.loads((root / INFO).read_text())
    info[key] = value
    (root / INFO).write_text(json.dumps(info))


def replace_column(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, column)


def missing_folder(root: Path) -> str:
    shutil.rmtree(root)
    return str(root)


def missing_info(root: Path) -> str:
    (root / INFO).unlink()
    return str(root / INFO)


def info_not_json(root: Path) -> str:
    (root / INFO).write_text('{"codebase_version": "v3.0", ')
    return str(root / INFO)


def old_codebase_version(root: Path) -> str:
    edit_info(root, "codebase_version", "v2.1")
    return "v2.1"


def no_data_files(root: Path) -> str:
    shutil.rmtree(root / "data")
    return "data/chunk-*/file-*.parquet"


def garbage_data(root: Path) -> str:
    (root / DATA).write_bytes(b"definitely not parquet" * 10)
    return str(root / DATA)


def truncated_data(root: Path) -> str:
    content = (root / DATA).read_bytes()
    (root / DATA).write_bytes(content[: len(content) // 2])
    return str(root / DATA)


def corrupt_episodes(root: Path) -> str:
    content = (root / EPISODES).read_bytes()
    (root / EPISODES).write_bytes(content[:100])
    return str(root / EPISODES)


def dropped_feature_column(root: Path) -> str:
    rewrite_parquet(root / DATA, lambda table: table.drop_columns(["observation.state"]))
    return "observation.state"


def action_shape_disagrees(root: Path) -> str:
    info = json.loads((root / INFO).read_text())
    info["features"]["action"]["shape"] = [3]
    (root / INFO).write_text(json.dumps(info))
    return "'action'"


def overlapping_episodes(root: Path) -> str:
    def shift(table: pa.Table) -> pa.Table:
        ends = table.column("dataset_to_index").to_numpy().copy()
        ends[0] += 1
        return replace_column(table, "dataset_to_index", pa.array(ends))

    rewrite_parquet(root / EPISODES, shift)
    return str(root / "meta" / "episodes")


def episode_index_disagrees(root: Path) -> str:
    def relabel(table: pa.Table) -> pa.Table:
        ids = table.column("episode_index").to_numpy().copy()
        ids[0] = 2
        return replace_column(table, "episode_index", pa.array(ids))

    rewrite_parquet(root / DATA, relabel)
    return "episode_index"


def nan_in_state(root: Path) -> str:
    def poison(table: pa.Table) -> pa.Table:
        state = table.column("observation.state").combine_chunks().flatten().to_numpy().copy()
        state[5] = np.nan
        return replace_column(table, "observation.state", pa.FixedSizeListArray.from_arrays(pa.array(state), 2))

    rewrite_parquet(root / DATA, poison)
    return "NaN"


def unlisted_task(root: Path) -> str:
    rewrite_parquet(root / TASKS, lambda _: pa.table({"task": ["a"], "task_index": [3]}))
    return "task_index 0 is not in the dataset's task list [3]"


def missing_tasks(root: Path) -> str:
    (root / TASKS).unlink()
    return str(root / TASKS)


def missing_episodes(root: Path) -> str:
    shutil.rmtree(root / "meta" / "episodes")
    return "meta/episodes/chunk-*/file-*.parquet"


@pytest.mark.parametrize(
    "corrupt",
    [
        missing_folder,
        missing_info,
        info_not_json,
        old_codebase_version,
        no_data_files,
        garbage_data,
        truncated_data,
        corrupt_episodes,
        dropped_feature_column,
        action_shape_disagrees,
        overlapping_episodes,
        episode_index_disagrees,
        nan_in_state,
        unlisted_task,
        missing_tasks,
        missing_episodes,
    ],
)
def test_bad_input_raises_dataset_error_naming_the_fault(
    corrupt: Callable[[Path], str], valid_folder: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(valid_folder, tmp_path / "ds"))
    expected = corrupt(root)
    with pytest.raises(DatasetError) as error:
        read_lerobot(root)
    assert expected in str(error.value)
    assert str(root) in str(error.value)


def test_a_camera_that_is_not_rgb_is_named_and_left_out(tmp_path: Path) -> None:
    """A depth or grey camera has no place in protege's store yet: the rest of the dataset still reads."""
    folder = Path(shutil.copytree(fixture_folder("image-reward-v3"), tmp_path / "ds"))
    info = json.loads((folder / "meta" / "info.json").read_text())
    info["features"]["observation.images.cam"]["shape"] = [64, 64, 1]
    (folder / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.warns(UserWarning, match=r"\['observation.images.cam'\] are not read .*not RGB"):
        store = read_lerobot(folder)
    assert list(store.obs) == ["observation.state"]


def test_a_16_bit_png_is_refused_not_clipped() -> None:
    from PIL import Image

    from protege.formats import png

    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(buffer, format="PNG")
    column = pa.array([{"bytes": buffer.getvalue(), "path": None}], png.IMAGE_TYPE)
    with pytest.raises(DatasetError, match="frame 0: a I;16 image; protege reads 8-bit images"):
        png.decode_images(column, (4, 4, 3), lambda row: f"frame {row}")
