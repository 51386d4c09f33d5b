"""File plumbing every format shares: JSON metadata files and the dtypes numbers are stored in
(atomic writes are ``protege.atomic``'s)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from protege.data.store import DatasetError


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


def json_digest(content: dict) -> str:
    """A digest of a JSON object (keys sorted), for metadata files that carry their own checksum."""
    return hashlib.blake2b(json.dumps(content, sort_keys=True).encode(), digest_size=16).hexdigest()
