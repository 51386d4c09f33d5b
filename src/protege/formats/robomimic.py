"""robomimic HDF5 datasets (ARISE-Initiative/robomimic), read and written.

One HDF5 file, laid out the way robomimic's ``dataset_states_to_obs.py`` writes it::

    data/                        attrs: total (frames), env_args (JSON: env_name, type, env_kwargs);
                                 protege's: protege_action_center, protege_action_half_range
                                 ((A,) float64, when actions were scaled), fps, protege_* (below)
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
- Actions: when ``data`` has ``protege_action_center`` ``c`` and ``protege_action_half_range``
  ``h`` (written by protege, see below) the store gets ``c + h * actions`` (in float64, then
  float32; a ``c`` of 0 is not added, which keeps a -0.0): the raw units the actions had before
  export. Without them actions are read as they
  are. Attributes of the wrong shape, non-finite, or a half-range <= 0 are a DatasetError naming
  the file and the attribute.
- ``next_obs`` and ``dones`` are not read: frames pair each observation with its action, and
  episode boundaries are the demo groups. The observation after a demo's last action (its last
  ``next_obs``) therefore has no place in the store and is dropped.
- ``mask/<filter_key>`` -> ``subsets[filter_key]`` (episode ids in the sorted order).
- ``env_args`` is kept whole in ``store.format_meta["robomimic"]["env_args"]``, so a robomimic
  file read, saved in any protege format and written back gives robomimic the same environment
  metadata (robosuite's env_kwargs, controller configs, env_version). ``protege_format_meta``
  (JSON) holds the other formats' entries of ``format_meta`` when protege wrote the file.
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
``env_args`` is the one in ``format_meta["robomimic"]`` when its ``env_name`` is the store's task
(the store came from a robomimic file), else ``{"env_name": store.task, "type": 2 (robomimic's
GYM_TYPE), "env_kwargs": {}}``, from which robomimic cannot build rollout envs. Per-episode
columns become demo attributes (robomimic ignores unknown attributes) and their names the
``protege_episode_columns`` data attribute; ``fps`` is a data attribute. A round trip store ->
file -> store is bit-exact for float32/uint8 data, actions included.

Actions are scaled into [-1, 1] per dimension, because robomimic expects them there: its
policies squash their outputs to [-1, 1] (BC on raw PushT pixels trains without an error and
cannot fit) and its ``get_dataset_info.py`` refuses anything else. The bounds are the data's own
range per dimension (min and max over all frames; a constant dimension gets half-range 1), known
at export time: ``actions = (raw - c) / h`` with ``c`` the centre and ``h`` the half-range,
written as float64 in the file with ``c`` and ``h`` as the data attributes above, so a policy
trained in robomimic outputs [-1, 1] and ``c + h * output`` maps it back to the store's units.
The scaled actions are float64 because float32 ones would not read back exactly (rounding the
scaled value costs up to ``h`` * 2^-24, more than a float32 step of the raw value when ``h`` is
large); in float64, ``c + h * actions`` rounded to float32 gives every original back, which the
writer checks per dimension. A dimension where it would not (a -0.0, which comes back +0.0, or a
nonzero value within ~|c| * 2^-29 of zero) is scaled about zero by the power of two at or above
its largest magnitude instead: exact for any float32, still within [-1, 1], though not centred.
Actions already inside [-1, 1] (robosuite's controllers, robomimic's own datasets) are written
unscaled as float32, with no attributes, so those files stay as robomimic users have them.

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
import warnings
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from protege.atomic import atomic_file
from protege.data.store import EPISODE_COLUMNS, DatasetError, EpisodeStore, episode_column, episode_returns
from protege.formats.files import stored_dtype
from protege.formats.hdf5 import READ_ERRORS, attribute, create_file, text, write_array
from protege.progress import progress_bar

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
FORMAT_META_ATTR = "protege_format_meta"  # EpisodeStore.format_meta of the other formats, JSON
ACTION_CENTER_ATTR = "protege_action_center"  # (A,) float64: raw action = center + half_range * file action
ACTION_HALF_RANGE_ATTR = "protege_action_half_range"  # (A,) float64, > 0
FORMAT = "robomimic"  # this format's entry in EpisodeStore.format_meta
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
    scale = _action_scale(data, data[demos[0]]["actions"].shape[1], path)
    arrays = _read_demos(data, demos, names, lengths, path, progress, {} if scale is None else {"actions": np.float64})
    parts = dict(
        obs={key: arrays[name] for key, name in sources.items()},
        action=arrays["actions"] if scale is None else _unscaled(arrays["actions"], *scale, path),
        episode_ends=np.cumsum(lengths),
        episodes=_episode_columns(data, demos, arrays.get("rewards"), lengths, path),
        reward=arrays.get("rewards"),
        task=env_args["env_name"],
        subsets=_subsets(file, demos, path),
        format_meta={**_format_meta(data, path), FORMAT: {"env_args": env_args}},
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
    data: h5py.Group,
    demos: list[str],
    names: list[str],
    lengths: np.ndarray,
    path: Path,
    progress: bool,
    dtypes: dict[str, type],
) -> dict[str, np.ndarray]:
    """Dataset path -> (N, ...) array over all demos, filled demo by demo into preallocated arrays
    (of ``stored_dtype``, or ``dtypes[name]``: scaled actions are read as float64)."""
    first = data[demos[0]]
    arrays = {
        name: np.empty((lengths.sum(), *first[name].shape[1:]), dtypes.get(name, stored_dtype(first[name].dtype)))
        for name in names
    }
    ends = np.cumsum(lengths)
    bar = progress_bar(demos, desc=f"reading {path.name}", unit="demo", disable=not progress)
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


def _action_scale(data: h5py.Group, action_dim: int, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The (A,) float64 centre and half-range the actions were scaled by, or None (actions as they are)."""
    present = [name in data.attrs for name in (ACTION_CENTER_ATTR, ACTION_HALF_RANGE_ATTR)]
    if not any(present):
        return None
    if not all(present):
        have, lack = (ACTION_CENTER_ATTR, ACTION_HALF_RANGE_ATTR)[:: 1 if present[0] else -1]
        raise DatasetError(f"{path}: data attribute '{have}' without '{lack}'; the action scale needs both")
    scale = []
    for name in (ACTION_CENTER_ATTR, ACTION_HALF_RANGE_ATTR):
        value = np.asarray(data.attrs[name])
        if value.dtype.kind not in "iuf" or value.shape != (action_dim,) or not np.isfinite(value).all():
            raise DatasetError(
                f"{path}: data attribute '{name}' must be {action_dim} finite numbers (one per action dimension), "
                f"got {value.dtype} of shape {value.shape}: {str(value.tolist())[:80]}"
            )
        scale.append(value.astype(np.float64))
    if not (scale[1] > 0).all():
        raise DatasetError(
            f"{path}: data attribute '{ACTION_HALF_RANGE_ATTR}' must be positive, got {scale[1].tolist()[:8]}"
        )
    return scale[0], scale[1]


