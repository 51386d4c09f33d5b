"""LeRobotDataset folders: protege's on-disk format (v3.0 read and written, v2.1 read).

Why this format: it is what LeRobot and the Hugging Face Hub share demonstrations in, so data that
protege records can be trained on by LeRobot and LeRobot datasets can be trained on by protege.

v3.0 layout under the dataset root (one chunk, one file each when protege writes; LeRobot may split
into several)::

    meta/info.json                            fps, counts, per-feature dtype and shape, splits, path templates
    meta/stats.json                           per-feature min/max/mean/std/count and q01..q99
    meta/tasks.parquet                        task strings (pandas index) -> task_index
    meta/subsets.json                         protege's named episode lists {name: [episode ids]}
    meta/episodes/chunk-000/file-000.parquet  one row per episode: frame range, video time range per
                                              camera, per-episode stats, protege's per-episode columns
    data/chunk-000/file-000.parquet           one row per frame; video features have no column here
    videos/<key>/chunk-000/file-000.mp4       one camera, all episodes back to back

v2.1 layout (read only; LeRobot converts it to v3.0 with convert_dataset_v21_to_v30)::

    meta/info.json                            also chunks_size; data_path/video_path use episode_chunk
    meta/episodes.jsonl, meta/tasks.jsonl     one JSON object per line: episode_index/tasks/length; task_index/task
    data/chunk-000/episode_000000.parquet     one file per episode (chunk = episode_index // chunks_size)
    videos/chunk-000/<key>/episode_000000.mp4 one file per episode and camera, time starting at 0

Mapping to the EpisodeStore: numeric ``observation.*`` features and camera features (``video``:
MP4 files; ``image``: one PNG per frame in the parquet) become ``obs`` under the same names
(float32; uint8 arrays stay uint8; cameras decode to (N, H, W, 3) uint8); ``action`` and
``next.reward`` become ``action`` and ``reward``; each episode's task comes from its frames'
``task_index`` (one task: ``task``; several: a per-episode ``task`` column, see EpisodeStore);
scalar episodes-parquet columns that are not LeRobot's own become ``episodes`` (success, return,
source, seed: they ride along in the episodes parquet, which LeRobot loads and ignores). LeRobot's
dataset tools rewrite that parquet without them, so what can be is recovered from per-frame
features that survive: the return from ``next.reward``, success from ``next.success`` (protege
writes it on each episode's last frame); what cannot is ``unrecorded``. ``next.done`` must only be
true on an episode's last frame. ``subsets`` come from meta/subsets.json, else from info.json
"splits" ({"train": "0:5"}); ``format_meta`` (other formats' metadata) from meta/format_meta.json.
Writing, (N, H, W, 3) uint8 observations become MP4 videos (lossy, error measured in
``protege.formats.video``) or, with ``video=False``, PNG ``image`` features, bit-exact (LeRobot
treats both as cameras); everything else round-trips bit-exact. Video features of a LeRobot
source can be copied stream for stream (``copy_videos_from``). Subsets go to meta/subsets.json,
and the contiguous ones also to "splits". Not carried: per-dimension feature names, ``string``
features and other features protege has no place for (a warning names them), v2.1 per-episode
stats.

What LeRobot's docs do not say (seen in files LeRobot 0.4.4 writes): a video feature's shape is
[H, W, C] with names ["height", "width", "channels"] (v2.0 files used [C, H, W] with "channel"
first: the names decide); episode k of an MP4 spans exactly its frames, from_timestamp = frames
before it / fps, with no gap; the MP4 time base is 1/(1024 fps); LeRobot encodes AV1 with a
keyframe every 2 frames; video stats are per channel, shaped (3, 1, 1), of pixels scaled to [0, 1];
"splits" holds "start:end" strings, always with "train".
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from protege.atomic import staged_folder
from protege.data.store import ACTION, REWARD, TASK, DatasetError, EpisodeStore, episode_returns
from protege.extras import require
from protege.formats import png
from protege.formats.files import read_json_object, stored_dtype, write_json
from protege.progress import progress_bar

CODEBASE_VERSION = "v3.0"
V21 = "v2.1"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
SUBSETS_PATH = "meta/subsets.json"
FORMAT_META_PATH = "meta/format_meta.json"  # EpisodeStore.format_meta: other formats' metadata, kept for their writers
V21_EPISODES_PATH = "meta/episodes.jsonl"
V21_TASKS_PATH = "meta/tasks.jsonl"
OBSERVATION_PREFIX = "observation."
#: LeRobot's own columns of the episodes parquet; everything else scalar is protege metadata.
EPISODE_BOOKKEEPING = frozenset({"episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index"})
EPISODE_BOOKKEEPING_PREFIXES = ("stats/", "data/", "meta/", "videos/")
EPISODE_RANGE = ["episode_index", "dataset_from_index", "dataset_to_index"]
COLUMNS_KEY = "protege.columns"  # parquet schema metadata: the column names, to check the footer against
NON_NUMERIC_DTYPES = ("video", "image", "string")  # LeRobot's feature dtypes that are not numpy number types
CAMERA_DTYPES = ("video", "image")  # LeRobot's camera features: MP4 files, or one PNG per frame in the parquet
IMAGE_NAMES = ("height", "width", "channels")
FRAME_CLOCK = ("frame_index", "timestamp")  # per-frame columns checked against the episode ranges and fps
FRAME_BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
SUCCESS, DONE = "next.success", "next.done"
SIGNALS = (SUCCESS, DONE)  # LeRobot's per-frame episode signals: read into success, checked against the ends
TIMESTAMP_TOLERANCE_S = 1e-4  # LeRobot's own tolerance for timestamps that do not step by 1/fps
VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
#: Same values as LeRobot 0.4.4 writes; LeRobot uses them only when it appends to a dataset.
ROW_GROUP_BYTES = 32 * 2**20
INFO_DEFAULTS = {"chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200}


# ----------------------------------------------------------------------------------------- writing


def write_lerobot(
    store: EpisodeStore,
    root: Path,
    *,
    overwrite: bool = False,
    progress: bool = False,
    video: bool = True,
    copy_videos_from: Path | None = None,
    copy_videos: Sequence[str] | None = None,
) -> Path:
    """Write ``store`` as a LeRobotDataset v3.0 folder at ``root`` so LeRobot can load it as is.

    ``video``: (N, H, W, 3) uint8 observations are encoded to one MP4 per camera (AV1 in yuv420p,
    lossy: about 1 grey level of mean error on flat-coloured scenes, see protege.formats.video);
    with ``video=False`` they are stored as uint8 arrays in the data parquet, bit-exact.
    The folder is built in a hidden sibling and renamed into place, so a killed write never leaves
    a half-written ``root``. An existing ``root`` raises FileExistsError unless ``overwrite``.
    ``store.task`` is written verbatim, even when empty, so a round trip gives back the same store.
    1-D observations are written with shape (1,) and so read back as (N, 1).
    ``copy_videos_from``: a LeRobot v3 folder holding the same episodes (what ``protege import``
    read); its video features that the store does not hold are copied file for file, with their
    feature entries, time ranges and stats, instead of being decoded and encoded again (lossless, and
    no encoding time); ``copy_videos`` limits the copy to those keys.
    """
    root = Path(root)
    store.validate()
    _check_writable(store)
    cameras = _camera_keys(store)
    streams = None if copy_videos_from is None else _Streams.of(Path(copy_videos_from), store, copy_videos)
    with staged_folder(root, overwrite) as staging:
        _write_folder(store, staging, cameras if video else [], [] if video else cameras, progress)
        if streams is not None:
            streams.copy_into(staging)
    return root


def copyable_videos(root: Path, obs_keys: Sequence[str] | None, images: bool) -> tuple[list[str], list[str]]:
    """(observation keys to read, video keys to copy) for converting the LeRobot folder ``root`` into
    another LeRobot folder: v3 video features are copied (``write_lerobot(copy_videos_from=root)``),
    everything else is read. No video to copy gives ([], [])."""
    info = _read_info(Path(root))
    keys = _wanted_observations(info, obs_keys, images, Path(root) / INFO_PATH)
    videos = [key for key in keys if info["features"][key].get("dtype") == "video"]
    rest = [key for key in keys if key not in videos]
    if info["codebase_version"] != CODEBASE_VERSION or not videos or not rest:
        return [], []
    return rest, videos


@dataclass
class _Streams:
    """The video features of a LeRobot v3 folder, to be copied into a folder with the same episodes."""

    root: Path
    video_path: str  # the source's info.json template for its MP4 files
    features: dict[str, dict]  # video key -> its info.json entry
    stats: dict[str, dict]  # video key -> its stats.json entry (where the folder has one)
    episodes: pa.Table  # per episode: videos/<key>/* time ranges and stats/<key>/* columns

    @classmethod
    def of(cls, root: Path, store: EpisodeStore, wanted: Sequence[str] | None) -> _Streams:
        info = _read_info(root)
        keys = [
            key
            for key, feature in info["features"].items()
            if feature.get("dtype") == "video" and key not in store.obs and (wanted is None or key in wanted)
        ]
        if info["codebase_version"] != CODEBASE_VERSION:
            raise DatasetError(f"{root}: videos are copied from LeRobot {CODEBASE_VERSION} folders only")
        prefixes = tuple(f"{kind}/{key}/" for key in keys for kind in ("videos", "stats"))
        tables = _read_tables(
            _glob(root, "meta/episodes/chunk-*/file-*.parquet"),
            lambda schema: [*EPISODE_RANGE, *(name for name in schema.names if name.startswith(prefixes))],
        )
        episodes = _concat(tables, root / "meta" / "episodes").sort_by("episode_index")
        lengths = episodes.column("dataset_to_index").to_numpy() - episodes.column("dataset_from_index").to_numpy()
        if not np.array_equal(lengths, store.episode_lengths):
            raise DatasetError(f"{root}: its episodes are not the ones being written, so its videos cannot be copied")
        stats_path = root / STATS_PATH
        stats = read_json_object(stats_path, "") if stats_path.is_file() else {}
        _format_path(info, "video_path", root, video_key="", chunk_index=0, file_index=0)  # a usable template
        features = {key: info["features"][key] for key in keys}
        return cls(root, info["video_path"], features, {k: stats[k] for k in keys if k in stats}, episodes)

    def copy_into(self, folder: Path) -> None:
        """Copy the MP4 files, then add the features to info.json and stats.json and the columns to
        the episodes parquet of ``folder`` (written by ``_write_folder`` for the same episodes)."""
        for key in self.features:
            for chunk, file in set(
                zip(*(self.episodes.column(f"videos/{key}/{n}").to_pylist() for n in VIDEO_COLUMNS[:2]))
            ):
                source = self.root / self.video_path.format(video_key=key, chunk_index=chunk, file_index=file)
                target = folder / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        info = read_json_object(folder / INFO_PATH, "")
        write_json(folder / INFO_PATH, info | {"video_path": VIDEO_PATH, "features": info["features"] | self.features})
        write_json(folder / STATS_PATH, read_json_object(folder / STATS_PATH, "") | self.stats)
        path = folder / EPISODES_PATH.format(chunk_index=0, file_index=0)
        table = _read_parquet(path)
        for name in self.episodes.column_names:
            if name not in EPISODE_RANGE:
                table = table.append_column(name, self.episodes.column(name))
        _write_parquet(path, table)


def _check_writable(store: EpisodeStore) -> None:
    """Catch what the reader would not find again, or what LeRobot rejects, before writing."""
    if store.fps <= 0 or int(store.fps) != store.fps:
        raise DatasetError(f"fps must be a positive integer for LeRobot, got {store.fps}")
    for key in store.obs:
        if not key.startswith(OBSERVATION_PREFIX) or "/" in key:
            raise DatasetError(f"observation key '{key}' must start with '{OBSERVATION_PREFIX}' and contain no '/'")
    for name, values in store.episodes.items():
        if name in EPISODE_BOOKKEEPING or name.startswith(EPISODE_BOOKKEEPING_PREFIXES):
            raise DatasetError(f"episode column '{name}' clashes with a LeRobot episodes column")
        if np.ndim(values) != 1:
            raise DatasetError(
                f"episode column '{name}' must hold one scalar per episode, got shape {np.shape(values)}"
            )


def _camera_keys(store: EpisodeStore) -> list[str]:
    """Observations that are RGB camera images: (N, H, W, 3) uint8."""
    return [
        key
        for key, values in store.obs.items()
        if values.dtype == np.uint8 and values.ndim == 4 and values.shape[-1] == 3
    ]


def _write_folder(
    store: EpisodeStore, folder: Path, video_keys: list[str], image_keys: list[str], progress: bool
) -> None:
    frames = _frame_features(store)
    first_file = {"chunk_index": 0, "file_index": 0}
    video_info = _write_videos(store, folder, video_keys, progress) if video_keys else {}
    write_json(folder / INFO_PATH, _info(store, frames, video_info, image_keys))
    write_json(folder / STATS_PATH, {key: _as_lists(_feature_stats(values)) for key, values in frames.items()})
    write_json(folder / SUBSETS_PATH, {name: ids.tolist() for name, ids in store.subsets.items()})
    if store.format_meta:
        write_json(folder / FORMAT_META_PATH, store.format_meta)
    _write_parquet(folder / TASKS_PATH, _tasks_table(_tasks(store)))
    _write_parquet(folder / EPISODES_PATH.format(**first_file), _episodes_table(store, frames, video_keys))
    _write_parquet(
        folder / DATA_PATH.format(**first_file),
        _data_table({k: v for k, v in frames.items() if k not in video_keys}, image_keys, store, progress),
    )


def _video_module() -> ModuleType:
    return require("protege.formats.video", "formats", what="LeRobot video features")


def _write_videos(store: EpisodeStore, folder: Path, keys: list[str], progress: bool) -> dict[str, dict]:
    """Encode each camera into one MP4, episodes back to back; returns info.json's video block per key."""
    video = _video_module()
    bar = progress_bar(
        total=store.num_episodes * len(keys), desc="encode video", unit="ep", disable=not progress, leave=False
    )
    with bar:
        for key in keys:
            path = folder / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
            try:
                encoder = video.pick_encoder()
                video.encode_segments(path, store.obs[key], store.episode_ends, int(store.fps), encoder, bar.update)
            except video.VideoError as error:
                raise DatasetError(
                    f"'{key}': {error}; write_lerobot(..., video=False) stores images as uint8 arrays instead"
                ) from error
    return {
        key: _video_info(store.obs[key].shape[1:], int(store.fps), video.codec_name(encoder), video.PIX_FMT)
        for key in keys
    }


