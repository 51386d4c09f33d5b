"""What other tools need from protege's files and what they leave of them: key mappings, episode
columns that LeRobot's dataset tools drop, datasets with several tasks, cameras listed by inspect.
(benchmarks/interop.py runs the tools themselves; these tests pin protege's side.)"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from store_checks import two_episode_store

from protege.cli import main
from protege.curation.filters import success_only, top_k
from protege.data.keys import remap_keys
from protege.data.store import STATE, TASK, DatasetError, EpisodeStore, episode_returns
from protege.formats import read_dataset, write_dataset
from protege.policies.storage import load_policy

EPISODES = Path("meta/episodes/chunk-000/file-000.parquet")
ENV_STATE = "observation.environment_state"


def drop_episode_columns(root: Path, names: list[str]) -> None:
    """What LeRobot's delete_episodes and split_dataset leave: its own episode columns only."""
    table = pq.read_table(root / EPISODES)
    pq.write_table(table.drop_columns(names), root / EPISODES)


# ------------------------------------------------------------------------------------ key mapping


def test_key_mapping_splits_renames_and_joins() -> None:
    store = two_episode_store()
    state = store.obs[STATE]
    split = remap_keys(store, [f"{STATE}={STATE}[0:1]", f"{ENV_STATE}={STATE}[1:]"])
    assert list(split.obs) == [STATE, ENV_STATE]
    np.testing.assert_array_equal(split.obs[STATE], state[:, :1])
    np.testing.assert_array_equal(split.obs[ENV_STATE], state[:, 1:])
    joined = remap_keys(split, [f"{STATE}={STATE}+{ENV_STATE}"])
    assert list(joined.obs) == [STATE]
    np.testing.assert_array_equal(joined.obs[STATE], state)
    renamed = remap_keys(store, [f"observation.agent={STATE}"])
    assert list(renamed.obs) == ["observation.agent"]
    assert renamed.episodes["source"].tolist() == store.episodes["source"].tolist()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("observation.x", "is not DEST=SOURCE"),
        (
            "observation.x=observation.nothing",
            r"no observation 'observation.nothing'; the dataset has \['observation.state'\]",
        ),
        (f"observation.x={STATE}[5:9]", "is empty"),
        (f"x={STATE}", "a destination is an observation key"),
        (" observation.y = observation.state [0:1] ", None),
    ],
)
def test_a_bad_key_mapping_says_what_is_wrong(entry: str, message: str | None) -> None:
    if message is None:  # spaces around the parts are fine
        assert list(remap_keys(two_episode_store(), [entry]).obs) == ["observation.y"]
        return
    with pytest.raises(DatasetError, match=message):
        remap_keys(two_episode_store(), [entry])


def test_a_mapping_never_replaces_a_key_silently() -> None:
    store = two_episode_store()
    store.obs[ENV_STATE] = store.obs[STATE][:, :1]
    with pytest.raises(DatasetError, match=f"'{STATE}' is already an observation"):
        remap_keys(store, [f"{STATE}={ENV_STATE}"])


def test_export_with_keys_gives_lerobot_an_environment_state(tmp_path: Path) -> None:
    """LeRobot's ACT and diffusion need observation.environment_state (or a camera) beside the state."""
    write_dataset(two_episode_store(), tmp_path / "data")
    main(
        ["export", str(tmp_path / "data"), str(tmp_path / "lr"), "--format", "lerobot", "--no-progress",
         "--keys", f"{STATE}={STATE}[0:1]", f"{ENV_STATE}={STATE}[1:3]"]
    )  # fmt: skip
    back = read_dataset(tmp_path / "lr")
    assert back.obs[ENV_STATE].shape == (30, 2) and back.obs[STATE].shape == (30, 1)


# ------------------------------------------------------------------ episode columns other tools drop


def test_success_survives_lerobots_tools_through_next_success(tmp_path: Path) -> None:
    """LeRobot's dataset tools rewrite the episodes parquet with their own columns only; success comes
    back from the per-frame next.success protege also writes, the return from next.reward, and
    source and seed are named unrecorded."""
    root = write_dataset(two_episode_store(), tmp_path / "data")
    drop_episode_columns(root, ["success", "return", "source", "seed"])
    store = read_dataset(root)
    assert store.episodes["success"].tolist() == [True, False]
    original = two_episode_store()
    np.testing.assert_allclose(store.episodes["return"], episode_returns(original.reward, original.episode_ends))
    assert store.unrecorded == {"source", "seed"}
    assert success_only(store).tolist() == [True, False]