def _unscaled(scaled: np.ndarray, center: np.ndarray, half_range: np.ndarray, path: Path) -> np.ndarray:
    """(N, A) float64 actions as written -> (N, A) float32 in the store's units (``_scaled`` inverted)."""
    with np.errstate(over="ignore", invalid="ignore"):
        action = _raw(scaled, center, half_range).astype(np.float32)
    if not np.isfinite(action).all():
        raise DatasetError(
            f"{path}: 'actions' scaled back by data attributes '{ACTION_CENTER_ATTR}' and "
            f"'{ACTION_HALF_RANGE_ATTR}' go beyond float32's range"
        )
    return action


def _format_meta(data: h5py.Group, path: Path) -> dict[str, dict]:
    """Other formats' metadata a store carried when protege wrote the file (EpisodeStore.format_meta)."""
    if FORMAT_META_ATTR not in data.attrs:
        return {}
    try:
        meta = json.loads(text(data.attrs[FORMAT_META_ATTR]))
    except (TypeError, ValueError) as error:
        raise DatasetError(f"{path}: data attribute '{FORMAT_META_ATTR}' is not valid JSON ({error})") from error
    if not isinstance(meta, dict) or not all(isinstance(value, dict) for value in meta.values()):
        raise DatasetError(f"{path}: data attribute '{FORMAT_META_ATTR}' must be a JSON object of objects")
    return meta


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
    _warn_unscaled_observations(store)
    return path


#: Low-dim observations beyond this magnitude saturate robomimic's networks (measured on PushT).
OBSERVATION_SCALE_WARNING = 10.0


def _warn_unscaled_observations(store: EpisodeStore) -> None:
    """Warn of wide observations: robomimic trains on them as stored (its ``hdf5_normalize_obs``
    fails in 0.3.0, a shape mismatch for batches larger than one), and raw PushT states (pixels,
    0..512) kept its BC at the mean-action error. Observations are data, so they are written as
    they are and the user is told."""
    wide = {
        key: (float(values.min()), float(values.max()))
        for key, values in store.obs.items()
        if values.ndim == 2 and values.dtype.kind == "f" and np.abs(values).max() > OBSERVATION_SCALE_WARNING
    }
    if wide:
        ranges = ", ".join(f"'{key}' in [{low:.4g}, {high:.4g}]" for key, (low, high) in wide.items())
        warnings.warn(
            f"robomimic export: {ranges}; robomimic trains on observations as stored and its hdf5_normalize_obs "
            "fails in 0.3.0, so its BC may not fit them: scale them before training there",
            stacklevel=3,
        )


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
    try:
        json.dumps(store.format_meta)
    except (TypeError, ValueError) as error:
        raise DatasetError(f"format_meta must be JSON-able ({error})") from error
    return targets


