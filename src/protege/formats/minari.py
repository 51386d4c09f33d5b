"""Minari datasets (Farama Foundation's offline-RL format, HDF5 storage), read and written.

A Minari dataset is a folder named by its dataset id, ``<namespace>/<name>-v<version>``, under the
datasets root (``$MINARI_DATASETS_PATH``, default ``~/.minari/datasets``)::

    <root>/fetch/namespace_metadata.json                   optional; not needed to load
    <root>/fetch/pickplace/expert-v0/data/metadata.json    dataset_id, spaces (JSON strings), counts
    <root>/fetch/pickplace/expert-v0/data/main_data.hdf5   one group per episode:

    episode_<i>/            attrs: id (= i), total_steps, seed (optional), options/... (optional)
        observations        dataset (T+1, ...) for an array space, or a group of them for a Dict
                            space (nested Dicts nest groups; Tuple members are ``_index_<j>``)
        actions             (T, ...)
        rewards             (T,)
        terminations        (T,) bool
        truncations         (T,) bool
        infos/              optional group of per-step datasets (T+1 when recorded by Minari)

Mapping to the EpisodeStore (``read_minari``):

- Observation leaves: the Dict key ``observation`` (or an array space, which is read as if it
  were that key) -> ``observation.state``; any other key path ``a/b`` -> ``observation.a.b``;
  leaves with 3-D frames (images) -> ``observation.images.a.b``. Keys come state first, then in
  the space's order (gymnasium sorts Dict keys). Text leaves are skipped.
- Minari keeps T+1 observations per episode (the last one follows the last action); the final
  observation is dropped, so every frame pairs an observation with the action taken from it.
- Numbers are read as float32 (observations, actions, rewards), except uint8 observations
  (images), which keep their bytes; discrete actions become one float32 column.
- ``success``: any true ``infos/success`` (or ``infos/is_success``, gymnasium-robotics' name) in
  the episode, else the last ``terminations`` flag; ``return``: the sum of the rewards;
  ``seed``: the episode's ``seed`` attribute (-1 when absent). Episodes written by protege carry
  their exact per-episode columns as ``protege/<column>`` attributes, which win when present.
- ``task``: the dataset id; ``fps``: 10, as Minari records no control rate (the env spec does
  not either). Both, and the episode subsets, are taken from a ``protege`` object in
  metadata.json when there is one (Minari keeps unknown metadata keys and ignores them).
- ``format_meta["minari"]``: metadata.json as read, less what a write computes (counts, size,
  storage, version, the ``protege`` object): the serialized spaces and ``env_spec`` /
  ``eval_env_spec`` as the exact strings of the file (text only: protege never parses an EnvSpec
  or makes its environment), the source's ``dataset_id``, and every descriptive entry (author,
  author_email, algorithm_name, description, code_permalink, ref_min_score, ref_max_score,
  num_episodes_average_score, requirements, and keys Minari does not know). The observation
  space also fixes each key's path (an array space is ``observations`` itself), so nothing
  else is kept for the layout. Other formats' ``format_meta`` rides in the ``protege`` object.

Writing (``write_minari``) inverts the mapping. With ``format_meta["minari"]`` whose spaces
still describe the data (the same observation keys, each of its space's shape, within Box
bounds; actions likewise), those spaces are written verbatim and each key goes back to its path
in them, stored in the space's dtype where that conversion is exact (float32 data under a
float64 Box, whole numbers under Discrete); ``env_spec`` and the descriptive entries are
written back as read, while the spaces fit or not. Otherwise (no source, or a warning naming
the key or bound that does not fit, e.g. fewer keys selected) ``observation.state`` -> Dict key
``observation``, ``observation.images.<k>`` (3-D frames) and ``observation.<k>`` -> key path
``k`` split at dots, under a Dict of float32 Boxes with infinite bounds (uint8 Boxes 0..255 for
uint8 data) and a float32 action Box spanning the data's range. Either way: the last frame
repeated as the final observation, rewards (zeros when the store has none, marked so they read
back as none), ``terminations`` true at the last step of a successful episode and
``truncations`` at the last step of the others, ``infos/success`` (T+1: the reset info, then one
per step), ``jpeg_encoding`` false so images stay bit-exact. The store's ``task``, ``fps`` and
``subsets`` go in the ``protege`` metadata object, its per-episode columns in episode
attributes, so a round trip gives back the same store. Not written back: other ``infos``, the
source's own terminated/truncated pattern (rebuilt from ``success``), episode ``options`` and
Minari's ``rewards_*`` episode statistics. The folder's name must be a Minari id (``name-v0``);
under the datasets root the id includes the namespace folders. Namespace metadata files are not
written.

Why minari and h5py both: ``minari.load_dataset`` (never with ``download``) validates the
metadata, parses the spaces and lists the episodes and their attributes, which reads no step
data; Minari's episode API then decodes every observation key of an episode at once, so the
per-step arrays are read with h5py, only for the keys asked for (JPEG frames decoded the way
Minari does).

Found out from Minari 0.5.4's files and code, not its docs:

- metadata.json sits in ``data/`` beside main_data.hdf5, whose root has no attributes; the
  episode id attribute is ``id``. Minari opens ``episode_<i>`` for ``i`` in
  ``range(total_episodes)`` of metadata.json; it never lists the groups, which h5py returns in
  name order (``episode_0, episode_1, episode_10, ...``). Episode attributes with ``/`` in their
  name come back from Minari as nested dicts.
- Stored dtypes need not match the spaces: FetchPickAndPlace data has float64 observations and
  actions under a float32 action space, and float32 rewards.
- ``jpeg_encoding`` defaults to true: uint8 image spaces of at least 32x32 with bounds 0..255 are
  stored as lossy JPEG bytes, and Minari decodes a dataset without the flag (written before
  0.5) as JPEG too, which fails on its raw frames; protege reads frames stored at the
  image's own shape as raw and decodes only rows of bytes.
- Without ``observation_space``/``action_space`` in metadata.json Minari calls
  ``gym.make(env_spec)``, importing the entry point named in the file; protege refuses such
  datasets instead. ``minari.load_dataset`` also creates the datasets root if it is missing.
- Dataset ids without ``-v<version>`` load, but break ``MinariDataset.spec``.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import minari
import numpy as np
from gymnasium import spaces
from minari.dataset.minari_dataset import parse_dataset_id
from minari.dataset.minari_storage import is_image_space
from minari.serialization import deserialize_space, serialize_space
from PIL import Image

from protege.atomic import staged_folder
from protege.data.store import EPISODE_COLUMNS, STATE, DatasetError, EpisodeStore
from protege.formats.files import json_digest, read_json_object, stored_dtype, write_json
from protege.formats.hdf5 import READ_ERRORS, attribute, create_file, text, write_array
from protege.progress import progress_bar

DATASETS_PATH_VARIABLE = "MINARI_DATASETS_PATH"
MAIN_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
#: The layout written here is Minari 0.5.4's; a Minari that no longer reads it will say so.
MINARI_VERSION = "0.5.4"
STATE_NAME = "observation"  # Minari's Dict key for the proprioceptive state (gymnasium-robotics)
OBSERVATION_PREFIX = "observation."
IMAGE_PREFIX = "observation.images."
SUCCESS_INFOS = ("success", "is_success")
PROTEGE = "protege"  # metadata.json object and episode attribute prefix for protege's extras
DEFAULT_FPS = 10
ARRAY_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
DIGEST = "digest"  # in the protege object of metadata.json: json_digest of the rest of the file
MINARI_ERRORS = (ValueError, KeyError, AssertionError, TypeError, OSError, NotImplementedError)
FORMAT = "minari"  # EpisodeStore.format_meta key: metadata.json as read, less what write_minari computes
COMPUTED = ("total_episodes", "total_steps", "data_format", "jpeg_encoding", "dataset_size", "minari_version", PROTEGE)
SPACES = ("observation_space", "action_space")
SPEC_ENTRIES = ("env_spec", "eval_env_spec")  # EnvSpec JSON strings: carried as text, never parsed or made here


@dataclass(frozen=True)
class Leaf:
    """One observation array: its protege key, its path under ``observations`` and its space."""

    key: str
    parts: tuple[str, ...]
    space: spaces.Space

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.space.shape)


@dataclass
class Episode:
    """The per-step arrays of one episode, the final observation already dropped."""

    obs: dict[str, np.ndarray]
    action: np.ndarray  # (T, A) float32
    reward: np.ndarray  # (T,) float32
    success: bool


# ------------------------------------------------------------------------------------ locating


def _datasets_root() -> Path:
    """Where Minari looks for dataset ids (the same rule as ``minari.storage.get_dataset_path``)."""
    configured = os.environ.get(DATASETS_PATH_VARIABLE)
    return Path(configured) if configured is not None else Path.home() / ".minari" / "datasets"


def _dataset_folder(path: Path) -> Path:
    """The folder holding ``data/metadata.json``: ``path`` itself, or ``path`` as an id under the root."""
    for folder in (path, _datasets_root() / path):
        if (folder / "data" / METADATA_FILE).is_file():
            return folder.resolve()
    raise DatasetError(
        f"no Minari dataset at '{path}': expected a dataset folder holding data/{METADATA_FILE} and data/{MAIN_FILE}, "
        f"or a dataset id under {DATASETS_PATH_VARIABLE} (now {_datasets_root()})"
    )


def looks_like_minari(path: Path) -> bool:
    """A Minari dataset folder, or a dataset id present under the datasets root."""
    try:
        _dataset_folder(Path(path))
    except (DatasetError, OSError):
        return False
    return True


@contextmanager
def _datasets_path(root: Path) -> Iterator[None]:
    """Point Minari at ``root`` for one call, then restore the variable as it was."""
    previous = os.environ.get(DATASETS_PATH_VARIABLE)
    os.environ[DATASETS_PATH_VARIABLE] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[DATASETS_PATH_VARIABLE]
        else:
            os.environ[DATASETS_PATH_VARIABLE] = previous


# ----------------------------------------------------------------------------------------- reading


def read_minari(
    path: Path, obs_keys: Sequence[str] | None = None, images: bool = True, progress: bool = False
) -> EpisodeStore:
    """Read a Minari HDF5 dataset (a folder, or an id under MINARI_DATASETS_PATH) into an EpisodeStore.

    ``obs_keys`` (protege names) limits the observations read; ``images=False`` skips image keys
    when ``obs_keys`` is None. Keys not asked for are never read from the file. Each episode's
    final observation (Minari's T+1-th) is dropped. Malformed data raises DatasetError naming the
    file, the episode and the key.
    """
    folder = _dataset_folder(Path(path))
    data_path = folder / "data"
    main = data_path / MAIN_FILE
    metadata = _read_metadata(data_path / METADATA_FILE)
    if not main.is_file():
        raise DatasetError(f"{main}: missing; a Minari HDF5 dataset keeps its episodes there")
    dataset = _load_with_minari(folder)
    names = metadata.get(PROTEGE, {}).get("keys") if isinstance(metadata.get(PROTEGE), dict) else None
    named = _observation_leaves(dataset.observation_space, main, names if isinstance(names, dict) else None)
    leaves = _chosen_leaves(named, obs_keys, images, main)
    action_shape = _action_shape(dataset.action_space, main)
    if len(dataset.episode_indices) == 0:
        raise DatasetError(f"{main}: the dataset has no episodes")
    attributes = _episode_attributes(dataset, main)
    episodes = _read_episodes(
        main, dataset.episode_indices, leaves, action_shape, dataset.storage.jpeg_encoding, progress
    )
    extras = _protege_metadata(metadata, data_path / METADATA_FILE)
    try:
        return EpisodeStore(
            obs={leaf.key: np.concatenate([episode.obs[leaf.key] for episode in episodes]) for leaf in leaves},
            action=np.concatenate([episode.action for episode in episodes]),
            episode_ends=np.cumsum([len(episode.action) for episode in episodes]),
            episodes=_episode_columns(episodes, attributes, written_by_protege="unrecorded" in extras),
            reward=np.concatenate([episode.reward for episode in episodes]) if extras.get("reward", True) else None,
            fps=extras.get("fps", DEFAULT_FPS),
            task=extras.get("task", dataset.id),
            subsets=extras.get("subsets", {}),
            format_meta={
                **extras.get("format_meta", {}),
                FORMAT: {key: value for key, value in metadata.items() if key not in COMPUTED},
            },
            unrecorded=frozenset(extras.get("unrecorded", [])),
        )
    except ValueError as error:
        raise DatasetError(f"{main}: {error}") from error


def _read_metadata(path: Path) -> dict:
    """metadata.json, checked for what protege needs before Minari reads it."""
    metadata = read_json_object(path, "every Minari dataset has data/metadata.json")
    for key in ("dataset_id", "minari_version", "data_format", "observation_space", "action_space"):
        if key not in metadata:
            why = " (protege does not rebuild spaces from env_spec: that would run the environment's code)"
            raise DatasetError(f"{path}: no '{key}' entry{why if 'space' in key else ''}")
    if metadata["data_format"] != "hdf5":
        raise DatasetError(
            f"{path}: data_format {metadata['data_format']!r} is not supported; protege reads 'hdf5' storage"
        )
    return metadata


def _load_with_minari(folder: Path) -> minari.MinariDataset:
    """``minari.load_dataset`` on the folder's id with its parent as the datasets root (no download)."""
    with _datasets_path(folder.parent):
        try:
            return minari.load_dataset(folder.name)
        except MINARI_ERRORS as error:
            where = folder / "data" / METADATA_FILE
            raise DatasetError(f"{where}: minari cannot load it ({type(error).__name__}: {error})") from error


def _protege_metadata(metadata: dict, path: Path) -> dict:
    """The ``protege`` object protege writes (task, fps, subsets, reward, format_meta), checked; {} when absent."""
    if PROTEGE not in metadata and metadata.get("algorithm_name") == PROTEGE:
        raise DatasetError(f"{path}: written by protege but its '{PROTEGE}' entry is missing; the file is damaged")
    extras = metadata.get(PROTEGE, {})
    checks = {
        "task": lambda value: isinstance(value, str),
        "fps": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
        "reward": lambda value: isinstance(value, bool),
        "subsets": lambda value: (
            isinstance(value, dict)
            and all(isinstance(ids, list) and all(isinstance(i, int) for i in ids) for ids in value.values())
        ),
        "format_meta": lambda value: isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()),
        "unrecorded": lambda value: isinstance(value, list) and set(value) <= set(EPISODE_COLUMNS),
        "keys": lambda value: isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
    }
    if not isinstance(extras, dict):
        raise DatasetError(f"{path}: '{PROTEGE}' must be an object, got {type(extras).__name__}")
    for name, value in extras.items():
        if name in checks and not checks[name](value):
            raise DatasetError(f"{path}: '{PROTEGE}.{name}' has an invalid value {value!r}")
    if DIGEST in extras:
        unsigned = {**metadata, PROTEGE: {k: v for k, v in extras.items() if k != DIGEST}}
        if json_digest(unsigned) != extras[DIGEST]:
            raise DatasetError(
                f"{path}: its content does not match the digest protege wrote with it, so it is damaged "
                f"(if you edited it on purpose, delete '{PROTEGE}.{DIGEST}')"
            )
    return extras


