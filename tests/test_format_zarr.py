"""diffusion_policy zarr replay buffers: zarr-2 folders and zip files laid out as its ReplayBuffer
saves them load with the documented key mapping, arrays not asked for are never opened, and every
malformed buffer fails with one DatasetError naming the file, the array and the episode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")

from protege.data.store import DatasetError  # noqa: E402
from protege.formats.zarr_replay import looks_like_zarr_replay, read_zarr_replay  # noqa: E402

LENGTHS = [7, 5, 9, 4]
#: ReplayBuffer.resolve_compressor('default') and ('disk').
DEFAULT_BLOSC = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE)
DISK_BLOSC = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)


def pusht_arrays(lengths: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    """PushT's replay buffer keys and dtypes (pusht_cchi_v7_replay.zarr), synthetic values."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    return {
        "img": rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8),
        "state": rng.uniform(0, 512, (n, 5)).astype(np.float32),
        "keypoint": rng.uniform(0, 512, (n, 9, 2)).astype(np.float32),
        "n_contacts": rng.integers(0, 3, (n, 1)).astype(np.float32),
        "action": rng.uniform(0, 512, (n, 2)).astype(np.float32),
    }


def save_replay_buffer(
    store, arrays: dict[str, np.ndarray], episode_ends: np.ndarray, compressor=DEFAULT_BLOSC
) -> None:
    """What ReplayBuffer.save_to_store does with zarr 2: meta arrays unchunked, data arrays chunked
    along time only, Blosc-compressed, every array in zarr format 2."""
    root = zarr.open_group(store=store, mode="w", zarr_format=2)
    meta = root.create_group("meta")
    meta.create_array("episode_ends", data=np.asarray(episode_ends, dtype=np.int64), chunks=np.shape(episode_ends))
    data = root.create_group("data")
    for key, value in arrays.items():
        chunk_length = 4 if value.ndim == 4 else 10  # several chunks, the last one partial
        array = data.create_array(
            key, shape=value.shape, dtype=value.dtype, chunks=(chunk_length, *value.shape[1:]), compressors=compressor
        )
        array[:] = value


def save_zip(path: Path, arrays: dict[str, np.ndarray], episode_ends: np.ndarray) -> None:
    """diffusion_policy's cached ``.zarr.zip``: ``save_to_store(zarr.ZipStore(path))``."""
    with zarr.storage.ZipStore(path, mode="w") as store:
        save_replay_buffer(store, arrays, episode_ends, DISK_BLOSC)


