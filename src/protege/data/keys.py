"""Observation key mappings for import and export: rename, split a vector, join vectors.

Tools name the same data differently: LeRobot's ACT and diffusion want the object's pose as
``observation.environment_state`` beside the robot's ``observation.state``, while protege's PushT
keeps both in one ``observation.state``; Minari wants keys without dots. A mapping is a list of
``DEST=SOURCE`` entries, all evaluated against the store as it was:

    observation.environment_state=observation.state[2:5]   a slice of the last axis (split)
    observation.state=observation.state[0:2]               a key may be its own source
    observation.state=observation.state+observation.environment_state   joined on the last axis
    observation.image=observation.images.top               renamed

A source named on the right is dropped unless it is also a destination; keys not named pass
through unchanged; a destination that would replace a key not named as a source is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from protege.data.store import DatasetError, EpisodeStore

_PART = re.compile(r"(?P<key>[^\[\]+=]+?)(\[(?P<start>-?\d*):(?P<stop>-?\d*)\])?")


def remap_keys(store: EpisodeStore, entries: Sequence[str]) -> EpisodeStore:
    """``store`` with its observations mapped by ``entries`` (see the module docstring)."""
    if not entries:
        return store
    mapped: dict[str, np.ndarray] = {}
    consumed: set[str] = set()
    for entry in entries:
        dest, parts = _parse(entry)
        if dest in mapped:
            raise DatasetError(f"key mapping: '{dest}' is given twice")
        if not dest.startswith("observation."):
            raise DatasetError(f"key mapping '{entry}': a destination is an observation key, 'observation.<name>'")
        pieces = []
        for key, start, stop in parts:
            if key not in store.obs:
                raise DatasetError(
                    f"key mapping '{entry}': no observation '{key}'; the dataset has {sorted(store.obs)}"
                )
            values = store.obs[key]
            if start is not None or stop is not None:
                if values.ndim != 2:
                    raise DatasetError(
                        f"key mapping '{entry}': '{key}' has shape {values.shape[1:]}; only vectors are sliced"
                    )
                values = values[:, start:stop]
                if values.shape[1] == 0:
                    raise DatasetError(
                        f"key mapping '{entry}': the slice of '{key}' (size {store.obs[key].shape[1]}) is empty"
                    )
            pieces.append(values)
            consumed.add(key)
        mapped[dest] = pieces[0] if len(pieces) == 1 else _join(pieces, entry)
    overwritten = [key for key in mapped if key in store.obs and key not in consumed]
    if overwritten:
        raise DatasetError(
            f"key mapping: '{overwritten[0]}' is already an observation; map it too (e.g. rename it) "
            "or leave it out with --obs-keys"
        )
    obs = {key: values for key, values in store.obs.items() if key not in consumed and key not in mapped} | mapped
    return replace(store, obs=obs, episodes=dict(store.episodes))


def _parse(entry: str) -> tuple[str, list[tuple[str, int | None, int | None]]]:
    dest, equals, source = entry.partition("=")
    dest = dest.strip()
    parts = [_PART.fullmatch(part.strip()) for part in source.split("+")]
    if not equals or not dest or not all(parts):
        raise DatasetError(
            f"key mapping '{entry}' is not DEST=SOURCE, DEST=SOURCE[start:stop] or DEST=SOURCE+SOURCE "
            "(e.g. observation.environment_state=observation.state[2:5])"
        )
    return dest, [(match["key"].strip(), _bound(match["start"]), _bound(match["stop"])) for match in parts]


def _bound(text: str | None) -> int | None:
    return int(text) if text else None


def _join(pieces: list[np.ndarray], entry: str) -> np.ndarray:
    if any(piece.ndim != 2 for piece in pieces) or len({piece.dtype for piece in pieces}) != 1:
        shapes = [f"{piece.dtype}{list(piece.shape[1:])}" for piece in pieces]
        raise DatasetError(f"key mapping '{entry}': only vectors of one dtype are joined, got {shapes}")
    return np.concatenate(pieces, axis=1)