def _store_key(parts: tuple[str, ...], frame_shape: tuple[int, ...]) -> str:
    """Protege's name for the observation at key path ``parts`` (see the module docstring)."""
    if len(frame_shape) == 3:
        return IMAGE_PREFIX + ".".join(parts)
    return STATE if parts == (STATE_NAME,) else OBSERVATION_PREFIX + ".".join(parts)


def _observation_leaves(space: spaces.Space, where: Path | str, names: dict[str, str] | None = None) -> dict[str, Leaf]:
    """Every array leaf of the observation space, by protege key: the one protege wrote in ``names``
    (Minari path "a/b" -> key), else by convention (an array space is key 'observation')."""
    try:
        found = _space_leaves(space, ())
    except DatasetError as error:
        raise DatasetError(f"{where}: {error}") from error
    leaves: dict[str, Leaf] = {}
    for parts, leaf_space in found:
        if isinstance(leaf_space, spaces.Text):
            continue
        key = (names or {}).get("/".join(parts)) or _store_key(parts or (STATE_NAME,), tuple(leaf_space.shape))
        if key in leaves:
            clash = f"{'/'.join(leaves[key].parts)} and {'/'.join(parts)}"
            raise DatasetError(f"{where}: observation keys {clash} both map to '{key}'")
        leaves[key] = Leaf(key, parts, leaf_space)
    return dict(sorted(leaves.items(), key=lambda item: item[0] != STATE))