@pytest.fixture
def pusht(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path / "pusht_cchi_v7_replay.zarr"
    arrays = pusht_arrays(LENGTHS)
    save_replay_buffer(str(path), arrays, np.cumsum(LENGTHS))
    return path, arrays


def assert_bit_equal(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    assert actual.dtype == expected.dtype, what
    assert actual.shape == expected.shape, what
    assert actual.tobytes() == expected.tobytes(), what


def assert_pusht_store(store, arrays: dict[str, np.ndarray], task: str) -> None:
    n = sum(LENGTHS)
    assert list(store.obs) == [
        "observation.images.img",
        "observation.keypoint",
        "observation.n_contacts",
        "observation.state",
    ]
    assert_bit_equal(store.obs["observation.images.img"], arrays["img"])
    assert_bit_equal(store.obs["observation.state"], arrays["state"])
    assert_bit_equal(store.obs["observation.keypoint"], arrays["keypoint"].reshape(n, 18))
    assert (
        store.obs["observation.keypoint"][:, 2 * 4 + 1].tolist() == arrays["keypoint"][:, 4, 1].tolist()
    )  # keypoint 4's y
    assert_bit_equal(store.action, arrays["action"])
    assert store.episode_lengths.tolist() == LENGTHS
    assert store.task == task and store.fps == 10 and store.reward is None and store.subsets == {}
    assert store.episodes["success"].tolist() == [False] * 4 and store.episodes["source"].tolist() == ["unknown"] * 4


# --------------------------------------------------------------------------- diffusion_policy files


def test_reads_a_zarr2_folder(pusht: tuple[Path, dict]) -> None:
    path, arrays = pusht
    assert (path / "data" / "img" / ".zarray").is_file() and (path / "data" / "img" / "6.0.0.0").is_file()
    assert json.loads((path / "data" / "state" / ".zarray").read_text())["compressor"]["cname"] == "lz4"
    assert_pusht_store(read_zarr_replay(path, progress=True), arrays, "pusht_cchi_v7_replay")


def test_reads_a_zip_store(tmp_path: Path) -> None:
    arrays = pusht_arrays(LENGTHS, seed=1)
    path = tmp_path / "replay_buffer.zarr.zip"
    save_zip(path, arrays, np.cumsum(LENGTHS))
    assert looks_like_zarr_replay(path)
    assert_pusht_store(read_zarr_replay(path), arrays, "replay_buffer")


def write_zarr2_by_hand(path: Path, arrays: dict[str, np.ndarray], chunk_length: int) -> None:
    """Files byte for byte as zarr 2.x writes them, without zarr: sorted JSON with indent 4, no
    .zattrs, '.'-separated chunk keys, edge chunks padded to the full chunk shape."""

    def dump(file: Path, content: dict) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(content, indent=4, sort_keys=True, ensure_ascii=True, separators=(",", ": ")))

    dump(path / ".zgroup", {"zarr_format": 2})
    for group in ("data", "meta"):
        dump(path / group / ".zgroup", {"zarr_format": 2})
    for name, value in arrays.items():
        chunks = (chunk_length, *value.shape[1:])
        dump(
            path / name / ".zarray",
            {
                "chunks": list(chunks),
                "compressor": DEFAULT_BLOSC.get_config(),
                "dtype": value.dtype.str,
                "fill_value": 0,
                "filters": None,
                "order": "C",
                "shape": list(value.shape),
                "zarr_format": 2,
            },
        )
        for index, start in enumerate(range(0, len(value), chunk_length)):
            chunk = np.zeros(chunks, value.dtype)
            part = value[start : start + chunk_length]
            chunk[: len(part)] = part
            key = ".".join([str(index)] + ["0"] * (value.ndim - 1))
            (path / name / key).write_bytes(DEFAULT_BLOSC.encode(chunk.tobytes()))


def test_reads_zarr2_files_not_written_by_zarr3(tmp_path: Path) -> None:
    arrays = pusht_arrays(LENGTHS, seed=2)
    path = tmp_path / "by_hand.zarr"
    write_zarr2_by_hand(
        path, {f"data/{k}": v for k, v in arrays.items()} | {"meta/episode_ends": np.cumsum(LENGTHS)}, 6
    )
    assert not list(path.rglob(".zattrs"))
    assert_pusht_store(read_zarr_replay(path), arrays, "by_hand")


def test_looks_like(pusht: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = pusht
    assert looks_like_zarr_replay(path)
    (tmp_path / "notes.zip").write_bytes(b"PK not really")
    (tmp_path / "other").mkdir()
    assert not any(
        looks_like_zarr_replay(p)
        for p in [path / "data", tmp_path / "notes.zip", tmp_path / "other", tmp_path / "absent"]
    )


# -------------------------------------------------------------------------------------- laziness


def test_image_chunks_not_asked_for_are_never_read(pusht: tuple[Path, dict]) -> None:
    path, arrays = pusht
    for chunk in (path / "data" / "img").glob("[0-9]*"):
        chunk.write_bytes(b"not blosc" * 10)
    state_only = read_zarr_replay(path, obs_keys=["observation.state"])
    assert list(state_only.obs) == ["observation.state"]
    assert_bit_equal(state_only.obs["observation.state"], arrays["state"])
    assert "observation.images.img" not in read_zarr_replay(path, images=False).obs
    with pytest.raises(
        DatasetError,
        match=r"pusht_cchi_v7_replay\.zarr: cannot read 'data/img' rows 0\.\.\d+, a chunk may be truncated",
    ):
        read_zarr_replay(path)


def test_arrays_not_asked_for_are_never_opened(pusht: tuple[Path, dict]) -> None:
    """diffusion_policy's image caches use imagecodecs' Jpeg2k, unknown without its registration."""
    path, _ = pusht
    meta = path / "data" / "img" / ".zarray"
    meta.write_text(
        json.dumps(json.loads(meta.read_text()) | {"compressor": {"id": "imagecodecs_jpeg2k", "level": 50}})
    )
    assert list(read_zarr_replay(path, obs_keys=["observation.keypoint", "observation.state"]).obs) == [
        "observation.keypoint",
        "observation.state",
    ]
    with pytest.raises(
        DatasetError,
        match=r"'data/img' is compressed with a codec .*imagecodecs_jpeg2k.*leave the key out with obs_keys",
    ):
        read_zarr_replay(path)


def test_unknown_obs_key_names_the_file_and_its_keys(pusht: tuple[Path, dict]) -> None:
    path, _ = pusht
    for key in ["observation.images.state", "observation.img", "action", "observation.velocity"]:
        with pytest.raises(
            DatasetError,
            match=rf"replay\.zarr: no observation key '{key}'; its keys: observation\.images\.img, "
            r"observation\.keypoint, observation\.n_contacts, observation\.state",
        ):
            read_zarr_replay(path, obs_keys=[key])


# ---------------------------------------------------------------------------------------- properties


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=8),
    shapes=st.dictionaries(
        st.sampled_from(["state", "keypoint", "camera", "depth_image", "flag", "pos"]),
        st.lists(st.integers(1, 4), min_size=0, max_size=3),
        min_size=1,
        max_size=4,
    ),
    action_shape=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    zip_file=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_reads_any_layout_with_the_documented_mapping(
    tmp_path: Path, lengths: list[int], shapes: dict[str, list[int]], action_shape: list[int], zip_file: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    arrays = {"action": rng.normal(size=(n, *action_shape)).astype(np.float64)}
    for name, shape in shapes.items():
        uint8 = name == "camera" or len(shape) != 3
        arrays[name] = (
            rng.integers(0, 256, (n, *shape), dtype=np.uint8)
            if uint8 and name != "state"
            else rng.normal(size=(n, *shape)).astype(np.float32)
        )
    path = tmp_path / f"buffer-{seed}.zarr{'.zip' if zip_file else ''}"
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if zip_file:
        save_zip(path, arrays, np.cumsum(lengths))
    else:
        save_replay_buffer(str(path), arrays, np.cumsum(lengths))
    store = read_zarr_replay(path)

    def expected_key(name: str) -> str:
        value = arrays[name]
        image = value.ndim == 4 and (value.dtype == np.uint8 or "image" in name)
        return "observation.state" if name == "state" else f"observation.{'images.' if image else ''}{name}"

    expected = {expected_key(name): arrays[name] for name in sorted(shapes)}
    assert list(store.obs) == list(expected)
    for key, value in expected.items():
        stored = value if key.startswith("observation.images.") else value.reshape(n, -1)
        assert_bit_equal(store.obs[key], stored.astype(np.uint8 if value.dtype == np.uint8 else np.float32), key)
    assert_bit_equal(store.action, arrays["action"].reshape(n, -1).astype(np.float32))
    assert store.episode_lengths.tolist() == lengths
    assert store.task == f"buffer-{seed}"


# ----------------------------------------------------------------------------------------- bad input


def rewrite(path: Path, name: str, value: np.ndarray) -> None:
    root = zarr.open_group(str(path), mode="a", zarr_format=2)
    del root[name]
    root.create_array(name, data=value, **({"chunks": value.shape} if value.size and value.ndim else {}))


def replace_with_group(path: Path, name: str) -> None:
    root = zarr.open_group(str(path), mode="a", zarr_format=2)
    del root[name]
    root.create_group(name).create_array("x", shape=(1,), dtype="f4")


def rewrite_json(file: Path, **changes) -> None:
    file.write_text(json.dumps(json.loads(file.read_text()) | changes))


N = sum(LENGTHS)
BAD_BUFFERS = {
    "missing action": (
        lambda p: shutil.rmtree(p / "data" / "action"),
        r"no 'data/action' array; its data arrays: img, keypoint",
    ),
    "missing episode_ends": (lambda p: shutil.rmtree(p / "meta" / "episode_ends"), r"no 'meta/episode_ends' array"),
    "ends not increasing": (
        lambda p: rewrite(p, "meta/episode_ends", np.array([7, 12, 12, N])),
        r"episode 2 ends at 12, where the one before it ends",
    ),
    "ends start at 0": (lambda p: rewrite(p, "meta/episode_ends", np.array([0, 12, N])), r"episode 0 ends at 0"),
    "ends short": (
        lambda p: rewrite(p, "meta/episode_ends", np.array([7, 12, 21])),
        rf"'meta/episode_ends' ends at 21 but 'data/action' has {N} frames",
    ),
    "ends float": (
        lambda p: rewrite(p, "meta/episode_ends", np.array([7.0, 12.0, 21.0, N])),
        r"must be a non-empty 1-D integer array, got float64",
    ),
    "ends empty": (
        lambda p: rewrite(p, "meta/episode_ends", np.zeros(0, np.int64)),
        r"must be a non-empty 1-D integer array",
    ),
    "frames differ": (
        lambda p: rewrite(p, "data/keypoint", np.zeros((N - 1, 9, 2), np.float32)),
        rf"'data/keypoint' has {N - 1} frames but 'data/action' has {N}",
    ),
    "nan": (
        lambda p: rewrite(p, "data/state", np.where(np.arange(N)[:, None] == 13, np.nan, np.ones((N, 5), np.float32))),
        r"'data/state' has NaN/inf values .*\(first in episode 2, frame row 13\)",
    ),
    "inf action": (
        lambda p: rewrite(p, "data/action", np.where(np.arange(N)[:, None] == 3, np.inf, np.ones((N, 2)))),
        r"'data/action' has NaN/inf values .*\(first in episode 0, frame row 3\)",
    ),
    "float32 overflow": (
        lambda p: rewrite(p, "data/n_contacts", np.full((N, 1), 1e300)),
        r"'data/n_contacts' has NaN/inf values or values beyond float32",
    ),
    "strings": (
        lambda p: rewrite(p, "data/n_contacts", np.array(["a"] * N)),
        r"'data/n_contacts' has dtype <U1; protege reads only numeric",
    ),
    "pickled objects": (
        lambda p: rewrite_json(p / "data" / "state" / ".zarray", dtype="|O", filters=[{"id": "pickle", "protocol": 5}]),
        r"cannot open 'data/state', zarr cannot parse its metadata .*'\|O', 'object_codec_id': 'pickle'",
    ),
    "vlen strings": (
        lambda p: rewrite(
            p, "data/state", np.array(["ab", "c"] * (N // 2) + ["d"], dtype=object).astype(str).astype("T")
        ),
        r"'data/state' has dtype StringDType\(\)",
    ),
    "corrupt metadata": (
        lambda p: (p / "data" / "keypoint" / ".zarray").write_text("{not json"),
        r"cannot open 'data/keypoint'.*JSONDecodeError",
    ),
    "group not array": (lambda p: replace_with_group(p, "data/state"), r"'data/state' is a group; expected an array"),
    "scalar": (lambda p: rewrite(p, "data/n_contacts", np.array(1.0)), r"'data/n_contacts' is a scalar"),
}


@pytest.mark.parametrize("case", list(BAD_BUFFERS))
def test_bad_buffers_fail_with_one_clear_error(pusht: tuple[Path, dict], case: str) -> None:
    path, _ = pusht
    change, message = BAD_BUFFERS[case]
    change(path)
    with pytest.raises(DatasetError, match=message) as error:
        read_zarr_replay(path)
    assert str(path) in str(error.value)


def test_missing_truncated_and_foreign_files(tmp_path: Path) -> None:
    zipped = tmp_path / "buffer.zarr.zip"
    save_zip(zipped, pusht_arrays(LENGTHS), np.cumsum(LENGTHS))
    truncated = tmp_path / "truncated.zarr.zip"
    truncated.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"truncated\.zarr\.zip: not a zarr folder or a readable zip file"):
        read_zarr_replay(truncated)
    with pytest.raises(DatasetError, match=r"absent\.zarr: no such zarr replay buffer"):
        read_zarr_replay(tmp_path / "absent.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(DatasetError, match=r"empty\.zarr: no 'data/action' array; its data arrays: none"):
        read_zarr_replay(tmp_path / "empty.zarr")