def _video_info(shape: tuple[int, ...], fps: int, codec: str, pix_fmt: str) -> dict:
    height, width, channels = (int(size) for size in shape)
    return {
        "video.height": height,
        "video.width": width,
        "video.codec": codec,
        "video.pix_fmt": pix_fmt,
        "video.is_depth_map": False,
        "video.fps": fps,
        "video.channels": channels,
        "has_audio": False,
    }


def _write_parquet(path: Path, table: pa.Table) -> None:
    """Row groups of about ROW_GROUP_BYTES: decoding nested (image) lists takes many times their size in
    pyarrow, so readers go one row group at a time and memory stays bounded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    row_bytes = max(1, table.nbytes // max(1, table.num_rows))
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), COLUMNS_KEY: json.dumps(table.column_names)}
    )
    # page checksums (CRC32, part of the parquet format): a damaged byte in the data reads as an error, not a value
    pq.write_table(table, path, row_group_size=max(1, ROW_GROUP_BYTES // row_bytes), write_page_checksum=True)


def _per_frame(values: np.ndarray, dtype: type) -> np.ndarray:
    """(N, *shape) array; scalars per frame get shape (1,), as LeRobot declares them."""
    values = np.asarray(values, dtype=dtype)
    return values.reshape(len(values), 1) if values.ndim == 1 else values


def _frame_features(store: EpisodeStore) -> dict[str, np.ndarray]:
    """Every per-frame feature, in LeRobot's order (user features, then its bookkeeping columns)."""
    n = store.num_frames
    frame_index = np.arange(n) - np.repeat(store.episode_starts, store.episode_lengths)
    features = {key: _per_frame(values, stored_dtype(values.dtype)) for key, values in store.obs.items()}
    features[ACTION] = _per_frame(store.action, np.float32)
    if store.reward is not None:
        features[REWARD] = _per_frame(store.reward, np.float32)
    if "success" not in store.unrecorded:  # also per frame, where LeRobot's dataset tools keep it
        success = np.zeros(n, dtype=bool)
        success[store.episode_ends - 1] = store.episodes["success"]
        features[SUCCESS] = _per_frame(success, np.bool_)
    return features | {
        "timestamp": _per_frame(frame_index / store.fps, np.float32),
        "frame_index": _per_frame(frame_index, np.int64),
        "episode_index": _per_frame(store.episode_index(), np.int64),
        "index": _per_frame(np.arange(n), np.int64),
        "task_index": _per_frame(np.repeat(_task_indexes(store), store.episode_lengths), np.int64),
    }