def _space_leaves(space: spaces.Space, parts: tuple[str, ...]) -> list[tuple[tuple[str, ...], spaces.Space]]:
    """Each (key path, leaf space) in the space's order; Text leaves included (the reader skips them)."""
    if isinstance(space, spaces.Dict):
        return [leaf for name, sub in space.spaces.items() for leaf in _space_leaves(sub, (*parts, name))]
    if isinstance(space, spaces.Tuple):
        return [leaf for i, sub in enumerate(space.spaces) for leaf in _space_leaves(sub, (*parts, f"_index_{i}"))]
    if isinstance(space, (spaces.Text, *ARRAY_SPACES)):
        return [(parts, space)]
    raise DatasetError(f"observation '{'/'.join(parts)}' has a {type(space).__name__} space, which protege cannot read")


def _chosen_leaves(leaves: dict[str, Leaf], obs_keys: Sequence[str] | None, images: bool, main: Path) -> list[Leaf]:
    if obs_keys is None:
        return [leaf for leaf in leaves.values() if images or len(leaf.shape) != 3]
    unknown = [key for key in obs_keys if key not in leaves]
    if unknown:
        raise DatasetError(f"{main}: no observation key(s) {unknown}; its keys: {', '.join(leaves)}")
    return [leaves[key] for key in obs_keys]


