"""Atomic writes: everything protege writes is built beside its destination and renamed into
place, so a run killed at any moment leaves either the old file (or folder) or the new one, never
half of one. Every writer in protege goes through these helpers."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: This machine's name in temporary names (no "/" or "-" to keep the names parseable).
HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def sibling(path: Path, purpose: str, pid: int | None = None) -> Path:
    """A hidden temporary path beside ``path`` (same filesystem, so a rename is atomic), named by
    this machine and process so that ``clean_stale`` only ever judges its own machine's writers."""
    return path.parent / f".{path.name}.{purpose}-{HOST}-{os.getpid() if pid is None else pid}"


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
    hint = "pass --overwrite to replace it" if root.is_dir() else "it is a file, not a folder"
    raise FileExistsError(f"{root} already exists; {hint}")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or filesystem cannot, and the caller falls back to two renames."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def move_into_place(staging: Path, root: Path, overwrite: bool) -> None:
    """Put the finished folder at ``root``. An old ``root`` is swapped out in one atomic exchange
    where the system has one; elsewhere it is renamed aside first, and a kill between the two
    renames is repaired by the next ``clean_stale`` (the old copy goes back)."""
    refuse_existing(root, overwrite)
    if not root.exists():
        staging.rename(root)
        return
    if _exchange(staging, root):  # staging now holds the old copy
        shutil.rmtree(staging)
        return
    old = sibling(root, "old")
    root.rename(old)
    try:
        staging.rename(root)
    except BaseException:
        old.rename(root)
        raise
    doomed = sibling(root, "tmp-old")  # renamed first, so a kill mid-delete never leaves half a copy to restore
    old.rename(doomed)
    shutil.rmtree(doomed)


#: ``sibling`` names: hidden, the destination's name, the purpose, the writer's machine and process id.
SIBLING = re.compile(r"^\.(?P<name>.+)\.(?P<purpose>tmp|old|tmp-old)-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: Path) -> None:
    """Remove the temporary siblings that killed writers left in ``folder``; an old copy whose
    destination is missing (killed between ``move_into_place``'s two renames) is put back."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        match = SIBLING.match(path.name)
        if not match or match["host"] != HOST or _alive(int(match["pid"])):
            continue  # another machine's writer (a shared filesystem) or a live one is never touched
        destination = folder / match["name"]
        try:
            if match["purpose"] == "old" and not destination.exists():
                path.rename(destination)
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:  # another process cleaned or restored it first
            continue


@contextmanager
def staged_folder(root: Path, overwrite: bool) -> Iterator[Path]:
    """A fresh hidden folder beside ``root`` to write into; when the block finishes it replaces
    ``root`` in one rename, and it is removed if the block fails (a killed write leaves ``root``
    as it was, and the next write beside it cleans up)."""
    clean_stale(root.parent)
    refuse_existing(root, overwrite)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = sibling(root, "tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        move_into_place(staging, root, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
