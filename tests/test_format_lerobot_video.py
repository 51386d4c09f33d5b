"""LeRobot video features (v3.0 MP4 files), the v2.1 layout and episode subsets: LeRobot's own video
fixture decodes to the pictures it was made from, our videos round-trip within a measured tolerance,
state-only reads never touch a video, and broken videos or metadata fail naming file, episode and key."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

av = pytest.importorskip("av")

from protege.data.store import DatasetError, EpisodeStore  # noqa: E402
from protege.formats import read_dataset  # noqa: E402
from protege.formats import video as video_module  # noqa: E402
from protege.formats.lerobot import looks_like_lerobot, read_lerobot, write_lerobot  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot"
CAMERA = "observation.images.front"
STATE = "observation.state"
INFO = "meta/info.json"
DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
MP4 = f"videos/{CAMERA}/chunk-000/file-000.mp4"
FIXTURE_LENGTHS = [30, 25, 40, 35, 20]
#: Measured round-trip error of one encode on the fixture's flat-colour pictures (mean absolute
#: error per pixel and channel, 0..255): 0.73 over all frames, 1.44 on the worst frame with our
#: libsvtav1 crf 20; 0.79 / 1.44 for LeRobot's own encode. Bounds with some room:
MEAN_ERROR, WORST_FRAME_ERROR = 1.0, 2.0


def fixture_folder(name: str) -> Path:
    folder = FIXTURES / name
    if not folder.is_dir():
        pytest.fail(f"LeRobot fixture {folder} is missing; it ships in the repo under tests/fixtures/lerobot")
    return folder


@pytest.fixture(scope="module")
def video_fixture() -> Path:
    return fixture_folder("video-v3")


@pytest.fixture(scope="module")
def fixture_store(video_fixture: Path) -> EpisodeStore:
    return read_lerobot(video_fixture)


def slide_pictures(state: np.ndarray, height: int = 48, width: int = 64) -> np.ndarray:
    """The fixture's pictures from its state [episode, frame, x, 1]: red = (episode * 40) mod 256,
    a green block 8 rows x 6 columns at rows 20-27 whose left column is x."""
    episode, x = state[:, 0].astype(np.int64), state[:, 2].astype(np.int64)
    pictures = np.zeros((len(state), height, width, 3), np.uint8)
    pictures[..., 0] = ((episode * 40) % 256)[:, None, None].astype(np.uint8)
    columns = np.arange(width)
    block = (columns >= x[:, None]) & (columns < x[:, None] + 6)  # (N, W)
    pictures[:, 20:28, :, 1] = np.where(block[:, None, :], 255, 0)
    return pictures


def block_columns(pictures: np.ndarray) -> np.ndarray:
    """Left column of the green block in each picture."""
    return (pictures[:, 20:28, :, 1].mean(axis=1) > 127).argmax(axis=1)


def assert_video_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == np.uint8 and actual.shape == expected.shape
    per_frame = np.abs(actual.astype(np.int16) - expected.astype(np.int16)).reshape(len(expected), -1).mean(axis=1)
    assert per_frame.mean() <= MEAN_ERROR, f"mean absolute error {per_frame.mean():.3f}"
    assert per_frame.max() <= WORST_FRAME_ERROR, f"worst frame {per_frame.argmax()}: {per_frame.max():.3f}"
    assert np.abs(block_columns(actual) - block_columns(expected)).max() <= 1


def assert_bit_equal(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    if expected.dtype == object:
        assert actual.tolist() == expected.tolist(), what
    else:
        assert actual.tobytes() == expected.tobytes(), what


def assert_same_except_pictures(actual: EpisodeStore, expected: EpisodeStore) -> None:
    """Every numeric array bit-exact, per-episode columns, subsets, fps and task equal."""
    assert list(actual.obs) == list(expected.obs)
    for key, values in expected.obs.items():
        if key != CAMERA:
            assert_bit_equal(actual.obs[key], values, key)
    assert_bit_equal(actual.action, expected.action, "action")
    assert_bit_equal(actual.episode_ends, expected.episode_ends, "episode_ends")
    assert sorted(actual.episodes) == sorted(expected.episodes)
    for name, values in expected.episodes.items():
        assert_bit_equal(actual.episodes[name], values, name)
    assert (actual.reward is None) == (expected.reward is None)
    if expected.reward is not None:
        assert_bit_equal(actual.reward, expected.reward, "reward")
    assert {k: v.tolist() for k, v in actual.subsets.items()} == {k: v.tolist() for k, v in expected.subsets.items()}
    assert (actual.fps, actual.task) == (expected.fps, expected.task)


def camera_store(lengths: tuple[int, ...] = (30, 25, 40), seed: int = 0, fps: int = 10) -> EpisodeStore:
    """A store like the fixture (sliding green block), with protege's per-episode columns and a reward."""
    rng = np.random.default_rng(seed)
    n, e = sum(lengths), len(lengths)
    starts = np.repeat(np.cumsum([0, *lengths[:-1]]), lengths)
    x = 4 + np.abs(np.cumsum(rng.integers(-1, 3, n))) % 50
    state = np.stack([np.repeat(np.arange(e), lengths), np.arange(n) - starts, x, np.ones(n)], axis=1).astype(
        np.float32
    )
    return EpisodeStore(
        obs={STATE: state, CAMERA: slide_pictures(state)},
        action=rng.standard_normal((n, 2)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={
            "success": np.arange(e) % 2 == 0,
            "return": rng.standard_normal(e),
            "source": np.array(["expert", "noisy", "expert"][:e], dtype=object),
            "seed": np.arange(e, dtype=np.int64) + 7,
        },
        reward=rng.standard_normal(n).astype(np.float32),
        fps=fps,
        task="slide the block",
        subsets={"better": list(range(0, e, 2))},
    )


# ------------------------------------------------------------------------------ LeRobot's own files


def test_video_fixture_loads_with_the_pictures_it_was_made_from(
    video_fixture: Path, fixture_store: EpisodeStore
) -> None:
    store = fixture_store
    assert list(store.obs) == [STATE, CAMERA]
    assert store.episode_lengths.tolist() == FIXTURE_LENGTHS
    assert (store.fps, store.task) == (10, "slide")
    assert store.obs[CAMERA].shape == (150, 48, 64, 3) and store.obs[CAMERA].dtype == np.uint8
    table = pq.read_table(video_fixture / DATA)
    np.testing.assert_array_equal(store.obs[STATE], np.array(table.column(STATE).to_pylist(), np.float32))
    np.testing.assert_array_equal(store.action, np.array(table.column("action").to_pylist(), np.float32))
    state = store.obs[STATE]
    np.testing.assert_array_equal(state[:, 0], np.repeat(np.arange(5), FIXTURE_LENGTHS))
    assert_video_close(store.obs[CAMERA], slide_pictures(state))
    np.testing.assert_array_equal(block_columns(store.obs[CAMERA]), state[:, 2])
    red = store.obs[CAMERA][:, :8, :8, 0].mean(axis=(1, 2))
    np.testing.assert_allclose(red, (state[:, 0] * 40) % 256, atol=3)
    assert {name: ids.tolist() for name, ids in store.subsets.items()} == {"train": [0, 1, 2, 3, 4]}


def test_pusht_fixture_still_loads_with_lerobots_train_split() -> None:
    store = read_lerobot(fixture_folder("pusht-like-v3"))
    assert (store.num_episodes, store.num_frames) == (50, 5000)
    assert store.subsets["train"].tolist() == list(range(50))


def test_state_only_reads_never_open_a_video(video_fixture: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(video_fixture, tmp_path / "ds"))
    shutil.rmtree(root / "videos")
    for store in (read_lerobot(root, images=False), read_lerobot(root, obs_keys=[STATE])):
        assert list(store.obs) == [STATE]
        assert store.episode_lengths.tolist() == FIXTURE_LENGTHS
    with pytest.raises(DatasetError, match=rf"{root / MP4}: episode 0.*'{CAMERA}'"):
        read_lerobot(root)


def test_a_video_only_read_reads_no_state_column(
    fixture_store: EpisodeStore, video_fixture: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(video_fixture, tmp_path / "ds"))
    pq.write_table(pq.read_table(root / DATA).drop_columns([STATE]), root / DATA)
    store = read_lerobot(root, obs_keys=[CAMERA], progress=True)
    assert list(store.obs) == [CAMERA]
    assert_bit_equal(store.obs[CAMERA], fixture_store.obs[CAMERA], CAMERA)


def test_written_video_folder_has_lerobots_layout(
    video_fixture: Path, fixture_store: EpisodeStore, tmp_path: Path
) -> None:
    ours = write_lerobot(fixture_store, tmp_path / "copy")
    info, lerobot_info = (json.loads((root / INFO).read_text()) for root in (ours, video_fixture))
    assert info == lerobot_info
    assert pq.read_schema(ours / DATA).remove_metadata() == pq.read_schema(video_fixture / DATA).remove_metadata()
    hf_features = [
        json.loads(pq.read_schema(root / DATA).metadata[b"huggingface"])["info"]["features"]
        for root in (ours, video_fixture)
    ]
    assert hf_features[0] == hf_features[1]
    lerobot_episodes, our_episodes = pq.read_schema(video_fixture / EPISODES), pq.read_schema(ours / EPISODES)
    for field in lerobot_episodes:
        assert our_episodes.field(field.name).type == field.type, field.name
    for name in ("from_timestamp", "to_timestamp"):
        column = f"videos/{CAMERA}/{name}"
        assert (
            pq.read_table(ours / EPISODES).column(column).to_pylist()
            == pq.read_table(video_fixture / EPISODES).column(column).to_pylist()
        )
    stats, lerobot_stats = (json.loads((root / "meta/stats.json").read_text()) for root in (ours, video_fixture))
    assert np.asarray(stats[CAMERA]["mean"]).shape == np.asarray(lerobot_stats[CAMERA]["mean"]).shape == (3, 1, 1)
    np.testing.assert_allclose(stats[CAMERA]["mean"], lerobot_stats[CAMERA]["mean"], atol=0.01)


def test_written_video_shows_frame_i_at_i_over_fps(tmp_path: Path) -> None:
    store = camera_store((7, 5), fps=30)
    root = write_lerobot(store, tmp_path / "ds")
    with av.open(str(root / MP4)) as container:
        stream = container.streams.video[0]
        shown = [float(frame.pts * stream.time_base) for frame in container.decode(stream)]
    np.testing.assert_allclose(shown, np.arange(12) / 30, atol=1e-6)


# --------------------------------------------------------------------------------------- round trip


def test_video_round_trip_within_tolerance_and_numbers_exact(tmp_path: Path) -> None:
    store = camera_store()
    root = write_lerobot(store, tmp_path / "ds", progress=True)
    assert CAMERA not in pq.read_schema(root / DATA).names
    back = read_dataset(root)
    assert_same_except_pictures(back, store)
    assert_video_close(back.obs[CAMERA], store.obs[CAMERA])


def test_h264_fallback_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video_module, "pick_encoder", lambda: "libx264")
    store = camera_store((12, 9))
    root = write_lerobot(store, tmp_path / "ds")
    assert json.loads((root / INFO).read_text())["features"][CAMERA]["info"]["video.codec"] == "h264"
    assert_video_close(read_lerobot(root).obs[CAMERA], store.obs[CAMERA])


