"""Damaged files read as one clear error or as the original data, never as different data.

Property-based fuzzing (hypothesis) damages random bytes of every file protege writes — LeRobot
parquet and JSON, robomimic and Minari HDF5, safetensors checkpoints — and reads them back. The
default run tries a few dozen damages per file kind; ``PROTEGE_FUZZ_EXAMPLES=2000 pytest
tests/test_corruption.py`` fuzzes longer. Files written by other tools without checksums
(diffusion_policy's zarr chunks, LeRobot's own parquet) cannot be told apart from valid data after
damage to their numbers; for those the named, checkable faults are tested instead.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from store_checks import assert_stores_equal, two_episode_store

from protege.data.store import DatasetError, EpisodeStore
from protege.formats import detect_format, read_dataset, write_dataset
from protege.policies import FeatureSpec, make_policy
from protege.policies.mlp import MLPConfig
from protege.policies.storage import CheckpointError, load_policy, resolve_checkpoint, save_policy

EXAMPLES = int(os.environ.get("PROTEGE_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
    derandomize="PROTEGE_FUZZ_EXAMPLES" not in os.environ,  # CI: the same cases every run; fuzzing: new ones
)
#: One damage: (position as a fraction of the file, the byte it is XORed with, how many bytes from there).
DAMAGE = st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255), st.integers(1, 4))


def damage(path: Path, where: float, xor: int, length: int) -> bytes:
    """XOR ``length`` bytes of ``path`` from ``where``; returns the original content."""
    raw = path.read_bytes()
    start = int(where * len(raw))
    bad = bytearray(raw)
    for i in range(start, min(start + length, len(raw))):
        bad[i] ^= xor
    path.write_bytes(bytes(bad))
    return raw


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, EpisodeStore]]:
    """A protege-written dataset per format, and what it reads back as undamaged."""
    root = tmp_path_factory.mktemp("written")
    out = {}
    for fmt, name in (("lerobot", "ds"), ("robomimic", "ds.hdf5"), ("minari", "ds-v0")):
        path = write_dataset(two_episode_store(30), root / name, fmt)
        out[fmt] = (path, read_dataset(path, fmt))
    return out


def files_of(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def assert_error_or_same(path: Path, fmt: str, reference: EpisodeStore) -> None:
    try:
        store = read_dataset(path, fmt)
    except DatasetError:
        return
    assert_stores_equal(store, reference)


@pytest.mark.parametrize("fmt", ["lerobot", "robomimic", "minari"])
@FUZZ
@given(file_choice=st.integers(0, 100), hit=DAMAGE)
def test_damaged_dataset_is_an_error_or_the_original(
    written: dict, tmp_path: Path, fmt: str, file_choice: int, hit: tuple
) -> None:
    source, reference = written[fmt]
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / source.name  # one fresh copy per example
    if source.is_dir():
        shutil.copytree(source, path)
    else:
        shutil.copy(source, path)
    files = [f for f in files_of(path) if f.name != "stats.json"]  # stats.json: written for LeRobot, never read
    damage(files[file_choice % len(files)], *hit)
    assert_error_or_same(path, fmt, reference)


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files written by other tools without checksums: diffusion_policy's zarr (by zarr) and a
    dataset LeRobot itself wrote."""
    root = tmp_path_factory.mktemp("foreign")
    return {"zarr": replay_buffer(root / "buffer.zarr"), "lerobot": FIXTURES / "lerobot" / "image-reward-v3"}


@pytest.mark.filterwarnings("ignore:.*are not read")  # the fixture's PNG image feature
@pytest.mark.parametrize("source", ["zarr", "lerobot"])
@FUZZ
@given(file_choice=st.integers(0, 100), hit=DAMAGE)
def test_damaged_foreign_files_never_crash_or_hang(
    foreign: dict, tmp_path: Path, source: str, file_choice: int, hit: tuple
) -> None:
    """Without checksums a damaged number can read as another, but a reader still answers at
    once, with a DatasetError or a store of the right layout, never another exception."""
    reference = read_dataset(foreign[source])
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / foreign[source].name
    shutil.copytree(foreign[source], path)
    files = files_of(path)
    damage(files[file_choice % len(files)], *hit)
    try:
        store = read_dataset(path)
    except DatasetError:
        return
    assert store.action.shape == reference.action.shape and sorted(store.obs) == sorted(reference.obs)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = two_episode_store(30)
    policy = make_policy(MLPConfig(hidden_dim=16), FeatureSpec.from_store(store))
    policy.fit(store)
    return save_policy(policy, tmp_path_factory.mktemp("policy") / "mlp", task="toy/fork")