def _tasks(store: EpisodeStore) -> list[str]:
    """The dataset's tasks, in the order they first appear: task_index is the position here."""
    return list(store.task_counts())


def _task_indexes(store: EpisodeStore) -> np.ndarray:
    """(E,) each episode's task_index."""
    position = {task: i for i, task in enumerate(_tasks(store))}
    return np.array([position[task] for task in store.episode_tasks().tolist()], dtype=np.int64)


def _info(
    store: EpisodeStore, frames: dict[str, np.ndarray], video_info: dict[str, dict], image_keys: list[str]
) -> dict:
    def feature(key: str, values: np.ndarray) -> dict:
        camera = {"shape": list(values.shape[1:]), "names": list(IMAGE_NAMES)}
        if key in video_info:
            return {"dtype": "video", **camera, "info": video_info[key]}
        if key in image_keys:
            return {"dtype": "image", **camera}
        return {"dtype": values.dtype.name, "shape": list(values.shape[1:]), "names": None}

    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": None,
        "total_episodes": store.num_episodes,
        "total_frames": store.num_frames,
        "total_tasks": len(_tasks(store)),
        **INFO_DEFAULTS,
        "fps": int(store.fps),
        "splits": _splits(store),
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video_info else None,
        "features": {key: feature(key, values) for key, values in frames.items()},
    }


def _splits(store: EpisodeStore) -> dict[str, str]:
    """LeRobot's "start:end" form of each subset that is a contiguous episode range; "train" is
    every episode unless the store has its own."""
    ranges = {
        name: f"{ids[0]}:{ids[-1] + 1}"
        for name, ids in store.subsets.items()
        if len(ids) and ids[-1] - ids[0] + 1 == len(ids)
    }
    return ({} if "train" in store.subsets else {"train": f"0:{store.num_episodes}"}) | ranges


def _feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics over frames (axis 0), the ones LeRobot's normalizers read.

    Images (N, H, W, C) get LeRobot's per-channel stats of pixels scaled to [0, 1], shaped
    (C, 1, 1), estimated from at most 500 evenly spaced frames (as LeRobot samples images).
    """
    if values.ndim == 4:
        sampled = values[:: max(1, len(values) // 500)]
        channels = sampled.reshape(-1, values.shape[-1]).astype(np.float32) / 255.0
        stats = _feature_stats(channels)
        return {name: (v if name == "count" else v[:, None, None]) for name, v in stats.items()} | {
            "count": np.array([len(values)])
        }
    as_float = values.astype(np.float64)
    quantiles = np.quantile(as_float, list(QUANTILES.values()), axis=0)
    return {
        "min": values.min(axis=0),
        "max": values.max(axis=0),
        "mean": as_float.mean(axis=0),
        "std": as_float.std(axis=0),
        "count": np.array([len(values)]),
        **dict(zip(QUANTILES, quantiles)),
    }


def _as_lists(stats: dict[str, np.ndarray]) -> dict[str, list]:
    return {name: value.tolist() for name, value in stats.items()}


def _tasks_table(tasks: list[str]) -> pa.Table:
    """The table pandas writes for LeRobot's tasks DataFrame: task string as the index."""
    pandas_metadata = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
    }
    table = pa.table(
        {"task_index": pa.array(range(len(tasks)), pa.int64()), "__index_level_0__": pa.array(tasks, pa.string())}
    )
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_metadata)})


