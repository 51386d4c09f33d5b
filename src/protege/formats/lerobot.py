"""LeRobotDataset v3 folders: protege's on-disk format.

Why this format: it is what LeRobot and the Hugging Face Hub share demonstrations in, so data that
protege records can be trained on by LeRobot and LeRobot datasets can be trained on by protege.

Layout under the dataset root (one chunk, one file each; LeRobot itself may split into several)::

    meta/info.json                            fps, frame/episode counts, per-feature dtype and shape
    meta/stats.json                           per-feature min/max/mean/std/count and q01..q99
    meta/tasks.parquet                        task strings (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet  one row per episode: frame range, per-episode stats,
                                              and protege's per-episode columns (success, return, ...)
    data/chunk-000/file-000.parquet           one row per frame

Protege's per-episode columns ride along in the episodes parquet, which LeRobot loads and ignores.
Observations, actions and rewards are stored and read back as float32, except uint8 observations
(camera images), which keep their 1-byte pixels.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from protege.data.store import ACTION, DatasetError, EpisodeStore

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
OBSERVATION_PREFIX = "observation."
REWARD = "next.reward"
#: LeRobot's own columns of the episodes parquet; everything else scalar is protege metadata.
EPISODE_BOOKKEEPING = frozenset({"episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index"})
EPISODE_BOOKKEEPING_PREFIXES = ("stats/", "data/", "meta/", "videos/")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
#: Same values as LeRobot 0.4.4 writes; LeRobot uses them only when it appends to a dataset.
INFO_DEFAULTS = {"chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200}


# ----------------------------------------------------------------------------------------- writing


def write_lerobot(store: EpisodeStore, root: Path, *, overwrite: bool = False) -> Path:
    """Write ``store`` as a LeRobotDataset v3 folder at ``root`` so LeRobot can load it as is.

    The folder is built in a hidden sibling and renamed into place, so a killed write never leaves
    a half-written ``root``. An existing ``root`` raises FileExistsError unless ``overwrite``.
    ``store.task`` is written verbatim, even when empty, so a round trip gives back the same store.
    1-D observations are written with shape (1,) and so read back as (N, 1).
    """
    root = Path(root)
    store.validate()
    _check_writable(store)
    _refuse_existing(root, overwrite)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(root, "tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _write_folder(store, staging)
        _move_into_place(staging, root, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


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
            raise DatasetError(f"episode column '{name}' must hold one scalar per episode, got shape {np.shape(values)}")


def _refuse_existing(root: Path, overwrite: bool) -> None:
    if not root.exists() or (overwrite and root.is_dir()):
        return
    hint = "pass overwrite=True to replace it" if root.is_dir() else "it is not a dataset folder"
    raise FileExistsError(f"{root} already exists; {hint}")


def _sibling(root: Path, purpose: str) -> Path:
    return root.parent / f".{root.name}.{purpose}-{os.getpid()}"


def _move_into_place(staging: Path, root: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``root``; an old ``root`` is moved aside first, then deleted."""
    _refuse_existing(root, overwrite)
    if not root.exists():
        staging.rename(root)
        return
    old = _sibling(root, "old")
    root.rename(old)
    try:
        staging.rename(root)
    except BaseException:
        old.rename(root)
        raise
    shutil.rmtree(old)


def _write_folder(store: EpisodeStore, folder: Path) -> None:
    frames = _frame_features(store)
    first_file = {"chunk_index": 0, "file_index": 0}
    _write_json(folder / INFO_PATH, _info(store, frames))
    _write_json(folder / STATS_PATH, {key: _as_lists(_feature_stats(values)) for key, values in frames.items()})
    _write_parquet(folder / TASKS_PATH, _tasks_table(store.task))
    _write_parquet(folder / EPISODES_PATH.format(**first_file), _episodes_table(store, frames))
    _write_parquet(folder / DATA_PATH.format(**first_file), _data_table(frames))


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=4, ensure_ascii=False))


def _write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _per_frame(values: np.ndarray, dtype: type) -> np.ndarray:
    """(N, *shape) array; scalars per frame get shape (1,), as LeRobot declares them."""
    values = np.asarray(values, dtype=dtype)
    return values.reshape(len(values), 1) if values.ndim == 1 else values


def _stored_dtype(dtype: np.dtype | str) -> type:
    """uint8 (images) as is; every other numeric feature as float32."""
    return np.uint8 if np.dtype(dtype) == np.uint8 else np.float32


