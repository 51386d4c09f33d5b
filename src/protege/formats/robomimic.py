"""robomimic HDF5 datasets (ARISE-Initiative/robomimic), read and written.

One HDF5 file, laid out the way robomimic's ``dataset_states_to_obs.py`` writes it::

    data/                        attrs: total (frames), env_args (JSON: env_name, type, env_kwargs)
    data/demo_<i>/               attrs: num_samples (= T), model_file (robosuite XML, optional)
        obs/<key>                (T, ...) low-dim vectors (float64) or images (T, H, W, 3) uint8
        next_obs/<key>           (T, ...) the observation after each action
        actions                  (T, A)
        rewards                  (T,)
        dones                    (T,) int
        states                   (T, S) simulator states, optional (for ``env.reset_to``)
    mask/<filter_key>            (k,) bytes demo names, e.g. b"demo_0": named subsets of demos
                                 (``train``/``valid``, ``20_percent``, ``better``/``okay``/``worse``)

Mapping to the EpisodeStore (``read_robomimic``):

- Demos are episodes in robomimic's order: sorted by their integer suffix (demo_10 after demo_9).
- Obs key ``<cam>_image`` -> ``observation.images.<cam>``; any other key ``<k>`` ->
  ``observation.<k>``; ``states`` -> ``observation.sim_state``, after the obs keys, which come in
  the order h5py lists them (name order, or creation order in files protege writes). Image keys
  (skipped by ``images=False``) are ``*_image`` keys and any key with 3-D frames.
- Numbers are read as float32 (observations, actions, rewards, simulator states, which robomimic
  stores as float64: ``reset_to`` from the rounded states is approximate), uint8 stays uint8.
- ``next_obs`` and ``dones`` are not read: frames pair each observation with its action, and
  episode boundaries are the demo groups. The observation after a demo's last action (its last
  ``next_obs``) therefore has no place in the store and is dropped.
- ``mask/<filter_key>`` -> ``subsets[filter_key]`` (episode ids in the sorted order).
- ``task`` = ``env_args["env_name"]``; ``fps``: the ``fps`` attribute protege writes, else
  ``env_kwargs["control_freq"]`` (robosuite's rate: 20 in robomimic's datasets), else the store
  default. ``success``/``return``/``source``/``seed``: demo attributes of those names when every
  demo has them (files written by protege); otherwise the defaults, except ``return``, which is
  the sum of the demo's rewards. robomimic's own datasets hold only successful human demos but
  do not say so per demo, so ``success`` stays False for them.

Writing (``write_robomimic``) inverts the mapping: demos ``demo_0..demo_<E-1>``; ``next_obs`` is
``obs`` shifted by one within the demo, the last frame repeated; ``dones`` is 1 at the last step
only (robomimic's ``done_mode=1``); ``rewards`` is ``store.reward``, zeros when the store has none
(with ``protege_reward_missing`` set so the zeros read back as None); ``states`` only when the
store has ``observation.sim_state``, else omitted (robomimic then trains fine but cannot
``reset_to`` the demos' start states); images are gzip-compressed as robomimic does.
``env_args`` is ``{"env_name": store.task, "type": 2 (robomimic's GYM_TYPE), "env_kwargs": {}}``:
the store does not carry a robomimic environment's construction kwargs, so a robomimic file read
and written again loses them (and robomimic cannot build rollout envs from the written file).
Per-episode columns become demo attributes (robomimic ignores unknown attributes) and their
names the ``protege_episode_columns`` data attribute; ``fps`` is a data attribute. A round trip
store -> file -> store is bit-exact for float32/uint8 data.

Found out from robomimic's code, not its docs:

- h5py lists ``data/`` in name order (demo_0, demo_1, demo_10, ...); robomimic re-sorts with
  ``int(name[5:])``, so any group under ``data/`` not named ``demo_<int>`` breaks robomimic.
- ``num_samples`` is what robomimic's SequenceDataset indexes with; it never checks it against
  the arrays. ``total`` is informational.
- Masks are fixed-length byte strings (``np.array(names, dtype="S")``), in the order given, not
  sorted; an empty mask is a (0,) ``|S1`` dataset.
- Raw robosuite ``demo.hdf5`` files have ``states`` and ``actions`` but no ``obs`` group;
  observations are extracted from the states by ``dataset_states_to_obs.py``, which needs the
  simulator. Such files are refused here with that hint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from protege.atomic import atomic_file
from protege.data.store import EPISODE_COLUMNS, DatasetError, EpisodeStore, episode_column, episode_returns
from protege.formats.files import stored_dtype
from protege.formats.hdf5 import READ_ERRORS, attribute, create_file, write_array

OBSERVATION_PREFIX = "observation."
IMAGE_PREFIX = "observation.images."
IMAGE_SUFFIX = "_image"
SIM_STATE = "observation.sim_state"
STATES = "states"  # the demo dataset holding simulator states
DEMO_PREFIX = "demo_"
GYM_TYPE = 2  # robomimic.envs.env_base.EnvType.GYM_TYPE
FPS_ATTR = "fps"
REWARD_MISSING_ATTR = "protege_reward_missing"
EPISODE_COLUMNS_ATTR = "protege_episode_columns"
NUMERIC_KINDS = "biuf"
ROBOMIMIC_DEMO_ATTRS = ("num_samples", "model_file", "ep_meta", "camera_info")
FRAME_NDIM = {"actions": 2, "rewards": 1, STATES: 2}  # required ndim of the demo datasets that have one


# ------------------------------------------------------------------------------------- detection


def looks_like_robomimic(path: Path) -> bool:
    """An HDF5 file with a ``data`` group holding ``env_args`` or ``demo_*`` groups."""
    try:
        path = Path(path)
        if not (path.is_file() and h5py.is_hdf5(path)):
            return False
        with h5py.File(path, "r") as file:
            data = file.get("data")
            return isinstance(data, h5py.Group) and (
                "env_args" in data.attrs or any(name.startswith(DEMO_PREFIX) for name in data)
            )
    except Exception:  # detection never raises: anything unreadable is just not robomimic
        return False


# -------------------------------------------------------------------------------------- key names


def _store_key(name: str) -> str:
    """Dataset path in a demo (``obs/<key>`` or ``states``) -> protege observation key."""
    if name == STATES:
        return SIM_STATE
    short = name.removeprefix("obs/")
    if short.endswith(IMAGE_SUFFIX) and len(short) > len(IMAGE_SUFFIX):
        return IMAGE_PREFIX + short[: -len(IMAGE_SUFFIX)]
    return OBSERVATION_PREFIX + short


def _robomimic_name(key: str) -> str:
    """Protege observation key -> dataset path in a demo (``obs/<key>`` or ``states``)."""
    if key == SIM_STATE:
        return STATES
    if key.startswith(IMAGE_PREFIX) and len(key) > len(IMAGE_PREFIX):
        return f"obs/{key[len(IMAGE_PREFIX) :]}{IMAGE_SUFFIX}"
    return f"obs/{key.removeprefix(OBSERVATION_PREFIX)}"


# ----------------------------------------------------------------------------------------- reading


def read_robomimic(
    path: Path, obs_keys: Sequence[str] | None = None, images: bool = True, progress: bool = False
) -> EpisodeStore:
    """Read a robomimic HDF5 file into an EpisodeStore.

    ``obs_keys`` (protege names) picks the observations; ``images=False`` skips image keys when
    ``obs_keys`` is None. Datasets not asked for are never read. Malformed data raises
    DatasetError naming the file, the demo and the key.
    """
    path = Path(path)
    try:
        file = h5py.File(path, "r")
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: no such robomimic file") from error
    except OSError as error:
        raise DatasetError(f"{path}: cannot open HDF5 file, it may be truncated or corrupt ({error})") from error
    with file:
        try:
            parts, fps = _read_file(file, path, obs_keys, images, progress)
        except DatasetError:
            raise
        except READ_ERRORS as error:
            raise DatasetError(
                f"{path}: cannot read HDF5 file, it may be truncated or corrupt ({type(error).__name__}: {error})"
            ) from error
    try:
        return EpisodeStore(**parts, **({} if fps is None else {"fps": fps}))
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from error


def _read_file(
    file: h5py.File, path: Path, obs_keys: Sequence[str] | None, images: bool, progress: bool
) -> tuple[dict, int | None]:
    """EpisodeStore arguments (and the control rate) from an open file."""
    data = _group(file, "data", path)
    demos = _sorted_demos(data, path)
    env_args = _env_args(data, path)
    sources = _chosen_sources(_available_sources(data[demos[0]], f"{path} {demos[0]}"), obs_keys, images, path)
    rewards = not data.attrs.get(REWARD_MISSING_ATTR, False) and any("rewards" in data[demo] for demo in demos)
    names = ["actions", *sources.values(), *(["rewards"] if rewards else [])]
    lengths = np.array([_check_demo(data[demo], names, f"{path} {demo}") for demo in demos])
    arrays = _read_demos(data, demos, names, lengths, path, progress)
    parts = dict(
        obs={key: arrays[name] for key, name in sources.items()},
        action=arrays["actions"],
        episode_ends=np.cumsum(lengths),
        episodes=_episode_columns(data, demos, arrays.get("rewards"), lengths, path),
        reward=arrays.get("rewards"),
        task=env_args["env_name"],
        subsets=_subsets(file, demos, path),
    )
    return parts, _fps(data, env_args, path)


def _group(parent: h5py.Group, name: str, path: Path) -> h5py.Group:
    node = parent.get(name)
    if not isinstance(node, h5py.Group):
        raise DatasetError(
            f"{path}: no '{parent.name.rstrip('/')}/{name}' group; robomimic files keep their demos under 'data/'"
        )
    return node


def _sorted_demos(data: h5py.Group, path: Path) -> list[str]:
    """Demo names in robomimic's order, by integer suffix."""
    names = list(data)
    bad = [name for name in names if not (name.startswith(DEMO_PREFIX) and name[len(DEMO_PREFIX) :].isdigit())]
    if bad:
        raise DatasetError(
            f"{path}: 'data/{bad[0]}' is not named demo_<number>; robomimic needs every group in data/ to be"
        )
    if not names:
        raise DatasetError(f"{path}: 'data/' holds no demos")
    not_groups = [name for name in names if not isinstance(data[name], h5py.Group)]
    if not_groups:
        raise DatasetError(f"{path}: 'data/{not_groups[0]}' is not a group; each demo is a group of datasets")
    return sorted(names, key=lambda name: int(name[len(DEMO_PREFIX) :]))