def _episodes_table(store: EpisodeStore, frames: dict[str, np.ndarray], video_keys: list[str]) -> pa.Table:
    zeros = np.zeros(store.num_episodes, dtype=np.int64)
    times = (zeros, zeros, store.episode_starts / store.fps, store.episode_ends / store.fps)  # float64 seconds
    return pa.table(
        {
            "episode_index": np.arange(store.num_episodes, dtype=np.int64),
            "tasks": pa.array([[task] for task in store.episode_tasks().tolist()], pa.list_(pa.string())),
            "length": store.episode_lengths,
            "data/chunk_index": zeros,
            "data/file_index": zeros,
            "dataset_from_index": store.episode_starts,
            "dataset_to_index": store.episode_ends,
            **{f"videos/{key}/{name}": values for key in video_keys for name, values in zip(VIDEO_COLUMNS, times)},
            **_episode_stats_columns(frames, store.episode_starts, store.episode_ends),
            "meta/episodes/chunk_index": zeros,
            "meta/episodes/file_index": zeros,
            **{name: pa.array(values) for name, values in _written_episode_columns(store).items()},
        }
    )


def _written_episode_columns(store: EpisodeStore) -> dict[str, np.ndarray]:
    """The store's episode columns for the episodes parquet: the recorded ones (an unrecorded column
    stays absent, so it reads back unrecorded); the task goes to LeRobot's own ``tasks`` column."""
    return {name: values for name, values in store.recorded_episodes().items() if name != TASK}


def _episode_stats_columns(frames: dict[str, np.ndarray], starts: np.ndarray, ends: np.ndarray) -> dict[str, pa.Array]:
    columns = {}
    for key, values in frames.items():
        per_episode = [_as_lists(_feature_stats(values[start:end])) for start, end in zip(starts, ends)]
        for stat in per_episode[0]:
            columns[f"stats/{key}/{stat}"] = pa.array([episode[stat] for episode in per_episode])
    return columns


def _arrow_type(shape: tuple[int, ...], leaf: pa.DataType) -> pa.DataType:
    """LeRobot's column type for a feature: a scalar for shape (1,), else nested fixed-size lists."""
    if tuple(shape) == (1,):
        return leaf
    for size in reversed(shape):
        leaf = pa.list_(leaf, size)
    return leaf


def _arrow_column(values: np.ndarray) -> pa.Array:
    """Inverse of ``_column_as_array``: an (N, *shape) array as a column of ``_arrow_type``."""
    shape = values.shape[1:]
    column = pa.array(np.ascontiguousarray(values).reshape(-1))
    if shape == (1,):
        return column
    for size in reversed(shape):
        column = pa.FixedSizeListArray.from_arrays(column, size)
    return column


def _huggingface_feature(values: np.ndarray) -> dict:
    """The `datasets` feature LeRobot declares for a column (schema metadata key 'huggingface')."""
    dtype, shape = values.dtype.name, values.shape[1:]
    if shape == (1,):
        return {"dtype": dtype, "_type": "Value"}
    if len(shape) == 1:
        return {"feature": {"dtype": dtype, "_type": "Value"}, "length": shape[0], "_type": "List"}
    return {"shape": list(shape), "dtype": dtype, "_type": f"Array{len(shape)}D"}


def _data_table(frames: dict[str, np.ndarray], image_keys: list[str], store: EpisodeStore, progress: bool) -> pa.Table:
    """The data parquet: one row per frame; cameras in ``image_keys`` as PNG structs (LeRobot's
    ``image`` dtype), everything else as numbers."""
    columns = {}
    for key, values in progress_bar(
        frames.items(), desc="write frames", unit="feature", disable=not progress, leave=False
    ):
        if key in image_keys:
            columns[key] = png.encode_images(values, lambda row, key=key: f"'{key}' episode {store.episode_of(row)}")
        else:
            columns[key] = _arrow_column(values)
    table = pa.table(columns)
    features = {
        key: {"_type": "Image"} if key in image_keys else _huggingface_feature(values) for key, values in frames.items()
    }
    return table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})


# ----------------------------------------------------------------------------------------- reading