def test_curation_refuses_what_the_dataset_does_not_record(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A file that lost success and return (and has no next.success or rewards to recover them):
    inspect shows '?' and says so; success-only and top-k refuse instead of reading defaults as data."""
    original = two_episode_store()
    store = EpisodeStore(obs=original.obs, action=original.action, episode_ends=original.episode_ends, task="toy/fork")
    assert store.unrecorded == {"success", "return", "source", "seed"}
    root = write_dataset(store, tmp_path / "data")
    back = read_dataset(root)
    assert back.unrecorded == store.unrecorded
    with pytest.raises(DatasetError, match="success-only curation needs each episode's 'success'"):
        success_only(back)
    with pytest.raises(DatasetError, match="top-k curation needs each episode's 'return'"):
        top_k(back, 50)
    main(["inspect", str(root)])
    printed = capsys.readouterr().out
    assert "not recorded  return, seed, source, success" in printed
    assert re.search(r"unknown +2 +\? +\? +15\.0", printed)


# --------------------------------------------------------------------------------- several tasks


def two_task_store() -> EpisodeStore:
    store = EpisodeStore.concatenate([two_episode_store(), two_episode_store()])
    store.episodes[TASK] = np.array(["reach", "push", "push", "reach"], dtype=object)
    return EpisodeStore(
        **{name: getattr(store, name) for name in ("obs", "action", "episode_ends", "episodes", "reward")}
    )


def test_tasks_per_episode_round_trip_every_writable_format(tmp_path: Path) -> None:
    store = two_task_store()
    assert store.task_counts() == {"reach": 2, "push": 2}
    for fmt, dest in (
        ("lerobot", tmp_path / "lr"),
        ("robomimic", tmp_path / "x.hdf5"),
        ("minari", tmp_path / "m" / "x-v0"),
    ):
        back = read_dataset(write_dataset(store, dest, fmt))
        assert back.episode_tasks().tolist() == ["reach", "push", "push", "reach"], fmt
        assert back.subset("task:push").num_episodes == 2 and back.subset("task:push").task == "push"


def test_lerobot_tasks_are_its_own_task_index(tmp_path: Path) -> None:
    """LeRobot reads a frame's task from its task_index and meta/tasks.parquet: protege writes both."""
    root = write_dataset(two_task_store(), tmp_path / "lr")
    tasks = pq.read_table(root / "meta" / "tasks.parquet")  # a pandas frame indexed by the task string
    assert tasks.schema.pandas_metadata["index_columns"] == ["__index_level_0__"]
    assert dict(zip(tasks.column("__index_level_0__").to_pylist(), tasks.column("task_index").to_pylist())) == {
        "reach": 0,
        "push": 1,
    }
    frames = pq.read_table(root / "data" / "chunk-000" / "file-000.parquet")
    episodes = pq.read_table(root / EPISODES)
    assert episodes.column("tasks").to_pylist() == [["reach"], ["push"], ["push"], ["reach"]]
    per_frame = np.repeat([0, 1, 1, 0], two_task_store().episode_lengths)
    np.testing.assert_array_equal(frames.column("task_index").to_numpy(), per_frame)


def test_an_episode_that_changes_task_is_refused(tmp_path: Path) -> None:
    root = write_dataset(two_task_store(), tmp_path / "lr")
    path = root / "data" / "chunk-000" / "file-000.parquet"
    table = pq.read_table(path)
    task_index = table.column("task_index").to_numpy().copy()
    task_index[3] = 1
    pq.write_table(
        table.set_column(table.schema.get_field_index("task_index"), "task_index", pa.array(task_index)), path
    )
    with pytest.raises(DatasetError, match="episode 0 changes task_index from 0 to 1 at frame row 3"):
        read_dataset(root)


def test_a_single_task_is_a_subset_too() -> None:
    """Scripts that always pass --subset task:<name> work on one-task datasets as well."""
    assert two_episode_store().subset("task:toy/fork").num_episodes == 2


def test_inspect_lists_tasks_and_train_takes_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_dataset(two_task_store(), tmp_path / "lr")
    main(["inspect", str(root)])
    assert "tasks     2: 'reach' (2 episodes), 'push' (2 episodes)" in capsys.readouterr().out
    args = ["train", str(root), "--val-fraction", "0", "--eval-every", "0", "--no-progress"]
    with pytest.raises(SystemExit, match=r"holds 2 tasks .*--subset task:<task>"):
        main([*args, "--out", str(tmp_path / "both"), "policy:knn"])
    main([*args, "--subset", "task:push", "--out", str(tmp_path / "push"), "policy:knn"])
    assert len(load_policy(tmp_path / "push").memory_keys) == two_task_store().episode_lengths[[1, 2]].sum()


# --------------------------------------------------------------------------------------- cameras


def test_inspect_lists_cameras_without_decoding_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = two_episode_store()
    store.obs["observation.images.top"] = np.zeros((30, 8, 8, 3), np.uint8)
    for video, dtype in ((True, "video"), (False, "image")):
        root = write_dataset(store, tmp_path / dtype, video=video)
        main(["inspect", str(root)])
        assert f"observation.images.top  (8, 8, 3)  {dtype} (not read)" in capsys.readouterr().out


def test_import_of_a_lerobot_video_copies_the_stream(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """LeRobot to LeRobot, the AV1 stream is copied byte for byte: no second generation of loss."""
    pytest.importorskip("av")
    fixture = Path(__file__).parent / "fixtures" / "lerobot" / "video-v3"
    main(["import", str(fixture), str(tmp_path / "copy"), "--no-progress"])
    assert "copied video stream(s) ['observation.images.front']" in capsys.readouterr().out
    mp4 = Path("videos/observation.images.front/chunk-000/file-000.mp4")
    assert (tmp_path / "copy" / mp4).read_bytes() == (fixture / mp4).read_bytes()
    source, copy = read_dataset(fixture), read_dataset(tmp_path / "copy")
    np.testing.assert_array_equal(copy.obs["observation.images.front"], source.obs["observation.images.front"])
    np.testing.assert_array_equal(copy.obs[STATE], source.obs[STATE])
    main(["import", str(fixture), str(tmp_path / "renamed"), "--no-progress",
          "--keys", "observation.images.top=observation.images.front"])  # fmt: skip
    assert "copied video" not in capsys.readouterr().out  # a renamed camera is decoded and encoded
    assert read_dataset(tmp_path / "renamed").obs["observation.images.top"].shape == (150, 48, 64, 3)