def _env_args(data: h5py.Group, path: Path) -> dict:
    if "env_args" not in data.attrs:
        raise DatasetError(
            f"{path}: data has no 'env_args' attribute (robomimic's environment metadata, a JSON string)"
        )
    raw = data.attrs["env_args"]
    try:
        env_args = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError) as error:
        raise DatasetError(f"{path}: data attribute 'env_args' is not valid JSON ({error})") from error
    if not isinstance(env_args, dict) or not isinstance(env_args.get("env_name"), str):
        raise DatasetError(
            f"{path}: data attribute 'env_args' must be a JSON object with a string 'env_name', got {str(raw)[:80]!r}"
        )
    if not isinstance(env_args.get("env_kwargs", {}), dict):
        raise DatasetError(f"{path}: 'env_kwargs' in data attribute 'env_args' must be a JSON object")
    return env_args


def _fps(data: h5py.Group, env_args: dict, path: Path) -> int | None:
    """The written ``fps``, else robosuite's ``control_freq``, else None (the store default)."""
    fps = data.attrs.get(FPS_ATTR, env_args.get("env_kwargs", {}).get("control_freq"))
    if fps is None:
        return None
    if not isinstance(fps, (int, float, np.number)) or fps <= 0 or int(fps) != fps:
        raise DatasetError(
            f"{path}: the control rate (data attribute 'fps' or env_kwargs 'control_freq') "
            f"must be a positive integer, got {fps!r}"
        )
    return int(fps)