def test_video_false_keeps_pictures_bit_exact_as_lerobot_image_features(tmp_path: Path) -> None:
    """One PNG per frame, declared as LeRobot declares a camera recorded without video (the
    image-reward-v3 fixture): dtype 'image' in info.json, a datasets Image feature in the parquet."""
    store = camera_store((5, 4))
    root = write_lerobot(store, tmp_path / "ds", video=False)
    assert not (root / "videos").exists()
    fixture = json.loads((FIXTURES / "image-reward-v3" / INFO).read_text())["features"]["observation.images.cam"]
    ours = json.loads((root / INFO).read_text())["features"][CAMERA]
    assert {k: ours[k] for k in ("dtype", "names")} == {k: fixture[k] for k in ("dtype", "names")}
    schema = pq.read_schema(root / "data" / "chunk-000" / "file-000.parquet")
    assert json.loads(schema.metadata[b"huggingface"])["info"]["features"][CAMERA] == {"_type": "Image"}
    assert schema.field(CAMERA).type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    back = read_lerobot(root)
    assert_same_except_pictures(back, store)
    assert_bit_equal(back.obs[CAMERA], store.obs[CAMERA], CAMERA)
    assert list(read_lerobot(root, images=False).obs) == [STATE]


@st.composite
def inline_stores(draw: st.DrawFn) -> EpisodeStore:
    lengths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    n, e = sum(lengths), len(lengths)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    obs = {STATE: rng.standard_normal((n, draw(st.integers(1, 5)))).astype(np.float32)}
    if draw(st.booleans()):
        height, width, channels = draw(st.tuples(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3])))
        obs["observation.images.cam"] = rng.integers(0, 256, (n, height, width, channels), dtype=np.uint8)
    subsets = {
        name: np.flatnonzero(rng.random(e) < 0.5)
        for name in draw(st.lists(st.sampled_from(["train", "valid", "better"]), unique=True))
    }
    return EpisodeStore(
        obs=obs,
        action=rng.standard_normal((n, draw(st.integers(1, 3)))).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        fps=draw(st.integers(1, 60)),
        task="t",
        subsets=subsets,
    )