@FUZZ
@given(hit=DAMAGE)
def test_damaged_weights_are_an_error_or_the_original(checkpoint: Path, tmp_path: Path, hit: tuple) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "mlp"
    shutil.copytree(checkpoint, folder)
    damage(folder / "model.safetensors", *hit)
    reference = load_policy(checkpoint).state_dict()
    try:
        loaded = load_policy(folder).state_dict()
    except CheckpointError as error:
        assert "model.safetensors" in str(error)
        return
    assert all(torch.equal(loaded[k], v) for k, v in reference.items())


# ------------------------------------------------------------------------- named dataset faults


def rewrite(path: Path, change) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def column(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, pa.array(values))


EPISODES = "meta/episodes/chunk-000/file-000.parquet"
DATA = "data/chunk-000/file-000.parquet"


def moved_boundary(root: Path) -> None:
    """Episode 0 ends 3 frames later in the ranges and in episode_index alike; frame_index disagrees."""
    episodes = pq.read_table(root / EPISODES)
    to, frm = episodes.column("dataset_to_index").to_numpy().copy(), episodes.column("dataset_from_index").to_numpy()
    frm = frm.copy()
    to[0], frm[1] = to[0] + 3, frm[1] + 3
    pq.write_table(column(column(episodes, "dataset_to_index", to), "dataset_from_index", frm), root / EPISODES)

    def move(table: pa.Table) -> pa.Table:
        ids = table.column("episode_index").to_numpy().copy()
        ids[12:15] = 0
        return column(table, "episode_index", ids)

    rewrite(root / DATA, move)


def duplicate_index(root: Path) -> None:
    def change(table: pa.Table) -> pa.Table:
        index = table.column("index").to_numpy().copy()
        index[5] = index[4]
        return column(table, "index", index)

    rewrite(root / DATA, change)


def info(change):
    def apply(root: Path) -> None:
        content = json.loads((root / "meta/info.json").read_text())
        change(content)
        (root / "meta/info.json").write_text(json.dumps(content))

    return apply


LEROBOT_FAULTS = {
    "success as strings": (
        lambda r: rewrite(r / EPISODES, lambda t: column(t, "success", ["False", "yes"])),
        "episode column 'success' must be true/false (or 0/1); episode 0 has 'False'",
    ),
    "success of 2": (
        lambda r: rewrite(r / EPISODES, lambda t: column(t, "success", [2, 0])),
        "episode 0 has 2",
    ),
    "seed of 3.7": (
        lambda r: rewrite(r / EPISODES, lambda t: column(t, "seed", [3.7, 4.0])),
        "episode column 'seed' must be a whole number; episode 0 has 3.7",
    ),
    "duplicate index": (duplicate_index, "index 4 appears twice"),
    "moved boundary": (moved_boundary, "frame 12 is frame 12 of episode 0 by the episode ranges"),
    "fps against timestamps": (info(lambda i: i.update(fps=20)), "not 1/fps = 0.05 s (meta/info.json fps 20)"),
    "unknown dtype": (
        info(lambda i: i["features"]["observation.state"].update(dtype="float33")),
        "feature 'observation.state' has dtype 'float33'",
    ),
    "renamed feature": (
        info(lambda i: i["features"].update({"next.rewrd": i["features"].pop("next.reward")})),
        "data column(s) ['next.reward'] are not features of meta/info.json",
    ),
}


@pytest.mark.parametrize("fault", sorted(LEROBOT_FAULTS))
def test_lerobot_fault_is_named(written: dict, tmp_path: Path, fault: str) -> None:
    root = shutil.copytree(written["lerobot"][0], tmp_path / "ds")
    change, message = LEROBOT_FAULTS[fault]
    change(root)
    with pytest.raises(DatasetError, match=str(root).replace(".", r"\.")) as error:
        read_dataset(root)
    assert message in str(error.value)


def test_robomimic_success_attribute_must_be_a_boolean(written: dict, tmp_path: Path) -> None:
    import h5py

    path = Path(shutil.copy(written["robomimic"][0], tmp_path / "x.hdf5"))
    with h5py.File(path, "r+") as file:
        file["data/demo_1"].attrs["success"] = "yes"
    with pytest.raises(DatasetError, match="demo attribute 'success' must be true/false .*; demo_1 has 'yes'"):
        read_dataset(path)


def test_minari_episode_beyond_total_episodes_is_refused(written: dict, tmp_path: Path) -> None:
    import h5py

    folder = shutil.copytree(written["minari"][0], tmp_path / "ds-v0")
    with h5py.File(folder / "data" / "main_data.hdf5", "r+") as file:
        file.copy("episode_0", "episode_2")
    with pytest.raises(DatasetError, match="holds 3 episode groups but metadata.json announces total_episodes=2"):
        read_dataset(folder)