def looks_like_lerobot(path: Path) -> bool:
    """A folder whose meta/info.json names a LeRobot ``codebase_version`` (never raises)."""
    try:
        info = json.loads((Path(path) / INFO_PATH).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "codebase_version" in info


def read_lerobot(
    root: Path, obs_keys: Sequence[str] | None = None, images: bool = True, progress: bool = False
) -> EpisodeStore:
    """Load a LeRobotDataset folder (v3.0 or v2.1), written by protege or by LeRobot, into an EpisodeStore.

    ``obs_keys=None`` loads every observation feature, except images and videos when ``images`` is
    False; a list loads exactly those. Only the parquet columns of the loaded features are read
    and only the videos of loaded keys are opened, so a state-only read never decodes video.
    ``progress`` shows a bar over episodes while decoding videos or reading v2.1 episode files.
    Anything malformed raises DatasetError naming the file, episode or key at fault.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    info = _read_info(root)
    keys = _wanted_observations(info, obs_keys, images, root / INFO_PATH)
    video_keys = [key for key in keys if info["features"][key].get("dtype") == "video"]
    layout = (_v3_layout if info["codebase_version"] == CODEBASE_VERSION else _v21_layout)(root, info, video_keys)
    arrays, bookkeeping = _read_frames(layout, [key for key in keys if key not in video_keys], progress)
    ends = _episode_ends(layout.episodes, bookkeeping["episode_index"], layout.episodes_path)
    _check_frame_clock(bookkeeping, ends, info["fps"], root / "data")
    arrays |= {key: _read_video(layout, key, progress) for key in video_keys}
    reward = arrays.pop(REWARD, None)
    reward = None if reward is None else reward[:, 0]
    episodes = _protege_episode_columns(layout.episodes)
    if "return" not in episodes and reward is not None:  # LeRobot's own datasets record rewards, not returns
        episodes["return"] = episode_returns(reward, ends)
    _read_signals(arrays, episodes, ends, root / "data")
    episodes[TASK] = _episode_tasks(layout.tasks, bookkeeping.get("task_index"), ends, root / "data")
    parts = dict(
        action=arrays.pop(ACTION),
        obs={key: arrays[key] for key in keys},
        episode_ends=ends,
        episodes=episodes,
        reward=reward,
        fps=info["fps"],
        subsets=_read_subsets(root, info),
        format_meta=_read_format_meta(root),
        unread=_unread_features(info, keys),
    )
    try:
        return EpisodeStore(**parts)
    except DatasetError as error:
        raise DatasetError(f"{root}: {error}") from error


@dataclass
class _Layout:
    """Where one LeRobot version keeps a dataset's pieces, resolved to files."""

    root: Path
    info: dict
    episodes: pa.Table  # one row per episode, by episode_index: EPISODE_RANGE and protege's columns
    episodes_path: Path  # where those rows come from, for messages
    data_files: list[Path]  # rows carry 'index' and 'episode_index'; v2.1: one file per episode
    tasks: dict[int, str]  # task_index -> task string
    videos: dict[str, list[tuple[Path, float, float]]]  # video key -> per episode: file, from and to seconds


def _v3_layout(root: Path, info: dict, video_keys: list[str]) -> _Layout:
    video_columns = [f"videos/{key}/{name}" for key in video_keys for name in VIDEO_COLUMNS]
    tables = _read_tables(
        _glob(root, "meta/episodes/chunk-*/file-*.parquet"),
        lambda schema: [*EPISODE_RANGE, *video_columns, *_protege_columns(schema)],
    )
    episodes = _concat(tables, root / "meta" / "episodes").sort_by("episode_index")
    videos = {key: _v3_segments(root, info, episodes, key) for key in video_keys}
    data_files = _glob(root, "data/chunk-*/file-*.parquet")
    return _Layout(root, info, episodes, root / "meta" / "episodes", data_files, _read_tasks(root / TASKS_PATH), videos)


def _v3_segments(root: Path, info: dict, episodes: pa.Table, key: str) -> list[tuple[Path, float, float]]:
    where = root / "meta" / "episodes"
    chunks, files, starts, ends = (
        _column_as_array(episodes, f"videos/{key}/{name}", (1,), dtype, where)[:, 0]
        for name, dtype in zip(VIDEO_COLUMNS, (np.int64, np.int64, np.float64, np.float64))
    )
    paths = [
        root / _format_path(info, "video_path", root, video_key=key, chunk_index=c, file_index=f)
        for c, f in zip(chunks, files)
    ]
    return list(zip(paths, starts, ends))


def _v21_layout(root: Path, info: dict, video_keys: list[str]) -> _Layout:
    path = root / V21_EPISODES_PATH
    rows = _read_jsonl(path, "lists its episodes")
    try:
        ids, lengths = (np.array([row[name] for row in rows], dtype=np.int64) for name in ("episode_index", "length"))
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path}: every line needs an integer 'episode_index' and 'length' ({error!r})") from error
    order = np.argsort(ids, kind="stable")
    ids, lengths = ids[order], lengths[order]
    ends = np.cumsum(lengths)
    episodes = pa.table({"episode_index": ids, "dataset_from_index": ends - lengths, "dataset_to_index": ends})
    chunks_size = info.get("chunks_size")
    if not isinstance(chunks_size, int) or chunks_size <= 0:
        raise DatasetError(
            f"{root / INFO_PATH}: 'chunks_size' must be a positive integer in a {V21} dataset, got {chunks_size!r}"
        )
    chunks = ids // chunks_size
    data_files = [
        root / _format_path(info, "data_path", root, episode_chunk=c, episode_index=e) for c, e in zip(chunks, ids)
    ]
    videos = {
        key: [
            (
                root / _format_path(info, "video_path", root, episode_chunk=c, video_key=key, episode_index=e),
                0.0,
                n / info["fps"],
            )
            for c, e, n in zip(chunks, ids, lengths)
        ]
        for key in video_keys
    }
    rows = _read_jsonl(root / V21_TASKS_PATH, "lists its tasks")
    tasks = _task_table(
        [row.get("task_index") for row in rows], [row.get("task") for row in rows], root / V21_TASKS_PATH
    )
    return _Layout(root, info, episodes, path, data_files, tasks, videos)