def _action_shape(space: spaces.Space, main: Path) -> tuple[int, ...]:
    if not isinstance(space, ARRAY_SPACES):
        raise DatasetError(
            f"{main}: the action space is a {type(space).__name__}; protege needs array actions (Box, Discrete)"
        )
    return tuple(space.shape)


def _episode_attributes(dataset: minari.MinariDataset, main: Path) -> list[dict]:
    """Each episode's attributes, as Minari reads them (``protege/x`` comes back as ``{'protege': {'x': ...}}``)."""
    try:
        return list(dataset.storage.get_episode_metadata(dataset.episode_indices))
    except MINARI_ERRORS as error:
        raise DatasetError(
            f"{main}: cannot read the episode attributes of the {len(dataset.episode_indices)} episodes metadata.json "
            f"announces; the file may be truncated or corrupt ({type(error).__name__}: {error})"
        ) from error


def _read_episodes(
    main: Path, indices: np.ndarray, leaves: list[Leaf], action_shape: tuple[int, ...], jpeg: bool, progress: bool
) -> list[Episode]:
    try:
        with h5py.File(main, "r") as file:
            _check_episode_count(file, len(indices), main)
            bar = progress_bar(indices, desc="reading Minari episodes", unit="episode", disable=not progress)
            return [_read_episode(file, int(index), leaves, action_shape, jpeg, main) for index in bar]
    except DatasetError:
        raise
    except READ_ERRORS as error:
        raise DatasetError(
            f"{main}: cannot read HDF5 file, it may be truncated or corrupt ({type(error).__name__}: {error})"
        ) from error