def _frame_features(store: EpisodeStore) -> dict[str, np.ndarray]:
    """Every data column, in LeRobot's order (user features, then its bookkeeping columns)."""
    n = store.num_frames
    frame_index = np.arange(n) - np.repeat(store.episode_starts, store.episode_lengths)
    features = {key: _per_frame(values, _stored_dtype(values.dtype)) for key, values in store.obs.items()}
    features[ACTION] = _per_frame(store.action, np.float32)
    if store.reward is not None:
        features[REWARD] = _per_frame(store.reward, np.float32)
    return features | {
        "timestamp": _per_frame(frame_index / store.fps, np.float32),
        "frame_index": _per_frame(frame_index, np.int64),
        "episode_index": _per_frame(store.episode_index(), np.int64),
        "index": _per_frame(np.arange(n), np.int64),
        "task_index": _per_frame(np.zeros(n), np.int64),
    }


def _info(store: EpisodeStore, frames: dict[str, np.ndarray]) -> dict:
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": None,
        "total_episodes": store.num_episodes,
        "total_frames": store.num_frames,
        "total_tasks": 1,
        **INFO_DEFAULTS,
        "fps": int(store.fps),
        "splits": {"train": f"0:{store.num_episodes}"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": {
            key: {"dtype": values.dtype.name, "shape": list(values.shape[1:]), "names": None} for key, values in frames.items()
        },
    }


def _feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics over frames (axis 0), the ones LeRobot's normalizers read.

    Images (N, H, W, C) get LeRobot's per-channel stats of pixels scaled to [0, 1], shaped
    (C, 1, 1), estimated from at most 500 evenly spaced frames (as LeRobot samples images).
    """
    if values.ndim == 4:
        sampled = values[:: max(1, len(values) // 500)]
        channels = sampled.reshape(-1, values.shape[-1]).astype(np.float32) / 255.0
        stats = _feature_stats(channels)
        return {name: (v if name == "count" else v[:, None, None]) for name, v in stats.items()} | {"count": np.array([len(values)])}
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


def _tasks_table(task: str) -> pa.Table:
    """The table pandas writes for LeRobot's tasks DataFrame: task string as the index."""
    pandas_metadata = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "attributes": {},
    }
    table = pa.table({"task_index": pa.array([0], pa.int64()), "__index_level_0__": pa.array([task], pa.string())})
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_metadata)})


def _episodes_table(store: EpisodeStore, frames: dict[str, np.ndarray]) -> pa.Table:
    zeros = np.zeros(store.num_episodes, dtype=np.int64)
    return pa.table(
        {
            "episode_index": np.arange(store.num_episodes, dtype=np.int64),
            "tasks": pa.array([[store.task]] * store.num_episodes, pa.list_(pa.string())),
            "length": store.episode_lengths,
            "data/chunk_index": zeros,
            "data/file_index": zeros,
            "dataset_from_index": store.episode_starts,
            "dataset_to_index": store.episode_ends,
            **_episode_stats_columns(frames, store.episode_starts, store.episode_ends),
            "meta/episodes/chunk_index": zeros,
            "meta/episodes/file_index": zeros,
            **{name: pa.array(values) for name, values in store.episodes.items()},
        }
    )


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


def _data_table(frames: dict[str, np.ndarray]) -> pa.Table:
    table = pa.table({key: _arrow_column(values) for key, values in frames.items()})
    features = {key: _huggingface_feature(values) for key, values in frames.items()}
    return table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})


# ----------------------------------------------------------------------------------------- reading


def read_lerobot(root: Path) -> EpisodeStore:
    """Load a LeRobotDataset v3 folder, written by protege or by LeRobot, into an EpisodeStore.

    Numeric ``observation.*`` features become ``obs`` (video and image features are skipped),
    ``action`` and ``next.reward`` become ``action`` and ``reward``, and scalar episodes-parquet
    columns that are not LeRobot's own become ``episodes``. Anything malformed raises DatasetError
    naming the file or key at fault.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    info = _read_info(root)
    arrays, frame_episodes = _read_frames(root, info)
    episodes = _read_episodes(root)
    reward = arrays.pop(REWARD, None)
    parts = dict(
        action=arrays.pop(ACTION),
        obs=arrays,
        episode_ends=_episode_ends(episodes, frame_episodes, root / "meta" / "episodes"),
        episodes=_protege_episode_columns(episodes),
        reward=None if reward is None else reward[:, 0],
        fps=info["fps"],
        task=_read_task(root / TASKS_PATH),
    )
    try:
        return EpisodeStore(**parts)
    except DatasetError as error:
        raise DatasetError(f"{root}: {error}") from error


def _read_frames(root: Path, info: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Observations (float32 or uint8), action and reward, and each frame's episode, in ``index`` order."""
    where, features = root / "data", info["features"]
    data = _read_tables(root, "data/chunk-*/file-*.parquet")
    stored = [key for key, feature in features.items() if feature.get("dtype") != "video"]
    _check_columns(data, [*stored, "index", "episode_index"], where)
    order = np.argsort(_column_as_array(data, "index", (1,), np.int64, where)[:, 0], kind="stable")
    keys = [key for key, feature in features.items() if _is_observation(key, feature)]
    keys += [ACTION, *([REWARD] if REWARD in features else [])]
    arrays = {
        key: _column_as_array(data, key, _feature_shape(info, key, root), _stored_dtype(features[key]["dtype"]), where)[order]
        for key in keys
    }
    return arrays, _column_as_array(data, "episode_index", (1,), np.int64, where)[order, 0]