def _available_sources(demo: h5py.Group, where: str) -> dict[str, tuple[str, bool]]:
    """Protege key -> (dataset path in a demo, is an image), from the first demo."""
    if not isinstance(demo.get("obs"), h5py.Group):
        raise DatasetError(
            f"{where}: no 'obs' group; a raw robosuite file (states and actions only) needs its observations "
            "extracted first with robomimic's dataset_states_to_obs.py"
        )
    found = {f"obs/{name}": node for name, node in demo["obs"].items()}
    if isinstance(demo.get(STATES), h5py.Dataset):
        found[STATES] = demo[STATES]
    sources = {}
    for name, node in found.items():
        key = _store_key(name)
        if key in sources:
            raise DatasetError(f"{where}: '{name}' and '{sources[key][0]}' would both become '{key}'")
        frame_shape = node.shape[1:] if isinstance(node, h5py.Dataset) and node.shape else ()
        sources[key] = (name, name.endswith(IMAGE_SUFFIX) or len(frame_shape) == 3)
    return sources


def _chosen_sources(
    sources: dict[str, tuple[str, bool]], obs_keys: Sequence[str] | None, images: bool, path: Path
) -> dict[str, str]:
    """Protege key -> dataset path in a demo, for the keys to read."""
    if obs_keys is None:
        return {key: name for key, (name, image) in sources.items() if images or not image}
    unknown = [key for key in obs_keys if key not in sources]
    if unknown:
        raise DatasetError(f"{path}: no observation key(s) {unknown}; its keys: {', '.join(sources)}")
    return {key: sources[key][0] for key in obs_keys}