def _check_episode_count(file: h5py.File, announced: int, main: Path) -> None:
    """Minari reads ``range(total_episodes)`` and never lists the groups: groups beyond it would be
    dropped without a word, so the file must hold exactly the episodes metadata.json announces."""
    stored = sorted(name for name in file if name.startswith("episode_"))
    if len(stored) != announced:
        raise DatasetError(
            f"{main}: holds {len(stored)} episode groups but {METADATA_FILE} announces total_episodes={announced}; "
            "correct total_episodes (and total_steps) so no episode is dropped or missing"
        )


def _read_episode(
    file: h5py.File, index: int, leaves: list[Leaf], action_shape: tuple[int, ...], jpeg: bool, main: Path
) -> Episode:
    where = f"{main}: episode {index}"
    try:
        group = _node(file, (f"episode_{index}",), f"{main}")
        action = _numeric(_node(group, ("actions",), where), f"{where}: 'actions'")
        steps = len(action)
        if steps == 0 or action.shape[1:] != action_shape:
            expected = f"(steps >= 1, *{action_shape}) from the action space"
            raise DatasetError(f"{where}: 'actions' has shape {action.shape}, expected {expected}")
        obs = {leaf.key: _observation(group, leaf, jpeg, steps, where) for leaf in leaves}
        reward, terminations = (_per_step(group, name, steps, where) for name in ("rewards", "terminations"))
        success = _info_success(group, where)
    except (OSError, KeyError) as error:
        raise DatasetError(
            f"{where}: cannot be read, the file may be corrupt ({type(error).__name__}: {error})"
        ) from error
    return Episode(
        obs=obs,
        action=action.reshape(steps, -1).astype(np.float32),
        reward=reward.astype(np.float32),
        success=bool(terminations[-1]) if success is None else success,
    )


def _node(group: h5py.Group, parts: tuple[str, ...], where: str) -> h5py.Group | h5py.Dataset:
    node = group
    for depth, part in enumerate(parts):
        if not isinstance(node, h5py.Group) or part not in node:
            raise DatasetError(f"{where}: no '{'/'.join(parts[: depth + 1])}' in the file")
        node = node[part]
    return node


def _numeric(node: h5py.Group | h5py.Dataset, where: str) -> np.ndarray:
    """The whole dataset, refusing groups and non-numeric (string, object, compound) data before reading it."""
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"{where} is a group, expected an array")
    if node.dtype.kind not in "biuf":
        raise DatasetError(f"{where} holds {node.dtype} data, expected numbers")
    return node[()]


def _per_step(group: h5py.Group, name: str, steps: int, where: str) -> np.ndarray:
    values = _numeric(_node(group, (name,), where), f"{where}: '{name}'")
    if values.shape != (steps,):
        raise DatasetError(f"{where}: '{name}' has shape {values.shape}, expected ({steps},) like 'actions'")
    return values


def _observation(group: h5py.Group, leaf: Leaf, jpeg: bool, steps: int, where: str) -> np.ndarray:
    """The leaf's T+1 frames minus the final one, as float32 (uint8 kept); JPEG frames decoded."""
    name = "/".join(("observations", *leaf.parts))
    node = _node(group, ("observations", *leaf.parts), where)
    if jpeg and is_image_space(leaf.space) and getattr(node, "ndim", None) != 1 + len(leaf.shape):
        values = _decode_jpeg(node, f"{where}: '{name}'")
    else:
        values = _numeric(node, f"{where}: '{name}'")
    if len(values) != steps + 1:
        raise DatasetError(
            f"{where}: '{name}' has {len(values)} frames but 'actions' has {steps} steps; "
            f"Minari stores one more observation than actions ({steps + 1})"
        )
    if values.shape[1:] != leaf.shape:
        raise DatasetError(
            f"{where}: '{name}' has frames of shape {values.shape[1:]}; the observation space says {leaf.shape}"
        )
    return values[:-1].astype(stored_dtype(values.dtype), copy=False)


def _decode_jpeg(node: h5py.Group | h5py.Dataset, where: str) -> np.ndarray:
    """Frames Minari stored as JPEG bytes: rows of a uint8 array, or variable-length uint8 rows."""
    if not isinstance(node, h5py.Dataset) or not (
        node.dtype == np.uint8 or h5py.check_vlen_dtype(node.dtype) == np.uint8
    ):
        raise DatasetError(f"{where} should hold JPEG bytes (uint8 rows) but holds {getattr(node, 'dtype', 'a group')}")
    frames = []
    for row, encoded in enumerate(node[()]):
        try:
            frames.append(
                np.asarray(Image.open(io.BytesIO(np.asarray(encoded, dtype=np.uint8).tobytes())), dtype=np.uint8)
            )
        except (OSError, ValueError) as error:
            raise DatasetError(f"{where}: frame {row} is not a readable JPEG image ({error})") from error
    try:
        return np.stack(frames)
    except ValueError as error:
        raise DatasetError(f"{where}: frames decode to different shapes ({error})") from error