def _read_frames(
    layout: _Layout, keys: list[str], progress: bool
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Stored observations (float32 or uint8), action and reward in ``index`` order, and beside them
    each frame's bookkeeping columns (``episode_index``, and ``frame_index``/``timestamp`` where stored)."""
    where, features = layout.root / "data", layout.info["features"]
    keys = [*keys, ACTION, *(name for name in (REWARD, *SIGNALS) if name in features)]

    declared = {key for key, feature in features.items() if feature.get("dtype") != "video"}

    def columns(schema: pa.Schema) -> list[str]:
        undeclared = sorted(set(schema.names) - declared)
        if undeclared:  # LeRobot declares every data column in info.json; a name that differs is damage
            raise DatasetError(
                f"{where}: data column(s) {undeclared} are not features of {INFO_PATH} (it declares {sorted(declared)})"
            )
        clock = (name for name in (*FRAME_CLOCK, "task_index") if name in schema.names)
        return [*keys, "index", "episode_index", *clock]

    tables = _read_tables(layout.data_files, columns, progress)
    if layout.info["codebase_version"] == V21:
        _check_episode_files(layout, tables)
    data = _concat(tables, where)
    index = _column_as_array(data, "index", (1,), np.int64, where)[:, 0]
    # the indexing copy also makes the arrays writable (pyarrow hands out read-only buffers)
    order = np.argsort(index, kind="stable")
    _check_index(index[order], where)
    arrays = {key: _feature_array(data, key, layout, index)[order] for key in keys}
    dtypes = {"episode_index": np.int64, "frame_index": np.int64, "timestamp": np.float64, "task_index": np.int64}
    bookkeeping = {
        name: _column_as_array(data, name, (1,), dtype, where)[order, 0]
        for name, dtype in dtypes.items()
        if name in data.column_names
    }
    return arrays, bookkeeping


def _feature_array(data: pa.Table, key: str, layout: _Layout, index: np.ndarray) -> np.ndarray:
    """(N, *shape) values of one stored feature in file order: numbers, or PNG frames decoded."""
    where, feature = layout.root / "data", layout.info["features"][key]
    if feature.get("dtype") == "image":
        if key not in data.column_names:
            raise DatasetError(f"{where}: no '{key}' column")
        shape = _image_shape(layout.info, key, layout.root)
        return png.decode_images(data.column(key), shape, lambda row: f"{where}: '{key}' frame index {index[row]}")
    shape = _feature_shape(layout.info, key, layout.root)
    return _column_as_array(data, key, shape, stored_dtype(feature["dtype"]), where)


def _read_signals(
    arrays: dict[str, np.ndarray], episodes: dict[str, np.ndarray], ends: np.ndarray, where: Path
) -> None:
    """Use LeRobot's per-frame ``next.success`` and ``next.done`` (popped from ``arrays``): an episode
    succeeded if any frame says so (LeRobot's own PushT records it; protege writes it too, so success
    survives LeRobot's dataset tools, which drop protege's episode columns), and ``done`` may only be
    true on an episode's last frame (protege's episodes end where the episode ranges say)."""
    starts = np.concatenate([[0], ends[:-1]])
    success = arrays.pop(SUCCESS, None)
    if success is not None:
        recovered = np.logical_or.reduceat(success[:, 0] != 0, starts)
        if "success" not in episodes:
            episodes["success"] = recovered
        elif np.asarray(episodes["success"]).dtype.kind in "biu" and not np.array_equal(
            np.asarray(episodes["success"]).astype(bool), recovered
        ):  # a column of another type is judged (refused) by the store
            episode = int(np.argmax(np.asarray(episodes["success"]).astype(bool) != recovered))
            warnings.warn(
                f"{where}: episode {episode}'s 'success' column disagrees with its frames' '{SUCCESS}'; "
                "the column is used",
                stacklevel=3,
            )
    done = arrays.pop(DONE, None)
    if done is not None:
        early = np.flatnonzero(done[:, 0] != 0)
        early = early[~np.isin(early, ends - 1)]
        if len(early):
            episode = int(np.searchsorted(ends, early[0], side="right"))
            raise DatasetError(
                f"{where}: '{DONE}' is true at frame row {early[0]}, inside episode {episode} (frames "
                f"{starts[episode]}..{ends[episode] - 1}); an episode must end where it is done"
            )


def _unread_features(info: dict, keys: list[str]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Observation features left unloaded (a state-only read), and a warning for any other feature
    protege has no place for, so nothing is dropped without a word."""
    features = info["features"]
    used = {*keys, ACTION, REWARD, *SIGNALS, *FRAME_BOOKKEEPING}
    ignored = [key for key in features if key not in used and not key.startswith(OBSERVATION_PREFIX)]
    if ignored:
        warnings.warn(
            f"{INFO_PATH}: feature(s) {ignored} are not read (protege keeps observations, "
            f"'{ACTION}', '{REWARD}', '{SUCCESS}' and '{DONE}')",
            stacklevel=3,
        )
    return {
        key: (tuple(int(n) for n in feature.get("shape") or ()), str(feature.get("dtype")))
        for key, feature in features.items()
        if key.startswith(OBSERVATION_PREFIX) and key not in keys and _is_loadable(feature)
    }


def _check_index(index: np.ndarray, where: Path) -> None:
    """Sorted ``index`` values must be 0..N-1: a duplicate or a gap would silently reorder frames."""
    bad = np.flatnonzero(index != np.arange(len(index)))
    if len(bad):
        row = int(bad[0])
        value = int(index[row])
        what = f"index {value} appears twice" if row and index[row - 1] == value else f"index {row} is missing"
        raise DatasetError(f"{where}: the 'index' column must number the frames 0..{len(index) - 1}; {what}")


def _check_frame_clock(bookkeeping: dict[str, np.ndarray], ends: np.ndarray, fps: int, where: Path) -> None:
    """Each episode's ``frame_index`` counts 0, 1, ... and its ``timestamp`` steps by 1/fps (LeRobot's
    own tolerance, 1e-4 s): a boundary moved in the ranges and ``episode_index`` together shows here."""
    starts = np.concatenate([[0], ends[:-1]])
    expected = np.arange(ends[-1]) - np.repeat(starts, ends - starts)
    if "frame_index" in bookkeeping:
        bad = np.flatnonzero(bookkeeping["frame_index"] != expected)
        if len(bad):
            row = int(bad[0])
            episode = int(np.searchsorted(ends, row, side="right"))
            raise DatasetError(
                f"{where}: frame {row} is frame {expected[row]} of episode {episode} by the episode ranges, "
                f"but its frame_index says {bookkeeping['frame_index'][row]}"
            )
    if "timestamp" in bookkeeping:
        step = np.diff(bookkeeping["timestamp"])
        inside = np.ones(len(step), dtype=bool)
        inside[ends[:-1] - 1] = False  # the step from an episode's last frame to the next one's first
        # timestamps are float32: past ~1000 s one float32 step alone exceeds LeRobot's tolerance
        spacing = 2 * np.spacing(np.abs(bookkeeping["timestamp"][1:]).astype(np.float32)).astype(np.float64)
        bad = np.flatnonzero(inside & (np.abs(step - 1.0 / fps) > TIMESTAMP_TOLERANCE_S + spacing))
        if len(bad):
            row = int(bad[0]) + 1
            episode = int(np.searchsorted(ends, row, side="right"))
            raise DatasetError(
                f"{where}: timestamps of episode {episode} step by {step[row - 1]:.6g} s at frame {row}, "
                f"not 1/fps = {1.0 / fps:.6g} s (meta/info.json fps {fps})"
            )


def _check_episode_files(layout: _Layout, tables: list[pa.Table]) -> None:
    """v2.1: each episode file holds exactly the frames meta/episodes.jsonl gives its episode."""
    ids, starts, ends = (layout.episodes.column(name).to_pylist() for name in EPISODE_RANGE)
    for path, table, episode, start, end in zip(layout.data_files, tables, ids, starts, ends):
        if table.num_rows != end - start:
            raise DatasetError(
                f"{path}: {table.num_rows} rows, but {V21_EPISODES_PATH} gives episode {episode} length {end - start}"
            )


def _read_video(layout: _Layout, key: str, progress: bool) -> np.ndarray:
    """(N, H, W, 3) uint8 frames of one video feature, each episode decoded from its time range."""
    video = _video_module()
    ids, starts, ends = (layout.episodes.column(name).to_numpy() for name in EPISODE_RANGE)
    segments = [
        video.Segment(path, from_s, to_s, end - start, f"episode {episode}")
        for (path, from_s, to_s), episode, start, end in zip(layout.videos[key], ids, starts, ends)
    ]
    with progress_bar(total=len(ids), desc=f"decode {key}", unit="ep", disable=not progress, leave=False) as bar:
        try:
            return video.decode_segments(
                segments, _image_shape(layout.info, key, layout.root), layout.info["fps"], bar.update
            )
        except video.VideoError as error:
            raise DatasetError(f"{error} (video feature '{key}')") from error


def _read_jsonl(path: Path, purpose: str) -> list[dict]:
    """A v2.1 JSON-lines file: one JSON object per non-empty line."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: missing; a LeRobot {V21} dataset {purpose} there") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read ({error})") from error
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}: line {number} is not valid JSON ({error})") from error
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise DatasetError(f"{path}: expected one JSON object per line")
    return rows