def _dataset(group: h5py.Group, name: str, where: str) -> h5py.Dataset:
    node = group.get(name)
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"{where}: no '{name}' dataset")
    if node.dtype.kind not in NUMERIC_KINDS:
        raise DatasetError(f"{where}: '{name}' has dtype {node.dtype}; protege reads only numeric data")
    if not node.shape:
        raise DatasetError(f"{where}: '{name}' is a scalar; expected one row per step")
    return node


def _check_demo(demo: h5py.Group, names: list[str], where: str) -> int:
    """The demo's length, after checking the shape of every dataset to be read (no data is read)."""
    steps = _dataset(demo, "actions", where).shape[0]
    if "num_samples" in demo.attrs and demo.attrs["num_samples"] != steps:
        raise DatasetError(
            f"{where}: attribute num_samples={demo.attrs['num_samples']} but 'actions' has {steps} steps"
        )
    if steps == 0:
        raise DatasetError(f"{where}: the demo has no steps")
    for name in names:
        shape = _dataset(demo, name, where).shape
        if shape[0] != steps:
            raise DatasetError(f"{where}: '{name}' has {shape[0]} steps but 'actions' has {steps}")
        if name in FRAME_NDIM and len(shape) != FRAME_NDIM[name]:
            raise DatasetError(f"{where}: '{name}' must have {FRAME_NDIM[name]} dimensions, got shape {shape}")
    return steps


def _read_demos(
    data: h5py.Group, demos: list[str], names: list[str], lengths: np.ndarray, path: Path, progress: bool
) -> dict[str, np.ndarray]:
    """Dataset path -> (N, ...) array over all demos, filled demo by demo into preallocated arrays."""
    first = data[demos[0]]
    arrays = {
        name: np.empty((lengths.sum(), *first[name].shape[1:]), stored_dtype(first[name].dtype)) for name in names
    }
    ends = np.cumsum(lengths)
    bar = tqdm(demos, desc=f"reading {path.name}", unit="demo", disable=not progress)
    for demo, start, end in zip(bar, ends - lengths, ends):
        for name, array in arrays.items():
            _fill(array[start:end], data[demo], name, f"{path} {demo}")
    return arrays


def _fill(target: np.ndarray, demo: h5py.Group, name: str, where: str) -> None:
    """Read one demo's dataset into ``target`` (cast to its dtype), refusing NaN/inf and odd shapes."""
    source = _dataset(demo, name, where)
    if source.shape[1:] != target.shape[1:]:
        raise DatasetError(
            f"{where}: '{name}' has frames of shape {source.shape[1:]}, the first demo's have {target.shape[1:]}"
        )
    try:
        values = source[()]
    except OSError as error:
        raise DatasetError(f"{where}: cannot read '{name}', the file may be truncated or corrupt ({error})") from error
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32's range becomes inf, refused below
        target[...] = values
    if target.dtype.kind == "f" and not np.isfinite(target).all():
        step = int(np.nonzero(~np.isfinite(target.reshape(len(target), -1)).all(axis=1))[0][0])
        raise DatasetError(
            f"{where}: '{name}' has NaN/inf values (first at step {step}) or values beyond float32's range"
        )