def _info_success(group: h5py.Group, where: str) -> bool | None:
    """Any true ``infos/success`` (or ``is_success``) in the episode; None when neither is recorded."""
    infos = group.get("infos")
    if not isinstance(infos, h5py.Group):
        return None
    name = next((name for name in SUCCESS_INFOS if name in infos), None)
    return None if name is None else bool(np.any(_numeric(infos[name], f"{where}: 'infos/{name}'")))


def _episode_columns(
    episodes: list[Episode], attributes: list[dict], written_by_protege: bool
) -> dict[str, np.ndarray]:
    """success/return/seed from the data, overridden by protege's own columns where every episode has them.
    Seeds are unrecorded when no episode has one, unless protege wrote the file (it lists what is unrecorded)."""
    columns = {
        "success": np.array([episode.success for episode in episodes]),
        "return": np.array([episode.reward.astype(np.float64).sum() for episode in episodes]),
    }
    if written_by_protege or any(attrs.get("seed") is not None for attrs in attributes):
        columns["seed"] = np.array([-1 if attrs.get("seed") is None else attrs["seed"] for attrs in attributes])
    stored = [attrs[PROTEGE] if isinstance(attrs.get(PROTEGE), dict) else {} for attrs in attributes]
    for name in set.intersection(*(set(values) for values in stored)):
        values = [text(values[name]) for values in stored]
        columns[name] = np.array(values, dtype=object) if isinstance(values[0], str) else np.array(values)
    return columns


# ----------------------------------------------------------------------------------------- writing


def write_minari(store: EpisodeStore, path: Path, *, overwrite: bool = False, progress: bool = False) -> Path:
    """Write ``store`` as a Minari HDF5 dataset folder at ``path`` that ``minari.load_dataset`` reads.

    The folder name is the dataset id (``name-v0``); under MINARI_DATASETS_PATH the id includes the
    namespace folders. A store read from Minari gets its source's spaces, env_spec and descriptive
    metadata back (``format_meta["minari"]``) while its data still fits those spaces; otherwise
    the spaces are built from the data, with a warning naming why. The folder is built in a hidden
    sibling and renamed into place, so a killed write leaves nothing half-written; an existing
    ``path`` raises FileExistsError unless ``overwrite``.
    """
    path = Path(path)
    store.validate()
    dataset_id = _dataset_id(path)
    carried = _carried(store)
    _check_episode_columns(store)
    written = _source_spaces(store, carried) or _data_spaces(store)
    with staged_folder(path, overwrite) as staging:
        main = staging / "data" / MAIN_FILE
        main.parent.mkdir(parents=True)
        _write_episodes(store, written, main, progress)
        write_json(main.parent / METADATA_FILE, _metadata(store, written, carried, dataset_id, main.stat().st_size))
    return path


@dataclass(frozen=True)
class Written:
    """How a store goes into Minari's layout: the spaces (serialized, as metadata.json keeps them), each
    observation key's path under ``observations`` (``()``: an array observation space) and the
    dtype its data is stored as, and the actions' dtype and per-step shape."""

    observation_space: str
    action_space: str
    paths: dict[str, tuple[str, ...]]
    dtypes: dict[str, np.dtype]
    action_dtype: np.dtype
    action_shape: tuple[int, ...]


def _carried(store: EpisodeStore) -> dict:
    """``format_meta["minari"]``: what ``read_minari`` kept of the source's metadata.json; EnvSpecs must be text."""
    carried = store.format_meta.get(FORMAT, {})
    for name in SPEC_ENTRIES:
        if name in carried and not isinstance(carried[name], str):
            raise DatasetError(
                f"format_meta['{FORMAT}']['{name}'] must be the EnvSpec JSON string Minari wrote, "
                f"got {type(carried[name]).__name__}"
            )
    return carried


def _source_spaces(store: EpisodeStore, carried: dict) -> Written | None:
    """The source's spaces, verbatim, while they describe the store's data; None (warning why) when they do not."""
    if not any(name in carried for name in SPACES):
        return None
    try:
        observation_space, action_space = (deserialize_space(carried[name]) for name in SPACES)
        leaves = _observation_leaves(observation_space, "its observation space")
        why = _misfit(store, observation_space, leaves, action_space)
    except (DatasetError, *MINARI_ERRORS) as error:
        why = f"they cannot be read ({type(error).__name__}: {error})"
    if why is not None:
        warnings.warn(
            f"Minari export: the source dataset's spaces (format_meta['{FORMAT}']) do not fit this data: {why}; "
            "writing spaces built from the data instead (unbounded observation Boxes, action bounds from the data)",
            stacklevel=3,
        )
        return None
    return Written(
        observation_space=carried["observation_space"],
        action_space=carried["action_space"],
        paths={key: leaf.parts for key, leaf in leaves.items()},
        dtypes={key: _stored_as(store.obs[key], leaf.space) for key, leaf in leaves.items()},
        action_dtype=_stored_as(store.action, action_space),
        action_shape=tuple(action_space.shape),
    )