def replay_buffer(root: Path) -> Path:
    group = zarr.open_group(str(root), mode="w", zarr_format=2)
    group.create_array("data/action", data=np.ones((40, 2), np.float32), chunks=(10, 2))
    group.create_array("data/state", data=np.ones((40, 5), np.float32), chunks=(10, 5))
    group.create_array("meta/episode_ends", data=np.array([20, 40]), chunks=(2,))
    return root


def test_zarr_missing_chunk_is_not_read_as_zeros(tmp_path: Path) -> None:
    root = replay_buffer(tmp_path / "buffer.zarr")
    assert read_dataset(root).action.min() == 1
    (root / "data" / "state" / "1.0").unlink()
    with pytest.raises(DatasetError, match="'data/state' has 3 of its 4 chunk files"):
        read_dataset(root)


def test_zarr3_chunks_left_out_as_all_fill_are_read_with_a_warning(tmp_path: Path) -> None:
    """Chunks zarr 3 left out as all fill value: for its format a missing chunk is said, not refused."""
    group = zarr.open_group(str(tmp_path / "b.zarr"), mode="w", zarr_format=3)
    group.create_array("data/action", data=np.ones((40, 2), np.float32), chunks=(10, 2))
    group.create_array("data/state", data=np.zeros((40, 5), np.float32), chunks=(10, 5))  # every chunk all fill
    group.create_array("meta/episode_ends", data=np.array([20, 40]), chunks=(2,))
    with pytest.warns(UserWarning, match="'data/state' has 0 of its 4 chunk files"):
        store = read_dataset(tmp_path / "b.zarr", "zarr")
    assert (store.obs["observation.state"] == 0).all()


def test_long_episodes_keep_their_float32_timestamps(tmp_path: Path) -> None:
    """Past ~1000 s one float32 step exceeds LeRobot's 1e-4 s tolerance; an hour at 30 fps still reads."""
    frames = 30 * 3600
    store = EpisodeStore(
        obs={"observation.state": np.zeros((frames, 1), np.float32)},
        action=np.zeros((frames, 1), np.float32),
        episode_ends=np.array([frames]),
        fps=30,
    )
    assert read_dataset(write_dataset(store, tmp_path / "long")).num_frames == frames


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("x.hdf5", b"\x89HDF\r\n\x1a\n" + b"\0" * 40, "starts like an HDF5 file"),
        ("x.zarr.zip", b"PK\x03\x04" + b"\0" * 40, "starts like a zip file"),
    ],
)
def test_truncated_container_says_so(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DatasetError, match=f"{words}.*truncated or corrupt"):
        detect_format(tmp_path / name)


def test_fifo_and_devices_answer_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would block forever
    for path in (tmp_path / "fifo", Path("/dev/zero")):
        with pytest.raises(DatasetError, match="not a dataset folder or a regular file"):
            read_dataset(path)


# ----------------------------------------------------------------------- named checkpoint faults


def rewrite_weights(folder: Path, change) -> None:
    save_file(change(load_file(folder / "model.safetensors")), folder / "model.safetensors")


@pytest.mark.parametrize(
    "fault, change, message",
    [
        ("int32", lambda w: {k: v.to(torch.int32) for k, v in w.items()}, "is stored as torch.int32"),
        ("nan", lambda w: {k: v * float("nan") if v.is_floating_point() else v for k, v in w.items()}, "NaN/inf"),
        ("missing key", lambda w: dict(list(w.items())[1:]), "does not fit the policy its config.json describes"),
    ],
)
def test_weights_that_do_not_fit_are_refused(checkpoint: Path, tmp_path: Path, fault, change, message) -> None:
    folder = shutil.copytree(checkpoint, tmp_path / fault.replace(" ", "-"))
    rewrite_weights(folder, change)
    with pytest.raises(CheckpointError, match=message) as error:
        load_policy(folder)
    assert "model.safetensors" in str(error.value)


@pytest.mark.parametrize("entry", ['{"step": 1, "dir": "../../elsewhere"}', '{"step": 1}', '{"step": 1, "dir": '])
def test_latest_json_cannot_lead_out_of_the_run(checkpoint: Path, tmp_path: Path, entry: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(checkpoint, run / "checkpoints" / "step-0000001")
    shutil.copytree(checkpoint, tmp_path / "elsewhere")
    (run / "checkpoints" / "latest.json").write_text(entry)
    with pytest.raises(CheckpointError, match="latest.json"):
        resolve_checkpoint(run)
