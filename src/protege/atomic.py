"""Atomic writes: everything protege writes is built beside its destination and renamed into
place, so a run killed at any moment leaves either the old file (or folder) or the new one, never
half of one. Every writer in protege goes through these helpers."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def sibling(path: Path, purpose: str) -> Path:
    """A hidden temporary path beside ``path`` (same filesystem, so a rename is atomic)."""
    return path.parent / f".{path.name}.{purpose}-{os.getpid()}"


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; when the block finishes it replaces
    ``path`` in one rename, and it is removed if the block fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling(path, "tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, data: Any) -> None:
    """Indented JSON; values JSON has no type for (paths) are written as strings."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


def refuse_existing(root: Path, overwrite: bool) -> None:
    """An existing destination is replaced only when asked to, and only if it is a folder."""
    if not root.exists() or (overwrite and root.is_dir()):
        return
    hint = "pass overwrite=True to replace it" if root.is_dir() else "it is a file, not a folder"
    raise FileExistsError(f"{root} already exists; {hint}")


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
    """A fresh hidden folder beside ``root`` to write into; when the block finishes it replaces
    ``root`` in one rename, and it is removed if the block fails (a killed write leaves ``root``
    as it was)."""
    refuse_existing(root, overwrite)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = sibling(root, "tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        move_into_place(staging, root, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