def _misfit(
    store: EpisodeStore, observation_space: spaces.Space, leaves: dict[str, Leaf], action_space: spaces.Space
) -> str | None:
    """Why the spaces do not describe the store's data (keys, shapes, Box bounds), or None when they do."""
    text_keys = [
        "/".join(parts) for parts, leaf in _space_leaves(observation_space, ()) if isinstance(leaf, spaces.Text)
    ]
    if text_keys:
        return f"its observation space has Text key(s) {text_keys}, which protege does not keep"
    if set(leaves) != set(store.obs):
        only_space, only_data = sorted(set(leaves) - set(store.obs)), sorted(set(store.obs) - set(leaves))
        return f"the observation keys differ (only in the space: {only_space}; only in the data: {only_data})"
    for key, leaf in leaves.items():
        why = _outside(store.obs[key], leaf.space)
        if why is not None:
            return f"observation '{key}' has {why}"
    if not isinstance(action_space, ARRAY_SPACES) or store.action.shape[1] != int(np.prod(action_space.shape)):
        return f"the actions have shape {store.action.shape[1:]} per step, the action space is {action_space}"
    why = _outside(store.action.reshape(len(store.action), *action_space.shape), action_space)
    return None if why is None else f"the actions have {why}"


def _outside(values: np.ndarray, space: spaces.Space) -> str | None:
    """How ``values`` (N, ...) break ``space``'s shape or Box bounds, or None."""
    if values.shape[1:] != tuple(space.shape):
        return f"shape {values.shape[1:]} per step, its space {tuple(space.shape)}"
    if isinstance(space, spaces.Box):
        low, high = space.low, space.high
        if values.dtype.kind == "f":  # bounds rounded like the data: float32 data under float64 bounds still fits
            with np.errstate(over="ignore"):
                low, high = low.astype(values.dtype), high.astype(values.dtype)
        if np.any(values < low) or np.any(values > high):
            return f"values outside its Box bounds ({space})"
    return None


def _stored_as(values: np.ndarray, space: spaces.Space) -> np.dtype:
    """The space's dtype where the data converts to it exactly (float32 under float64, whole numbers
    under Discrete), so the file matches its space; else protege's own (see ``stored_dtype``)."""
    dtype = np.dtype(space.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        if np.can_cast(values.dtype, dtype, "safe") or np.array_equal(values.astype(dtype), values):
            return dtype
    return np.dtype(stored_dtype(values.dtype))


def _data_spaces(store: EpisodeStore) -> Written:
    """Spaces from the data: a Dict of Boxes (unbounded float32, uint8 0..255), actions a float32 Box of their range."""
    layout = _observation_layout(store)
    action = store.action.astype(np.float32)
    observation_space = _nested({parts: _box(store.obs[key]) for key, parts in layout.items()})
    return Written(
        observation_space=serialize_space(observation_space),
        action_space=serialize_space(spaces.Box(action.min(axis=0), action.max(axis=0), dtype=np.float32)),
        paths=layout,
        dtypes={key: np.dtype(stored_dtype(store.obs[key].dtype)) for key in layout},
        action_dtype=np.dtype(np.float32),
        action_shape=store.action.shape[1:],
    )


def _dataset_id(path: Path) -> str:
    """The id Minari will know the folder by: its path under the datasets root, else its name."""
    target, root = path.resolve(), _datasets_root().resolve()
    dataset_id = target.relative_to(root).as_posix() if target.is_relative_to(root) and target != root else target.name
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"'{path}': a Minari dataset folder is named by its id, <name>-v<version> "
            f"(e.g. '{target.name}-v0'), got '{dataset_id}'"
        ) from error
    return dataset_id


def _observation_layout(store: EpisodeStore) -> dict[str, tuple[str, ...]]:
    """Each observation key's Minari key path, checked to read back as the same key without clashes."""
    layout: dict[str, tuple[str, ...]] = {}
    for key, values in store.obs.items():
        frame_shape = values.shape[1:]
        prefix = IMAGE_PREFIX if len(frame_shape) == 3 and key.startswith(IMAGE_PREFIX) else OBSERVATION_PREFIX
        parts = (STATE_NAME,) if key == STATE else tuple(key[len(prefix) :].split("."))
        if not key.startswith(prefix) or not all(parts) or any("/" in part for part in parts):
            rule = f"it must be '{prefix}<name>' with no '/' or empty parts"
            raise DatasetError(f"observation key '{key}' cannot be a Minari key: {rule}")
        clash = next(
            (other for other, taken in layout.items() if _is_prefix(taken, parts) or _is_prefix(parts, taken)), None
        )
        if clash is not None:
            why = "one would be a group holding the other"
            raise DatasetError(f"observation keys '{clash}' and '{key}' cannot both be Minari keys: {why}")
        layout[key] = parts
    return layout