def _episode_columns(
    data: h5py.Group, demos: list[str], rewards: np.ndarray | None, lengths: np.ndarray, path: Path
) -> dict[str, np.ndarray]:
    """Per-episode columns from demo attributes; ``return`` defaults to the sum of the rewards."""
    names = _written_column_names(data, path) or list(EPISODE_COLUMNS)
    columns = {
        name: _episode_column(data, demos, name, path)
        for name in names
        if all(name in data[demo].attrs for demo in demos)
    }
    if "return" not in columns and rewards is not None:
        columns["return"] = episode_returns(rewards, np.cumsum(lengths))
    return columns


def _written_column_names(data: h5py.Group, path: Path) -> list[str]:
    """The per-episode column names protege wrote (none in other robomimic files)."""
    try:
        names = json.loads(data.attrs.get(EPISODE_COLUMNS_ATTR, "[]"))
    except (TypeError, ValueError) as error:
        raise DatasetError(f"{path}: data attribute '{EPISODE_COLUMNS_ATTR}' is not valid JSON ({error})") from error
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise DatasetError(f"{path}: data attribute '{EPISODE_COLUMNS_ATTR}' must be a JSON list of names")
    return names


def _episode_column(data: h5py.Group, demos: list[str], name: str, path: Path) -> np.ndarray:
    values = [data[demo].attrs[name] for demo in demos]
    values = [value.decode() if isinstance(value, bytes) else value for value in values]
    if any(np.ndim(value) != 0 for value in values):
        raise DatasetError(f"{path}: demo attribute '{name}' must be one scalar per demo")
    if name in EPISODE_COLUMNS:
        try:
            return episode_column(name, np.array(values, dtype=object), labels=demos)
        except DatasetError as error:
            raise DatasetError(f"{path}: demo attribute {error}") from error
    try:
        return np.asarray(values, dtype=object if isinstance(values[0], str) else None)
    except (TypeError, ValueError) as error:
        raise DatasetError(f"{path}: demo attribute '{name}' does not convert to an array ({error})") from error


def _subsets(file: h5py.File, demos: list[str], path: Path) -> dict[str, np.ndarray]:
    """``mask/<filter_key>`` demo-name lists -> episode ids in the sorted demo order."""
    if "mask" not in file:
        return {}
    index = {demo: i for i, demo in enumerate(demos)}
    subsets = {}
    for name, node in _group(file, "mask", path).items():
        if (
            not isinstance(node, h5py.Dataset)
            or node.ndim != 1
            or not (node.dtype.kind == "S" or h5py.check_string_dtype(node.dtype))
        ):
            raise DatasetError(f"{path}: 'mask/{name}' must be a 1-D dataset of demo names (bytes)")
        members = [member.decode() if isinstance(member, bytes) else member for member in node[()]]
        missing = [member for member in members if member not in index]
        if missing:
            raise DatasetError(f"{path}: 'mask/{name}' names demo '{missing[0]}', which is not in data/")
        subsets[name] = np.array([index[member] for member in members], dtype=np.int64)
    return subsets


# ----------------------------------------------------------------------------------------- writing