def _read_episodes(root: Path) -> pa.Table:
    episodes = _read_tables(root, "meta/episodes/chunk-*/file-*.parquet")
    _check_columns(episodes, ["episode_index", "dataset_from_index", "dataset_to_index"], root / "meta" / "episodes")
    return episodes.sort_by("episode_index")


def _read_info(root: Path) -> dict:
    path = root / INFO_PATH
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: missing; every LeRobot dataset folder has meta/info.json") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: expected a JSON object, got {type(info).__name__}")
    version = str(info.get("codebase_version"))
    if not version.startswith("v3."):
        raise DatasetError(
            f"{path}: codebase_version {version!r} is not supported; protege reads LeRobot v3.x datasets "
            "(v2.1 is not supported yet: convert it with LeRobot's convert_dataset_v21_to_v30 script)"
        )
    for key in ("fps", "features"):
        if key not in info:
            raise DatasetError(f"{path}: no '{key}' entry")
    features = info["features"]
    if not isinstance(features, dict) or not all(isinstance(feature, dict) for feature in features.values()):
        raise DatasetError(f"{path}: 'features' must map each feature name to an object")
    if ACTION not in features:
        raise DatasetError(f"{path}: no '{ACTION}' feature")
    if not isinstance(info["fps"], int) or info["fps"] <= 0:
        raise DatasetError(f"{path}: fps must be a positive integer, got {info['fps']!r}")
    return info


def _feature_shape(info: dict, key: str, root: Path) -> tuple[int, ...]:
    try:
        return tuple(int(size) for size in info["features"][key]["shape"])
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{root / INFO_PATH}: feature '{key}' has no valid shape ({error!r})") from error


def _is_observation(key: str, feature: dict) -> bool:
    """Numeric observation features; video, image and string features are not for the store."""
    try:
        numeric = np.dtype(feature.get("dtype")).kind in "biuf"
    except TypeError:
        numeric = False
    return key.startswith(OBSERVATION_PREFIX) and numeric


def _read_parquet(path: Path) -> pa.Table:
    if not path.is_file():
        raise DatasetError(f"{path}: missing")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise DatasetError(f"{path}: cannot read parquet file, it may be truncated or corrupt ({error})") from error


def _read_tables(root: Path, pattern: str) -> pa.Table:
    """All chunk/file parquet files of one kind (data or episodes), in chunk and file order."""
    paths = sorted(root.glob(pattern))
    if not paths:
        raise DatasetError(f"{root}: no {pattern} files")
    tables = [_read_parquet(path) for path in paths]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowException as error:
        raise DatasetError(f"{root}: files matching {pattern} have different columns ({error})") from error


def _check_columns(table: pa.Table, required: list[str], where: Path) -> None:
    missing = [key for key in required if key not in table.column_names]
    if missing:
        raise DatasetError(f"{where}: column(s) {missing} missing from the parquet files")


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
            f"{ids[np.searchsorted(ends, row, side='right')]} but the data's episode_index column says {frame_episodes[row]}"
        )
    return ends


def _protege_episode_columns(episodes: pa.Table) -> dict[str, np.ndarray]:
    """Scalar per-episode columns that are not LeRobot's own: success, return, source, seed, ..."""
    return {
        field.name: episodes.column(field.name).to_numpy()
        for field in episodes.schema
        if field.name not in EPISODE_BOOKKEEPING
        and not field.name.startswith(EPISODE_BOOKKEEPING_PREFIXES)
        and not pa.types.is_nested(field.type)
    }


def _read_task(path: Path) -> str:
    """The single task string; pandas stores it as the table's index column."""
    table = _read_parquet(path)
    index_columns = (table.schema.pandas_metadata or {}).get("index_columns", [])
    column = next((name for name in index_columns if isinstance(name, str)), "task")
    if column not in table.column_names:
        raise DatasetError(f"{path}: no task string column (looked for '{column}')")
    tasks = table.column(column).to_pylist()
    if len(tasks) != 1:
        raise DatasetError(f"{path}: holds {len(tasks)} tasks {tasks[:3]}; protege datasets have exactly one task")
    return tasks[0]
