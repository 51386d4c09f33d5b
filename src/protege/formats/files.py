"""File plumbing every format shares: atomic writes (build beside the destination, then rename)
and the dtypes numbers are stored in."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from protege.data.store import DatasetError


def refuse_existing(root: Path, overwrite: bool) -> None:
    """An existing destination is replaced only when asked to, and only if it is a dataset folder."""
    if not root.exists() or (overwrite and root.is_dir()):
        return
    hint = "pass overwrite=True to replace it" if root.is_dir() else "it is not a dataset folder"
    raise FileExistsError(f"{root} already exists; {hint}")


def sibling(root: Path, purpose: str) -> Path:
    """A hidden temporary path beside ``root`` (same filesystem, so a rename is atomic)."""
    return root.parent / f".{root.name}.{purpose}-{os.getpid()}"


def move_into_place(staging: Path, root: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``root``; an old ``root`` is moved aside first, then deleted."""
    refuse_existing(root, overwrite)
    if not root.exists():
        staging.rename(root)
        return
    old = sibling(root, "old")
    root.rename(old)
    try:
        staging.rename(root)
    except BaseException:
        old.rename(root)
        raise
    shutil.rmtree(old)


@contextmanager
def staged_folder(root: Path, overwrite: bool) -> Iterator[Path]:
    """A fresh hidden folder beside ``root`` to write a dataset into; when the block finishes it
    replaces ``root`` in one rename, and it is removed if the block fails (a killed write leaves
    ``root`` as it was)."""
    refuse_existing(root, overwrite)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = sibling(root, "tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        move_into_place(staging, root, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_json_object(path: Path, missing: str) -> dict:
    """A JSON object from ``path``, or one DatasetError naming the file (``missing``: why it must exist)."""
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: missing; {missing}") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: expected a JSON object, got {type(content).__name__}")
    return content


def write_json(path: Path, content: dict) -> None:
    """Pretty JSON, non-ASCII kept (task strings), parent folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=4, ensure_ascii=False))


def stored_dtype(dtype: np.dtype | str) -> type:
    """uint8 (images) as is; every other numeric feature as float32."""
    return np.uint8 if np.dtype(dtype) == np.uint8 else np.float32