def _read_info(root: Path) -> dict:
    path = root / INFO_PATH
    info = read_json_object(path, "every LeRobot dataset folder has meta/info.json")
    version = info.get("codebase_version")
    if version not in (CODEBASE_VERSION, V21):
        raise DatasetError(
            f"{path}: codebase_version {version!r} is not supported; "
            f"protege reads LeRobot {CODEBASE_VERSION} and {V21} "
            "datasets (LeRobot's convert_dataset_v21_to_v30 script takes older ones forward from v2.1)"
        )
    for key in ("fps", "features"):
        if key not in info:
            raise DatasetError(f"{path}: no '{key}' entry")
    features = info["features"]
    if not isinstance(features, dict) or not all(isinstance(feature, dict) for feature in features.values()):
        raise DatasetError(f"{path}: 'features' must map each feature name to an object")
    if ACTION not in features:
        raise DatasetError(f"{path}: no '{ACTION}' feature")
    for key, feature in features.items():
        dtype = feature.get("dtype")
        if dtype not in NON_NUMERIC_DTYPES and not _is_numeric_dtype(dtype):
            raise DatasetError(
                f"{path}: feature '{key}' has dtype {dtype!r}, which is neither a number type nor one of "
                f"{', '.join(NON_NUMERIC_DTYPES)}"
            )
    for key in (ACTION, REWARD):
        if key in features and not _is_numeric_dtype(features[key].get("dtype")):
            raise DatasetError(f"{path}: '{key}' has dtype {features[key].get('dtype')!r}; it must hold numbers")
    fps = info["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0 or not float(fps).is_integer():
        raise DatasetError(f"{path}: fps must be a positive integer, got {fps!r}")
    return info | {"fps": int(fps)}


def _format_path(info: dict, template: str, root: Path, **fields: object) -> str:
    """A file path from one of info.json's templates (data_path, video_path)."""
    try:
        return info[template].format(**fields)
    except (KeyError, IndexError, ValueError, AttributeError) as error:
        raise DatasetError(
            f"{root / INFO_PATH}: '{template}' is missing or is not a template of {sorted(fields)} ({error!r})"
        ) from error


def _wanted_observations(info: dict, obs_keys: Sequence[str] | None, images: bool, where: Path) -> list[str]:
    """Observation features to load, in info.json's order unless ``obs_keys`` gives one."""
    features = info["features"]
    available = [
        key for key, feature in features.items() if key.startswith(OBSERVATION_PREFIX) and _is_loadable(feature)
    ]
    if obs_keys is None:
        skipped = [key for key in features if key.startswith(OBSERVATION_PREFIX) and key not in available]
        if skipped:
            warnings.warn(
                f"{where}: observation feature(s) {skipped} are not read ('string' features and cameras that are "
                "not RGB have no place in protege's store; numbers and RGB 'image' and 'video' features do)",
                stacklevel=3,
            )
        return [key for key in available if images or not _is_image(features[key])]
    unknown = [key for key in obs_keys if key not in available]
    if unknown:
        raise DatasetError(f"{where}: no observation feature {unknown[0]!r}; the dataset has {available}")
    return list(dict.fromkeys(obs_keys))


def _is_numeric_dtype(dtype: object) -> bool:
    try:
        return isinstance(dtype, str) and np.dtype(dtype).kind in "biuf"
    except TypeError:
        return False


def _is_loadable(feature: dict) -> bool:
    """Numeric features and RGB cameras; string features and other cameras (depth, grey) are not read."""
    if feature.get("dtype") in CAMERA_DTYPES:
        shape, names = list(feature.get("shape") or ()), feature.get("names") or [None]
        return len(shape) == 3 and (shape[0] if str(names[0]).startswith("channel") else shape[2]) == 3
    return _is_numeric_dtype(feature.get("dtype"))


def _is_image(feature: dict) -> bool:
    return feature.get("dtype") in CAMERA_DTYPES or len(feature.get("shape") or ()) == 3


def _feature_shape(info: dict, key: str, root: Path) -> tuple[int, ...]:
    try:
        return tuple(int(size) for size in info["features"][key]["shape"])
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{root / INFO_PATH}: feature '{key}' has no valid shape ({error!r})") from error


def _image_shape(info: dict, key: str, root: Path) -> tuple[int, int, int]:
    """(H, W, 3) of a camera feature; shapes named channel-first ([C, H, W], LeRobot v2.0) are turned."""
    shape, names = _feature_shape(info, key, root), info["features"][key].get("names") or [None]
    if len(shape) == 3 and str(names[0]).startswith("channel"):
        shape = (*shape[1:], shape[0])
    if len(shape) != 3 or shape[2] != 3:
        raise DatasetError(
            f"{root / INFO_PATH}: camera feature '{key}' has shape {list(shape)}; protege reads RGB images, (H, W, 3)"
        )
    return shape


def _read_parquet(path: Path, columns: Callable[[pa.Schema], Sequence[str]] | None = None) -> pa.Table:
    """A parquet file, or the columns ``columns`` picks from its schema (a missing one is an error)."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing")
    try:
        parquet = pq.ParquetFile(path, page_checksum_verification=True)  # where the writer stored them
        _check_column_names(parquet.schema_arrow, path)
        wanted = None if columns is None else list(columns(parquet.schema_arrow))
        missing = [column for column in wanted or [] if column not in parquet.schema_arrow.names]
        table = (
            None
            if missing
            else pa.concat_tables(
                [parquet.read_row_group(i, columns=wanted) for i in range(parquet.num_row_groups)]
                or [parquet.schema_arrow.empty_table().select(wanted or parquet.schema_arrow.names)]
            )
        )
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:  # a damaged column name is not UTF-8
        raise DatasetError(f"{path}: cannot read parquet file, it may be truncated or corrupt ({error})") from error
    if missing:
        raise DatasetError(f"{path}: column(s) {missing} missing")
    return table


def _check_column_names(schema: pa.Schema, path: Path) -> None:
    """Column names against the list protege writes beside them: the footer holding them has no
    checksum, and a damaged name would turn a known column (``success``) into an unknown one."""
    written = (schema.metadata or {}).get(COLUMNS_KEY.encode())
    if written is None:
        return  # written by another tool
    try:
        names = json.loads(written)
    except ValueError:
        names = None
    if not isinstance(names, list):
        raise DatasetError(f"{path}: its '{COLUMNS_KEY}' metadata is damaged")
    if len(names) == len(schema.names) and names != schema.names:  # a renamed column (a file edited on purpose
        # to drop or add columns keeps the old list, and the checks of each column judge it)
        now, was = next((a, b) for a, b in zip(schema.names, names) if a != b)
        raise DatasetError(f"{path}: column '{now}' was written as '{was}'; the file is damaged")


def _glob(root: Path, pattern: str) -> list[Path]:
    """The chunk/file parquet files of one kind (data or episodes), in chunk and file order."""
    paths = sorted(root.glob(pattern))
    if not paths:
        raise DatasetError(f"{root}: no {pattern} files")
    return paths


def _read_tables(
    paths: list[Path], columns: Callable[[pa.Schema], Sequence[str]], progress: bool = False
) -> list[pa.Table]:
    bar = progress_bar(paths, desc="read parquet", unit="file", disable=not progress or len(paths) < 2, leave=False)
    return [_read_parquet(path, columns) for path in bar]


def _concat(tables: list[pa.Table], where: Path) -> pa.Table:
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowException as error:
        raise DatasetError(f"{where}: the parquet files have different columns ({error})") from error


def _column_as_array(table: pa.Table, key: str, shape: tuple[int, ...], dtype: type, where: Path) -> np.ndarray:
    """(N, *shape) numpy array of a scalar or (nested) list column, without per-row Python loops."""
    if key not in table.column_names:
        raise DatasetError(f"{where}: no '{key}' column")
    column = table.column(key)
    if column.null_count:
        raise DatasetError(f"{where}: '{key}' has {column.null_count} missing values")
    try:
        values = column.cast(_arrow_type(shape, pa.from_numpy_dtype(dtype)), safe=False).combine_chunks()
    except pa.ArrowException as error:
        raise DatasetError(
            f"{where}: '{key}' of type {column.type} does not fit shape {list(shape)} from meta/info.json ({error})"
        ) from error
    while pa.types.is_fixed_size_list(values.type):
        values = values.flatten()
    return values.to_numpy(zero_copy_only=False).reshape(len(column), *shape)


def _episode_ends(episodes: pa.Table, frame_episodes: np.ndarray, where: Path) -> np.ndarray:
    """Exclusive frame ends, after checking the ranges are contiguous and agree with the data."""
    starts, ends, ids = (
        _column_as_array(episodes, key, (1,), np.int64, where)[:, 0]
        for key in ("dataset_from_index", "dataset_to_index", "episode_index")
    )
    n = len(frame_episodes)
    bad = (starts != np.concatenate([[0], ends[:-1]])) | (ends <= starts)
    if bad.any():
        episode = int(ids[np.argmax(bad)])
        raise DatasetError(f"{where}: episode {episode} frame range is empty or not contiguous with the previous one")
    if len(ends) == 0 or ends[-1] != n:
        raise DatasetError(f"{where}: episodes cover {ends[-1] if len(ends) else 0} frames but the data has {n}")
    mismatch = np.nonzero(np.repeat(ids, ends - starts) != frame_episodes)[0]
    if len(mismatch):
        row = int(mismatch[0])
        raise DatasetError(
            f"{where}: dataset_from_index/dataset_to_index put frame {row} in episode "
            f"{ids[np.searchsorted(ends, row, side='right')]} "
            f"but the data's episode_index column says {frame_episodes[row]}"
        )
    return ends


def _is_protege_column(field: pa.Field) -> bool:
    """Scalar per-episode columns that are not LeRobot's own: success, return, source, seed, ..."""
    return (
        field.name not in EPISODE_BOOKKEEPING
        and not field.name.startswith(EPISODE_BOOKKEEPING_PREFIXES)
        and not pa.types.is_nested(field.type)
    )


def _protege_columns(schema: pa.Schema) -> list[str]:
    return [field.name for field in schema if _is_protege_column(field)]


def _protege_episode_columns(episodes: pa.Table) -> dict[str, np.ndarray]:
    return {name: episodes.column(name).to_numpy() for name in _protege_columns(episodes.schema)}


def _read_tasks(path: Path) -> dict[int, str]:
    """task_index -> task string; pandas stores the strings as the table's index column."""
    table = _read_parquet(path)
    try:
        index_columns = (table.schema.pandas_metadata or {}).get("index_columns", [])
    except ValueError as error:  # json.JSONDecodeError: the pandas metadata is damaged
        raise DatasetError(
            f"{path}: its pandas metadata is not valid JSON, the file may be corrupt ({error})"
        ) from error
    column = next((name for name in index_columns if isinstance(name, str)), "task")
    for name in (column, "task_index"):
        if name not in table.column_names:
            raise DatasetError(f"{path}: no '{name}' column")
    return _task_table(table.column("task_index").to_pylist(), table.column(column).to_pylist(), path)


def _task_table(indexes: list, tasks: list, path: Path) -> dict[int, str]:
    """Checked task_index -> task: whole distinct indexes, text tasks, at least one."""
    if not tasks:
        raise DatasetError(f"{path}: lists no task")
    for index, task in zip(indexes, tasks):
        if type(index) is not int or not isinstance(task, str):
            raise DatasetError(f"{path}: task_index {index!r} -> task {task!r}; expected a whole number and a text")
    if len(set(indexes)) != len(indexes):
        raise DatasetError(f"{path}: a task_index appears twice in {indexes}")
    return dict(zip(indexes, tasks))


def _episode_tasks(tasks: dict[int, str], task_index: np.ndarray | None, ends: np.ndarray, where: Path) -> np.ndarray:
    """(E,) each episode's task, from its frames' ``task_index`` (what LeRobot trains on); every frame
    of an episode must have the same one: protege keeps one task per episode."""
    if task_index is None:
        if len(tasks) > 1:
            raise DatasetError(f"{where}: the dataset lists {len(tasks)} tasks but its frames have no 'task_index'")
        return np.full(len(ends), next(iter(tasks.values())), dtype=object)
    starts = np.concatenate([[0], ends[:-1]])
    first = task_index[starts]
    changes = np.flatnonzero(task_index != np.repeat(first, ends - starts))
    if len(changes):
        episode = int(np.searchsorted(ends, changes[0], side="right"))
        raise DatasetError(
            f"{where}: episode {episode} changes task_index from {first[episode]} to {task_index[changes[0]]} at "
            f"frame row {changes[0]}; protege keeps one task per episode"
        )
    unknown = sorted(set(first.tolist()) - set(tasks))
    if unknown:
        raise DatasetError(f"{where}: task_index {unknown[0]} is not in the dataset's task list {sorted(tasks)}")
    return np.array([tasks[int(index)] for index in first], dtype=object)


def _read_subsets(root: Path, info: dict) -> dict[str, np.ndarray]:
    """Named episode lists: protege's meta/subsets.json, else LeRobot's "splits" ({"train": "0:5"})."""
    path = root / SUBSETS_PATH
    if path.is_file():
        subsets = read_json_object(path, "")
        if not all(isinstance(ids, list) and all(type(i) is int for i in ids) for ids in subsets.values()):
            raise DatasetError(f"{path}: expected {{subset name: [episode ids]}}")
        return {name: np.asarray(ids, dtype=np.int64) for name, ids in subsets.items()}
    splits = info.get("splits") or {}
    if not isinstance(splits, dict):
        raise DatasetError(f"{root / INFO_PATH}: 'splits' must map names to \"start:end\" strings, got {splits!r}")
    return {name: _split_range(name, text, root / INFO_PATH) for name, text in splits.items()}


def _read_format_meta(root: Path) -> dict[str, dict]:
    path = root / FORMAT_META_PATH
    if not path.is_file():
        return {}
    meta = read_json_object(path, "")
    if not all(isinstance(value, dict) for value in meta.values()):
        raise DatasetError(f"{path}: expected {{format name: {{...}}}}")
    return meta


def _split_range(name: str, text: object, where: Path) -> np.ndarray:
    match = re.fullmatch(r"(\d+):(\d+)", str(text))
    if match is None:
        raise DatasetError(f"{where}: split '{name}' is {text!r}, expected \"start:end\"")
    return np.arange(int(match[1]), int(match[2]))