def write_robomimic(store: EpisodeStore, path: Path, *, overwrite: bool = False, progress: bool = False) -> Path:
    """Write ``store`` as a robomimic HDF5 file that robomimic's SequenceDataset can train on.

    The file is written to a hidden sibling and renamed into place, so a killed write never
    leaves a half-written ``path``. An existing ``path`` raises FileExistsError unless ``overwrite``.
    """
    path = Path(path)
    store.validate()
    targets = _targets(store)
    _refuse_existing_file(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as staging:
        with create_file(staging) as file:
            _write_file(store, file, targets, progress)
        _refuse_existing_file(path, overwrite)
    return path


def _refuse_existing_file(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise FileExistsError(f"{path} is a folder; a robomimic dataset is one .hdf5 file")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")


def _targets(store: EpisodeStore) -> dict[str, str]:
    """Protege key -> dataset path in a demo, after checking the store reads back as it is."""
    if store.fps <= 0 or int(store.fps) != store.fps:
        raise DatasetError(f"fps must be a positive integer, got {store.fps}")
    targets = {key: _robomimic_name(key) for key in store.obs}
    for key, name in targets.items():
        short = key.removeprefix(OBSERVATION_PREFIX)
        if not key.startswith(OBSERVATION_PREFIX) or not short or "/" in short:
            raise DatasetError(f"observation key '{key}' must be '{OBSERVATION_PREFIX}<name>' with no '/' in the name")
        if _store_key(name) != key:
            raise DatasetError(
                f"observation key '{key}' would be written as '{name}' and read back as '{_store_key(name)}'; rename it"
            )
        if key == SIM_STATE and store.obs[key].ndim != 2:
            raise DatasetError(
                f"'{SIM_STATE}' becomes robomimic's 'states' and must have shape (N, S), got {store.obs[key].shape}"
            )
    for name in store.subsets:
        if not name or "/" in name:
            raise DatasetError(f"episode subset name {name!r} cannot be a robomimic filter key (empty or with '/')")
    for name, values in store.episodes.items():
        if np.ndim(values) != 1 or name in ROBOMIMIC_DEMO_ATTRS:
            raise DatasetError(
                f"episode column '{name}' must hold one scalar per episode and not be one of {ROBOMIMIC_DEMO_ATTRS}"
            )
    return targets


def _write_file(store: EpisodeStore, file: h5py.File, targets: dict[str, str], progress: bool) -> None:
    data = file.create_group("data")
    data.attrs["total"] = store.num_frames
    data.attrs["env_args"] = attribute(
        json.dumps({"env_name": store.task, "type": GYM_TYPE, "env_kwargs": {}}, indent=4)
    )
    data.attrs[FPS_ATTR] = int(store.fps)
    data.attrs[REWARD_MISSING_ATTR] = store.reward is None
    data.attrs[EPISODE_COLUMNS_ATTR] = attribute(json.dumps(list(store.episodes)))
    reward = np.zeros(store.num_frames, np.float32) if store.reward is None else store.reward.astype(np.float32)
    bar = tqdm(range(store.num_episodes), desc="writing robomimic demos", unit="demo", disable=not progress)
    for episode, start, end in zip(bar, store.episode_starts, store.episode_ends):
        demo = data.create_group(f"{DEMO_PREFIX}{episode}")
        _write_demo(demo, store, targets, reward, episode, slice(start, end))
    for name, ids in store.subsets.items():
        write_array(file, f"mask/{name}", np.array([f"{DEMO_PREFIX}{i}" for i in ids], dtype="S"))


def _write_demo(
    demo: h5py.Group, store: EpisodeStore, targets: dict[str, str], reward: np.ndarray, episode: int, rows: slice
) -> None:
    steps = rows.stop - rows.start
    demo.attrs["num_samples"] = steps
    for name, values in store.episodes.items():
        value = values[episode]
        demo.attrs[name] = attribute(str(value)) if values.dtype == object else value
    write_array(demo, "actions", store.action[rows].astype(np.float32))
    write_array(demo, "rewards", reward[rows])
    write_array(demo, "dones", (np.arange(steps) == steps - 1).astype(np.int64))
    for group in ("obs", "next_obs"):
        demo.create_group(group, track_order=True)  # h5py then lists the keys in the store's order
    for key, name in targets.items():
        values = store.obs[key][rows].astype(stored_dtype(store.obs[key].dtype))
        compression = "gzip" if values.ndim == 4 else None
        write_array(demo, name, values, compression=compression)
        if name != STATES:
            following = np.concatenate([values[1:], values[-1:]])  # next_obs: last frame repeated
            write_array(demo, f"next_{name}", following, compression=compression)
