"""Outside dataset formats, one file each, all converting to and from the EpisodeStore.

A format is a module ``protege/formats/<module>.py`` with ``read_<module>``, ``looks_like_<module>``
and (unless read-only) ``write_<module>`` (the zarr format's module is ``zarr_replay``); adding one
is a new file plus one line in ``FORMATS``. Modules are imported on
use, so the libraries a format needs (h5py, zarr, PyAV, minari) stay optional extras.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from protege.data.store import DatasetError, EpisodeStore
from protege.extras import require


@dataclass(frozen=True)
class Format:
    """Where a format's code lives, the libraries it imports and the extra that installs them."""

    module: str
    libraries: tuple[str, ...] = ()
    extra: str = "formats"
    writable: bool = True

    def load(self, name: str) -> ModuleType:
        for library in self.libraries:
            require(library, self.extra, what=f"the {name} format")
        return require(self.module, self.extra, what=f"the {name} format")


FORMATS: dict[str, Format] = {
    "lerobot": Format("protege.formats.lerobot"),
    "robomimic": Format("protege.formats.robomimic", ("h5py",)),
    "minari": Format("protege.formats.minari", ("h5py", "minari")),
    "zarr": Format("protege.formats.zarr_replay", ("zarr",), writable=False),
}


def _function(name: str, verb: str):
    if name not in FORMATS:
        raise KeyError(f"unknown dataset format '{name}'; known formats: {', '.join(FORMATS)}")
    module = FORMATS[name].load(name)
    return getattr(module, f"{verb}_{FORMATS[name].module.rsplit('.', 1)[1]}")


def detect_format(path: str | Path) -> str:
    """The format of the dataset at ``path``, judged by its layout (formats whose library is missing
    are skipped). A folder that looks like none is taken for protege's own (LeRobot) format, whose
    reader then names what is missing."""
    path = _dataset_path(path)
    unavailable = []
    for name in FORMATS:
        try:
            if _function(name, "looks_like")(path):
                return name
        except ImportError:
            unavailable.append(name)
    if path.is_dir():
        return "lerobot"
    if not path.exists():
        raise FileNotFoundError(f"no such dataset folder or file: '{path}'")
    if unavailable:
        extras = sorted({FORMATS[name].extra for name in unavailable})
        hint = f"the {', '.join(unavailable)} format(s) need pip install 'protege[{','.join(extras)}]'; "
    else:
        hint = _damage_hint(path)
    raise DatasetError(f"{path}: {hint}cannot tell its format; pass --format ({', '.join(FORMATS)})")


#: The first bytes of the container files the formats use, to tell a damaged file from a foreign one.
MAGIC = {b"\x89HDF\r\n\x1a\n": "an HDF5 file (robomimic or Minari)", b"PK": "a zip file (a .zarr.zip replay buffer?)"}


def _dataset_path(path: str | Path) -> Path:
    """``path``, unless it exists as something other than a folder or a regular file: a FIFO or a
    device (/dev/zero) would block or never end when read. (A Minari id need not exist as a path.)"""
    path = Path(path)
    if path.exists() and not (path.is_dir() or path.is_file()):
        raise DatasetError(f"{path}: not a dataset folder or a regular file (a FIFO, socket or device)")
    return path


def _damage_hint(path: Path) -> str:
    """Why a file that starts like a container no format took may be damaged (or what else it is)."""
    with path.open("rb") as file:
        head = file.read(8)
    kind = next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)
    if kind is None:  # not a container protege knows
        return ""
    if _opens(path, kind):
        return f"it is {kind} but holds neither layout protege reads; "
    return f"it starts like {kind} but cannot be opened as one, so it may be truncated or corrupt; "


def _opens(path: Path, kind: str) -> bool:
    if kind.startswith("a zip"):
        return zipfile.is_zipfile(path)
    import h5py  # the HDF5 formats' library: installed, or detection would have named the extra

    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False


def read_dataset(
    path: str | Path,
    format: str = "auto",
    obs_keys: Sequence[str] | None = None,
    images: bool = True,
    progress: bool = False,
) -> EpisodeStore:
    """Read any supported dataset; ``obs_keys``/``images`` limit what is read (and decoded) from disk."""
    name = detect_format(path) if format == "auto" else format
    return _function(name, "read")(_dataset_path(path), obs_keys=obs_keys, images=images, progress=progress)


def write_dataset(
    store: EpisodeStore,
    path: str | Path,
    format: str = "lerobot",
    overwrite: bool = False,
    progress: bool = False,
    **options,
) -> Path:
    """Write ``store`` in ``format`` (protege's own: a LeRobotDataset v3 folder); ``options`` go to
    its writer, e.g. lerobot's ``video``. Read-only formats say which ones can be written."""
    if format in FORMATS and not FORMATS[format].writable:
        writable = ", ".join(n for n, f in FORMATS.items() if f.writable)
        raise ValueError(f"the {format} format is read-only here; write one of: {writable}")
    return _function(format, "write")(store, Path(path), overwrite=overwrite, progress=progress, **options)


__all__ = ["FORMATS", "detect_format", "read_dataset", "write_dataset"]