@settings(max_examples=15, deadline=None)
@given(store=inline_stores())
def test_inline_layout_round_trip_is_bit_exact_over_random_shapes(store: EpisodeStore) -> None:
    with tempfile.TemporaryDirectory() as folder:
        back = read_lerobot(write_lerobot(store, Path(folder) / "ds", video=False))
        assert_same_except_pictures(back, store)
        for key, values in store.obs.items():
            assert_bit_equal(back.obs[key], values, key)


# ------------------------------------------------------------------------------------------ subsets


def test_subsets_round_trip_and_contiguous_ones_become_lerobot_splits(tmp_path: Path) -> None:
    store = camera_store((3, 3, 3))
    store.subsets = {
        "train": np.array([0, 1]),
        "val": np.array([2]),
        "better": np.array([0, 2]),
        "none": np.zeros(0, np.int64),
    }
    root = write_lerobot(store, tmp_path / "ds", video=False)
    assert json.loads((root / INFO).read_text())["splits"] == {"train": "0:2", "val": "2:3"}
    assert json.loads((root / "meta/subsets.json").read_text()) == {
        "train": [0, 1],
        "val": [2],
        "better": [0, 2],
        "none": [],
    }
    assert_same_except_pictures(read_lerobot(root), store)
    (root / "meta/subsets.json").unlink()  # as LeRobot would leave it: only the splits remain
    assert {k: v.tolist() for k, v in read_lerobot(root).subsets.items()} == {"train": [0, 1], "val": [2]}