def _is_prefix(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    return long[: len(short)] == short


def _check_episode_columns(store: EpisodeStore) -> None:
    for name, values in store.episodes.items():
        if "/" in name or np.ndim(values) != 1:
            raise DatasetError(f"episode column '{name}' must hold one scalar per episode and have no '/' in its name")
        if values.dtype == object and not all(isinstance(value, str) for value in values):
            raise DatasetError(
                f"episode column '{name}' holds Python objects; Minari attributes take numbers or strings"
            )


def _nested(items: dict[tuple[str, ...], spaces.Space]) -> spaces.Dict:
    """A Dict space (nested for longer key paths) from key path -> leaf space."""
    tree: dict = {}
    for parts, leaf in items.items():
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = leaf
    return _as_space(tree)


def _as_space(node: dict | spaces.Space) -> spaces.Space:
    return spaces.Dict({name: _as_space(sub) for name, sub in node.items()}) if isinstance(node, dict) else node


def _box(values: np.ndarray) -> spaces.Box:
    """uint8 data: the 0..255 Box of images; anything else: an unbounded float32 Box."""
    if stored_dtype(values.dtype) == np.uint8:
        return spaces.Box(0, 255, values.shape[1:], np.uint8)
    return spaces.Box(-np.inf, np.inf, values.shape[1:], np.float32)


def _metadata(store: EpisodeStore, written: Written, carried: dict, dataset_id: str, size_bytes: int) -> dict:
    """metadata.json: the source's descriptive entries (env_spec, author, ...) as read, and what this write computes."""
    descriptive = {key: value for key, value in carried.items() if key not in ("dataset_id", *SPACES)}
    metadata = {
        "algorithm_name": PROTEGE,
        **descriptive,
        "dataset_id": dataset_id,
        "total_episodes": store.num_episodes,
        "total_steps": store.num_frames,
        "data_format": "hdf5",
        "jpeg_encoding": False,
        "observation_space": written.observation_space,
        "action_space": written.action_space,
        "dataset_size": round(size_bytes / 1e6, 1),
        "minari_version": MINARI_VERSION,
        PROTEGE: {
            "task": store.task,
            "fps": store.fps,
            "reward": store.reward is not None,
            "subsets": {name: ids.tolist() for name, ids in store.subsets.items()},
            "unrecorded": sorted(store.unrecorded),
            "keys": {"/".join(parts): key for key, parts in written.paths.items()},  # protege's names, read back
        },
    }
    others = {name: meta for name, meta in store.format_meta.items() if name != FORMAT}  # kept for the other writers
    if others:
        metadata[PROTEGE]["format_meta"] = others
    metadata[PROTEGE][DIGEST] = json_digest(metadata)  # JSON has no checksum: a damaged "task" would read as another
    return metadata


def _write_episodes(store: EpisodeStore, written: Written, main: Path, progress: bool) -> None:
    reward = np.zeros(store.num_frames, np.float32) if store.reward is None else store.reward.astype(np.float32)
    bounds = list(zip(store.episode_starts, store.episode_ends))
    with create_file(main) as file:
        for index, (start, end) in enumerate(
            progress_bar(bounds, desc="writing Minari episodes", unit="episode", disable=not progress)
        ):
            group = file.create_group(f"episode_{index}")
            group.attrs.update(
                {k: attribute(v) for k, v in _episode_attributes_to_write(store, index, end - start).items()}
            )
            for key, parts in written.paths.items():
                frames = store.obs[key][start:end].astype(written.dtypes[key], copy=False)
                write_array(group, "/".join(("observations", *parts)), np.concatenate([frames, frames[-1:]]))
            success = bool(store.episodes["success"][index])
            last_step = np.arange(end - start) == end - start - 1
            actions = store.action[start:end].reshape(end - start, *written.action_shape)
            write_array(group, "actions", actions.astype(written.action_dtype, copy=False))
            write_array(group, "rewards", reward[start:end])
            write_array(group, "terminations", last_step & success)
            write_array(group, "truncations", last_step & (not success))
            if "success" not in store.unrecorded:  # else Minari's tools would read made-up failures
                write_array(group, "infos/success", np.concatenate([[False], last_step & success]))


def _episode_attributes_to_write(store: EpisodeStore, index: int, steps: int) -> dict:
    """Minari's own attributes (id, total_steps, seed when known) plus protege's columns as ``protege/<name>``."""
    attributes = {"id": index, "total_steps": steps}
    seed = int(store.episodes["seed"][index])
    if seed != EPISODE_COLUMNS["seed"][1]:  # -1: unknown, which Minari says by leaving the attribute out
        attributes["seed"] = seed
    for name, values in store.recorded_episodes().items():
        if name != "seed":
            attributes[f"{PROTEGE}/{name}"] = values[index]
    return attributes
