"""HDF5 files as protege writes them (robomimic, Minari), so that damage reads as an error.

HDF5 checks nothing by default: a flipped byte in a dataset, an attribute or a chunk index reads
as a different value. Measured on a Minari file of two episodes, one byte damaged at every third
offset: 369 of 5,976 reads came back wrong and 308 raised h5py errors that were not DatasetErrors.
Written with the 1.10 file format (checksummed object headers and chunk indexes) and a Fletcher-32
checksum on every dataset, the same damage gave 0 wrong reads of 3,814: every one an error or the
original data. HDF5 1.10 (2016) and later read such files: every h5py wheel, so robomimic's and
Minari's own loaders do.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: Oldest file format with checksums on every metadata structure.
LIBVER = ("v110", "latest")

#: What h5py raises on a damaged file, besides OSError: readers turn these into DatasetErrors.
READ_ERRORS = (OSError, RuntimeError, TypeError, ValueError, KeyError)


def create_file(path: Path) -> h5py.File:
    return h5py.File(path, "w", libver=LIBVER)


def write_array(group: h5py.Group, name: str, data: np.ndarray, **options) -> h5py.Dataset:
    """``group[name] = data`` with a Fletcher-32 checksum (chunked; not possible for a scalar or an empty array)."""
    data = np.asarray(data)
    checked = data.ndim > 0 and data.size > 0 and data.dtype != object
    return group.create_dataset(name, data=data, **({"fletcher32": True} if checked else {}), **options)


def attribute(value: object) -> object:
    """A text attribute as fixed-length bytes, which HDF5 keeps in the checksummed object header (a
    Python str becomes a variable-length string in the global heap, which nothing checks)."""
    return np.bytes_(value.encode()) if isinstance(value, str) and value else value


def text(value: object) -> object:
    """An attribute read back: bytes (as ``attribute`` writes text) decoded, anything else as is."""
    return value.decode() if isinstance(value, bytes) else value