def test_a_store_without_subsets_gets_lerobots_train_split_but_no_subsets(tmp_path: Path) -> None:
    store = camera_store((2, 2))
    store.subsets = {}
    root = write_lerobot(store, tmp_path / "ds", video=False)
    assert json.loads((root / INFO).read_text())["splits"] == {"train": "0:2"}
    assert read_lerobot(root).subsets == {}


# ------------------------------------------------------------------------------------------- v2.1


def encode_h264(path: Path, pictures: np.ndarray, fps: int) -> None:
    """One episode's MP4 as LeRobot v2.1 has them: its own file, times from 0 (H.264, B-frames and all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = pictures.shape[2], pictures.shape[1], "yuv420p"
        for picture in pictures:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode(None))


def write_v21(video_fixture: Path, pictures: np.ndarray, root: Path, chunks_size: int = 2) -> Path:
    """The fixture's content in LeRobot's v2.1 layout: one parquet and one MP4 per episode."""
    data, info = pq.read_table(video_fixture / DATA), json.loads((video_fixture / INFO).read_text())
    info |= {
        "codebase_version": "v2.1",
        "chunks_size": chunks_size,
        "total_chunks": -(-5 // chunks_size),
        "total_videos": 5,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
    }
    (root / "meta").mkdir(parents=True)
    (root / INFO).write_text(json.dumps(info, indent=4))
    lines = {"episodes": [], "tasks": [{"task_index": 0, "task": "slide"}], "episodes_stats": []}
    ends = np.cumsum(FIXTURE_LENGTHS)
    for episode, (start, end) in enumerate(zip(ends - FIXTURE_LENGTHS, ends)):
        chunk = episode // chunks_size
        rows = data.filter(pc.equal(data.column("episode_index"), episode))
        (root / f"data/chunk-{chunk:03d}").mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, root / f"data/chunk-{chunk:03d}/episode_{episode:06d}.parquet")
        encode_h264(root / f"videos/chunk-{chunk:03d}/{CAMERA}/episode_{episode:06d}.mp4", pictures[start:end], 10)
        lines["episodes"].append({"episode_index": episode, "tasks": ["slide"], "length": int(end - start)})
        lines["episodes_stats"].append({"episode_index": episode, "stats": {"action": {"count": [int(end - start)]}}})
    for name, rows in lines.items():
        (root / f"meta/{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


@pytest.fixture(scope="module")
def v21_folder(video_fixture: Path, fixture_store: EpisodeStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_v21(video_fixture, fixture_store.obs[CAMERA], tmp_path_factory.mktemp("v21") / "ds")


def test_v21_folder_reads_like_the_v3_fixture(v21_folder: Path, fixture_store: EpisodeStore) -> None:
    assert looks_like_lerobot(v21_folder)
    store = read_lerobot(v21_folder, progress=True)
    assert_same_except_pictures(store, fixture_store)
    assert_video_close(store.obs[CAMERA], fixture_store.obs[CAMERA])  # one more encode, this one H.264
    assert np.abs(block_columns(store.obs[CAMERA]) - store.obs[STATE][:, 2]).max() <= 1


def test_v21_state_only_read_needs_no_videos(v21_folder: Path, fixture_store: EpisodeStore, tmp_path: Path) -> None:
    root = Path(shutil.copytree(v21_folder, tmp_path / "ds"))
    shutil.rmtree(root / "videos")
    store = read_lerobot(root, images=False)
    assert_bit_equal(store.obs[STATE], fixture_store.obs[STATE], STATE)


# ------------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def valid_video_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lerobot(camera_store((6, 5, 7)), tmp_path_factory.mktemp("valid") / "ds")


def edit_info(root: Path, change: Callable[[dict], None]) -> None:
    info = json.loads((root / INFO).read_text())
    change(info)
    (root / INFO).write_text(json.dumps(info))


def rewrite_episodes(root: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(change(pq.read_table(root / EPISODES)), root / EPISODES)


def truncated_video(root: Path) -> list[str]:
    content = (root / MP4).read_bytes()
    (root / MP4).write_bytes(content[: len(content) // 2])
    return [str(root / MP4), "episode 0", CAMERA, "truncated"]


def missing_video(root: Path) -> list[str]:
    (root / MP4).unlink()
    return [str(root / MP4), "episode 0", CAMERA]


def episode_shorter_in_time_than_in_rows(root: Path) -> list[str]:
    def shorten(table: pa.Table) -> pa.Table:
        name = f"videos/{CAMERA}/to_timestamp"
        ends = table.column(name).to_numpy().copy()
        ends[1] -= 0.2  # two frames fewer than the 5 rows of episode 1
        return table.set_column(table.column_names.index(name), name, pa.array(ends))

    rewrite_episodes(root, shorten)
    return [str(root / MP4), "episode 1", CAMERA, "expected 5 frames", "decoded 3 frames"]


def unsupported_version(root: Path) -> list[str]:
    edit_info(root, lambda info: info.update(codebase_version="v1.6"))
    return [str(root / INFO), "'v1.6'", "v3.0", "v2.1"]


def no_video_path(root: Path) -> list[str]:
    edit_info(root, lambda info: info.update(video_path=None))
    return [str(root / INFO), "'video_path'"]


def no_fps(root: Path) -> list[str]:
    edit_info(root, lambda info: info.pop("fps"))
    return [str(root / INFO), "'fps'"]


def video_columns_missing(root: Path) -> list[str]:
    rewrite_episodes(root, lambda table: table.drop_columns([f"videos/{CAMERA}/from_timestamp"]))
    return [str(root / EPISODES), f"videos/{CAMERA}/from_timestamp"]


def data_column_missing(root: Path) -> list[str]:
    pq.write_table(pq.read_table(root / DATA).drop_columns(["action"]), root / DATA)
    return [str(root / DATA), "'action'"]


def malformed_splits(root: Path) -> list[str]:
    (root / "meta/subsets.json").unlink()
    edit_info(root, lambda info: info.update(splits={"train": "first half"}))
    return [str(root / INFO), "'train'", "'first half'"]


def subset_beyond_the_episodes(root: Path) -> list[str]:
    (root / "meta/subsets.json").write_text(json.dumps({"better": [0, 9]}))
    return ["'better'", "9"]


def assert_corruption_named(corrupt: Callable[[Path], list[str]], valid: Path, tmp_path: Path) -> str:
    """Corrupt a copy (tmp_path/ds) of a valid dataset; reading it raises one DatasetError naming every expected
    part."""
    root = Path(shutil.copytree(valid, tmp_path / "ds"))
    expected = corrupt(root)
    with pytest.raises(DatasetError) as error:
        read_lerobot(root)
    for part in expected:
        assert part in str(error.value)
    return str(error.value)


@pytest.mark.parametrize(
    "corrupt",
    [
        truncated_video,
        missing_video,
        episode_shorter_in_time_than_in_rows,
        unsupported_version,
        no_video_path,
        no_fps,
        video_columns_missing,
        data_column_missing,
        malformed_splits,
        subset_beyond_the_episodes,
    ],
)
def test_bad_video_dataset_raises_one_dataset_error_naming_the_fault(
    corrupt: Callable[[Path], list[str]], valid_video_folder: Path, tmp_path: Path
) -> None:
    assert str(tmp_path / "ds") in assert_corruption_named(corrupt, valid_video_folder, tmp_path)


def test_unknown_obs_key_names_the_key_the_file_and_the_keys_there(valid_video_folder: Path) -> None:
    with pytest.raises(DatasetError) as error:
        read_lerobot(valid_video_folder, obs_keys=["observation.images.wrist"])
    for part in ("'observation.images.wrist'", str(valid_video_folder / INFO), STATE, CAMERA):
        assert part in str(error.value)


def v21_episode_file_too_short(root: Path) -> list[str]:
    path = root / "data/chunk-001/episode_000002.parquet"
    pq.write_table(pq.read_table(path).slice(1), path)
    return [str(path), "episode 2", "39 rows", "length 40"]


def v21_video_missing(root: Path) -> list[str]:
    path = root / f"videos/chunk-001/{CAMERA}/episode_000003.mp4"
    path.unlink()
    return [str(path), "episode 3", CAMERA]


def v21_no_episodes_jsonl(root: Path) -> list[str]:
    (root / "meta/episodes.jsonl").unlink()
    return [str(root / "meta/episodes.jsonl"), "v2.1"]


def v21_no_chunks_size(root: Path) -> list[str]:
    edit_info(root, lambda info: info.pop("chunks_size"))
    return [str(root / INFO), "'chunks_size'"]


def v21_episodes_line_broken(root: Path) -> list[str]:
    with (root / "meta/episodes.jsonl").open("a") as file:
        file.write('{"episode_index": 5, "length": \n')
    return [str(root / "meta/episodes.jsonl"), "line 6"]


@pytest.mark.parametrize(
    "corrupt",
    [
        v21_episode_file_too_short,
        v21_video_missing,
        v21_no_episodes_jsonl,
        v21_no_chunks_size,
        v21_episodes_line_broken,
    ],
)
def test_bad_v21_dataset_raises_one_dataset_error_naming_the_fault(
    corrupt: Callable[[Path], list[str]], v21_folder: Path, tmp_path: Path
) -> None:
    assert_corruption_named(corrupt, v21_folder, tmp_path)


def test_pictures_too_small_to_encode_say_how_to_store_them(tmp_path: Path) -> None:
    store = camera_store((2,))
    store.obs[CAMERA] = np.zeros((2, 2, 2, 3), np.uint8)
    with pytest.raises(DatasetError, match=f"'{CAMERA}'.*video=False"):
        write_lerobot(store, tmp_path / "ds")
    assert not any(tmp_path.iterdir())


def test_looks_like_lerobot(video_fixture: Path, tmp_path: Path) -> None:
    assert looks_like_lerobot(video_fixture) and looks_like_lerobot(fixture_folder("pusht-like-v3"))
    (tmp_path / "garbage" / "meta").mkdir(parents=True)
    (tmp_path / "garbage" / INFO).write_bytes(b"\xff\x00 not json")
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "nothing", tmp_path / "file", tmp_path / "garbage", tmp_path):
        assert not looks_like_lerobot(path)