def _write_file(store: EpisodeStore, file: h5py.File, targets: dict[str, str], progress: bool) -> None:
    data = file.create_group("data")
    data.attrs["total"] = store.num_frames
    data.attrs["env_args"] = attribute(json.dumps(_written_env_args(store), indent=4))
    data.attrs[FPS_ATTR] = int(store.fps)
    data.attrs[REWARD_MISSING_ATTR] = store.reward is None
    data.attrs[EPISODE_COLUMNS_ATTR] = attribute(json.dumps(list(store.recorded_episodes())))
    others = {name: meta for name, meta in store.format_meta.items() if name != FORMAT}
    if others:
        data.attrs[FORMAT_META_ATTR] = attribute(json.dumps(others))
    action = store.action.astype(np.float32)  # (N, A) what the file holds unscaled, and what reads back
    scale = action_scale(action)
    if scale is not None:
        data.attrs[ACTION_CENTER_ATTR], data.attrs[ACTION_HALF_RANGE_ATTR] = scale
        action = _scaled(action, *scale)  # (N, A) float64 in [-1, 1]
    reward = np.zeros(store.num_frames, np.float32) if store.reward is None else store.reward.astype(np.float32)
    bar = progress_bar(range(store.num_episodes), desc="writing robomimic demos", unit="demo", disable=not progress)
    for episode, start, end in zip(bar, store.episode_starts, store.episode_ends):
        demo = data.create_group(f"{DEMO_PREFIX}{episode}")
        _write_demo(demo, store, targets, action, reward, episode, slice(start, end))
    for name, ids in store.subsets.items():
        write_array(file, f"mask/{name}", np.array([f"{DEMO_PREFIX}{i}" for i in ids], dtype="S"))


def _write_demo(
    demo: h5py.Group,
    store: EpisodeStore,
    targets: dict[str, str],
    action: np.ndarray,
    reward: np.ndarray,
    episode: int,
    rows: slice,
) -> None:
    steps = rows.stop - rows.start
    demo.attrs["num_samples"] = steps
    for name, values in store.recorded_episodes().items():
        value = values[episode]
        demo.attrs[name] = attribute(str(value)) if values.dtype == object else value
    write_array(demo, "actions", action[rows])
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


def _written_env_args(store: EpisodeStore) -> dict:
    """The env_args read from a robomimic file (format_meta) when they name the store's task, else
    the least robomimic accepts: a gym environment of the task's name, no kwargs."""
    kept = store.format_meta.get(FORMAT, {}).get("env_args")
    if isinstance(kept, dict) and kept.get("env_name") == store.task:
        return kept
    return {"env_name": store.task, "type": GYM_TYPE, "env_kwargs": {}}


def action_scale(action: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The (A,) float64 ``(center, half_range)`` that map float32 ``action`` (N, A) into [-1, 1]
    with ``_scaled``, so that ``_unscaled`` gives it back bit-exactly; None when it is already inside.

    Per dimension: the centre and half of the data's range (1 for a constant dimension). Where
    that does not read back bit-exactly (a -0.0, which ``(raw - c) / h`` and back returns as +0.0
    when ``c`` is nonzero, or a nonzero value so close to zero that float64 cannot hold it beside
    the centre), the dimension is scaled about zero (``c`` = 0, never added) by the power of two
    at or above its largest magnitude instead: exact for every float32, and still inside [-1, 1].
    """
    action = np.asarray(action, dtype=np.float32)
    low, high = action.min(axis=0).astype(np.float64), action.max(axis=0).astype(np.float64)
    if low.min() >= -1 and high.max() <= 1:
        return None
    center, half_range = (low + high) / 2, np.where(high > low, (high - low) / 2, 1.0)
    inexact = ~_round_trips(action, center, half_range)
    largest = np.maximum(-low, high)[inexact]
    mantissa, exponent = np.frexp(largest)
    center[inexact] = 0.0
    half_range[inexact] = np.where(largest == 0, 1.0, np.ldexp(1.0, exponent - (mantissa == 0.5)))
    assert _round_trips(action, center, half_range).all(), "power-of-two action scaling must be exact"
    return center, half_range


def _scaled(action: np.ndarray, center: np.ndarray, half_range: np.ndarray) -> np.ndarray:
    """(N, A) float32 actions -> (N, A) float64 ``(action - center) / half_range``."""
    return (action.astype(np.float64) - center) / half_range


def _raw(scaled: np.ndarray, center: np.ndarray, half_range: np.ndarray) -> np.ndarray:
    """(N, A) float64 ``center + half_range * scaled``, the centre added only where it is nonzero
    (adding +0.0 would turn a -0.0 into +0.0)."""
    raw = half_range * scaled
    return np.where(center != 0, center + raw, raw)


def _round_trips(action: np.ndarray, center: np.ndarray, half_range: np.ndarray) -> np.ndarray:
    """(A,) bool: the dimension reads back bit-exactly and its scaled values lie in [-1, 1]."""
    scaled = _scaled(action, center, half_range)
    back = _raw(scaled, center, half_range).astype(np.float32)
    return (back.view(np.uint32) == action.view(np.uint32)).all(axis=0) & (np.abs(scaled) <= 1).all(axis=0)
