"""diffusion_policy's zarr ReplayBuffer (real-stanford/diffusion_policy), read only.

A replay buffer is a zarr group, either a folder ``<name>.zarr`` or a zip file ``<name>.zarr.zip``
(zarr's ZipStore, which diffusion_policy uses for its cached real-robot and robomimic datasets)::

    data/<key>            (N, ...) one row per frame of every episode, e.g. (PushT)
                          img (N, 96, 96, 3) uint8, state (N, 5) float32, keypoint (N, 9, 2) float32,
                          action (N, 2) float32, n_contacts (N, 1) float32
    meta/episode_ends     (E,) int64 exclusive cumulative frame ends; the last is N

Mapping to the EpisodeStore (``read_zarr_replay``):

- ``action`` -> ``action``; ``state`` -> ``observation.state``; an image (frames of 3 dimensions
  that are uint8, or whose key contains ``img`` or ``image``) -> ``observation.images.<key>``,
  frames unchanged; any other key -> ``observation.<key>``, each frame flattened in C order to
  one vector: ``keypoint`` (N, 9, 2) -> ``observation.keypoint`` (N, 18) with keypoint k's (x, y)
  at columns 2k, 2k + 1 (as diffusion_policy's low-dim PushT dataset flattens it), and (N,)
  arrays -> (N, 1). The action is flattened the same way. Observation keys come in key order.
- Numbers are read as float32, uint8 stays uint8.
- The format has no per-episode metadata, rewards, control rate or task: ``success``,
  ``return``, ``source`` and ``seed`` take the store defaults, ``reward`` is None, ``fps`` is the
  store default (10, PushT's rate), and ``task`` is the file name without ``.zarr``/``.zip``.
- Only the arrays asked for are opened and read, chunk-aligned blocks at a time, so memory holds
  the result plus one block; ``progress=True`` counts the frames read across those arrays
  (zarr reads by chunk, not by episode). Arrays not read are not checked.

Read only: protege imports replay buffers but does not write them (a buffer cannot carry rewards,
success, sources or subsets; ``protege export`` writes formats that can).

Found out from diffusion_policy's code and zarr 3.1, not their docs:

- The buffers were written by zarr 2 (``zarr_format`` 2: ``.zgroup``/``.zarray`` JSON, chunks
  named ``0.0.0.0``, Blosc lz4 compression by default, chunked only along time); zarr 3 reads
  them with ``zarr.open_group(mode="r")``. Arrays written by zarr 2 have no ``.zattrs`` file.
- Listing a group's members makes zarr 3 parse every member's metadata, so one array with an
  unknown codec would break reading the others; the array names are therefore listed from the
  folder or the zip's directory, and only the arrays needed are opened.
- diffusion_policy's real-robot and robomimic image caches compress images with imagecodecs'
  Jpeg2k, registered into numcodecs by diffusion_policy at import. Without that registration
  the array cannot be opened; the error says so, and ``obs_keys`` can leave the images out.
- zarr 3 refuses object arrays (``|O``, e.g. pickled ones) when it parses their metadata; they
  are refused here either way, as are strings.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import zarr
import zarr.errors
from numcodecs.errors import UnknownCodecError

from protege.data.store import ACTION, STATE, DatasetError, EpisodeStore
from protege.formats.files import stored_dtype
from protege.progress import Bar, progress_bar

ACTION_NAME = "action"
STATE_NAME = "state"
EPISODE_ENDS = "meta/episode_ends"
OBSERVATION_PREFIX = "observation."
IMAGE_PREFIX = "observation.images."
IMAGE_WORDS = ("img", "image")
NODE_METADATA = (".zarray", ".zgroup", "zarr.json")  # zarr format 2 array and group, format 3 node
NUMERIC_KINDS = "biuf"
BLOCK_BYTES = 64 * 2**20  # rows read per block: about this much data, a whole number of chunks
ZARR_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, zipfile.BadZipFile, zarr.errors.BaseZarrError)


def looks_like_zarr_replay(path: Path) -> bool:
    """A folder or zip file holding ``meta/episode_ends`` and ``data/``."""
    try:
        path = Path(path)
        if path.is_dir():
            return (path / EPISODE_ENDS).is_dir() and (path / "data").is_dir()
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any(name.startswith(f"{EPISODE_ENDS}/") for name in archive.namelist())
    except Exception:  # detection never raises: anything unreadable is just not a replay buffer
        return False


def read_zarr_replay(
    path: Path, obs_keys: Sequence[str] | None = None, images: bool = True, progress: bool = False
) -> EpisodeStore:
    """Read a diffusion_policy replay buffer (``.zarr`` folder or ``.zarr.zip``) into an EpisodeStore.

    ``obs_keys`` (protege names) picks the observations; ``images=False`` skips image keys when
    ``obs_keys`` is None. Arrays not asked for are never opened. Malformed data raises
    DatasetError naming the file, the array and, for bad values, the episode.
    """
    path = Path(path)
    names = _data_names(path)
    if ACTION_NAME not in names:
        raise DatasetError(f"{path}: no 'data/{ACTION_NAME}' array; its data arrays: {', '.join(names) or 'none'}")
    with _opened(path) as root:
        action = _array(root, f"data/{ACTION_NAME}", path)
        frames = action.shape[0]
        ends = _episode_ends(root, frames, path)
        chosen = {ACTION: action, **_chosen(root, names, obs_keys, images, path)}
        for array in chosen.values():
            if array.shape[0] != frames:
                raise DatasetError(
                    f"{path}: '{array.path}' has {array.shape[0]} frames but 'data/{ACTION_NAME}' has {frames}"
                )
        with progress_bar(
            total=frames * len(chosen), desc=f"reading {path.name}", unit="frame", disable=not progress
        ) as bar:
            values = {key: _read(array, ends, path, bar) for key, array in chosen.items()}
    flat = {
        key: value if key.startswith(IMAGE_PREFIX) else value.reshape(len(value), -1) for key, value in values.items()
    }
    try:
        return EpisodeStore(
            obs={key: flat[key] for key in chosen if key != ACTION},
            action=flat[ACTION],
            episode_ends=ends,
            task=_task_name(path),
        )
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from error


def _task_name(path: Path) -> str:
    return path.resolve().name.removesuffix(".zip").removesuffix(".zarr")


def _data_names(path: Path) -> list[str]:
    """Names of the nodes under ``data/`` (arrays, unless malformed), listed without parsing their metadata."""
    if not path.exists():
        raise DatasetError(f"{path}: no such zarr replay buffer")
    try:
        if path.is_dir():
            children = (path / "data").iterdir() if (path / "data").is_dir() else []
            return sorted(child.name for child in children if any((child / meta).is_file() for meta in NODE_METADATA))
        with zipfile.ZipFile(path) as archive:
            parts = [name.split("/") for name in archive.namelist()]
    except (OSError, zipfile.BadZipFile) as error:
        raise DatasetError(
            f"{path}: not a zarr folder or a readable zip file, it may be truncated or corrupt ({error})"
        ) from error
    return sorted({p[1] for p in parts if len(p) == 3 and p[0] == "data" and p[2] in NODE_METADATA})


@contextmanager
def _opened(path: Path) -> Iterator[zarr.Group]:
    """The root group of a folder or zip replay buffer, read-only."""
    zip_store = None
    try:
        zip_store = zarr.storage.ZipStore(path, mode="r") if path.is_file() else None
        root = zarr.open_group(store=zip_store or str(path), mode="r", use_consolidated=False)
    except ZARR_ERRORS as error:
        raise DatasetError(
            f"{path}: cannot open as a zarr group, it may be truncated or corrupt ({type(error).__name__}: {error})"
        ) from error
    try:
        yield root
    finally:
        if zip_store is not None:
            zip_store.close()


def _array(root: zarr.Group, name: str, path: Path) -> zarr.Array:
    """Open one array (its metadata only) and check it holds numbers, one row per frame."""
    try:
        array = root[name]
    except KeyError as error:
        raise DatasetError(f"{path}: no '{name}' array") from error
    except UnknownCodecError as error:
        raise DatasetError(
            f"{path}: '{name}' is compressed with a codec this numcodecs does not know ({error}); "
            "diffusion_policy's image caches use imagecodecs' Jpeg2k: "
            "call imagecodecs.numcodecs.register_codecs() first, or leave the key out with obs_keys"
        ) from error
    except ZARR_ERRORS as error:
        raise DatasetError(
            f"{path}: cannot open '{name}', zarr cannot parse its metadata ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(array, zarr.Array):
        raise DatasetError(f"{path}: '{name}' is a group; expected an array")
    if np.dtype(array.dtype).kind not in NUMERIC_KINDS:
        raise DatasetError(f"{path}: '{name}' has dtype {array.dtype}; protege reads only numeric arrays")
    if array.ndim == 0:
        raise DatasetError(f"{path}: '{name}' is a scalar; expected one row per frame")
    return array


def _episode_ends(root: zarr.Group, frames: int, path: Path) -> np.ndarray:
    array = _array(root, EPISODE_ENDS, path)
    try:
        ends = array[:]
    except ZARR_ERRORS as error:
        raise DatasetError(f"{path}: cannot read '{EPISODE_ENDS}' ({type(error).__name__}: {error})") from error
    if ends.ndim != 1 or len(ends) == 0 or ends.dtype.kind not in "iu":
        raise DatasetError(
            f"{path}: '{EPISODE_ENDS}' must be a non-empty 1-D integer array, got {ends.dtype} {ends.shape}"
        )
    empty = np.flatnonzero(np.diff(ends, prepend=0) <= 0)
    if len(empty):
        raise DatasetError(
            f"{path}: '{EPISODE_ENDS}' must be strictly increasing from above 0; episode {empty[0]} ends at "
            f"{ends[empty[0]]}, where the one before it ends"
        )
    if ends[-1] != frames:
        raise DatasetError(f"{path}: '{EPISODE_ENDS}' ends at {ends[-1]} but 'data/{ACTION_NAME}' has {frames} frames")
    return ends.astype(np.int64)


def _store_key(name: str, array: zarr.Array) -> str:
    if name == STATE_NAME:
        return STATE
    image = array.ndim == 4 and (array.dtype == np.uint8 or any(word in name.lower() for word in IMAGE_WORDS))
    return (IMAGE_PREFIX if image else OBSERVATION_PREFIX) + name


def _source_name(key: str) -> str:
    """The data array a protege key can come from (to be confirmed with ``_store_key``)."""
    return STATE_NAME if key == STATE else key.removeprefix(IMAGE_PREFIX).removeprefix(OBSERVATION_PREFIX)


def _chosen(
    root: zarr.Group, names: list[str], obs_keys: Sequence[str] | None, images: bool, path: Path
) -> dict[str, zarr.Array]:
    """Protege key -> opened array, for the observations to read."""
    if obs_keys is None:
        opened = {name: _array(root, f"data/{name}", path) for name in names if name != ACTION_NAME}
        keys = {_store_key(name, array): array for name, array in opened.items()}
        return {key: array for key, array in keys.items() if images or not key.startswith(IMAGE_PREFIX)}
    chosen = {}
    for key in obs_keys:
        name = _source_name(key)
        array = _array(root, f"data/{name}", path) if name in names and name != ACTION_NAME else None
        if array is None or _store_key(name, array) != key:
            known = _chosen(root, names, None, True, path)
            raise DatasetError(f"{path}: no observation key '{key}'; its keys: {', '.join(known)}")
        chosen[key] = array
    return chosen


def _block_rows(array: zarr.Array) -> int:
    """Rows per read: about BLOCK_BYTES of data, a whole number of time chunks."""
    row_bytes = max(1, int(np.prod(array.shape[1:])) * np.dtype(array.dtype).itemsize)
    chunk = array.chunks[0]
    return max(chunk, BLOCK_BYTES // row_bytes // chunk * chunk)


def _check_chunks_present(array: zarr.Array, path: Path) -> None:
    """A missing chunk file reads as the fill value. zarr 2, which wrote diffusion_policy's buffers,
    stores every chunk (``write_empty_chunks=True``), so a missing one there is a lost file that
    would import as zeros: refused. zarr 3 leaves out chunks that are all fill value by default, so
    for its format a missing chunk is said, not refused."""
    try:
        stored, expected = array.nchunks_initialized, array.nchunks
    except ZARR_ERRORS as error:
        raise DatasetError(
            f"{path}: cannot list the chunks of '{array.path}' ({type(error).__name__}: {error})"
        ) from error
    if stored >= expected:
        return
    message = (
        f"{path}: '{array.path}' has {stored} of its {expected} chunk files; zarr reads the missing "
        f"{expected - stored} as {array.fill_value!r}"
    )
    if array.metadata.zarr_format == 2:
        raise DatasetError(
            f"{message} (zarr 2 writes every chunk, so the buffer is incomplete or damaged; a buffer written by "
            "zarr 3 with write_empty_chunks=False must be rewritten with write_empty_chunks=True)"
        )
    warnings.warn(f"{message} (zarr 3 leaves out chunks that are all fill value)", stacklevel=3)


def _read(array: zarr.Array, ends: np.ndarray, path: Path, bar: Bar) -> np.ndarray:
    """The whole array, cast to float32 (uint8 kept) block by block, refusing NaN/inf."""
    _check_chunks_present(array, path)
    out = np.empty(array.shape, stored_dtype(array.dtype))
    rows = _block_rows(array)
    for start in range(0, len(out), rows):
        try:
            block = array[start : start + rows]
        except ZARR_ERRORS as error:
            raise DatasetError(
                f"{path}: cannot read '{array.path}' rows {start}..{start + rows - 1}, a chunk may be truncated "
                f"or corrupt ({type(error).__name__}: {error})"
            ) from error
        with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32's range becomes inf, refused below
            out[start : start + len(block)] = block
        bar.update(len(block))
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        row = int(np.flatnonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1))[0])
        episode = int(np.searchsorted(ends, row, side="right"))
        raise DatasetError(
            f"{path}: '{array.path}' has NaN/inf values or values beyond float32's range "
            f"(first in episode {episode}, frame row {row})"
        )
    return out
