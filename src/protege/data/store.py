"""EpisodeStore: every step of every episode as contiguous arrays plus episode boundaries.

Frames of episode ``e`` live at rows ``episode_starts[e]:episode_ends[e]`` of every per-frame
array. Per-episode metadata (success, return, source label, seed) lives in ``episodes``, one
entry per episode. This is the one in-memory shape the rest of protege reads; on disk it is a
LeRobotDataset v3 folder by default, read and written by ``protege.formats.read_dataset`` and
``write_dataset`` like every other format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ACTION = "action"
STATE = "observation.state"
IMAGE = "observation.image"  # the camera of a task with one
PROPRIO = "observation.proprio"  # a pixel-mode task's own-body state: what a robot senses without a camera
REWARD = "next.reward"
TASK = "task"  # per-episode column of a dataset with several tasks (one instruction per episode)
TASK_SUBSET = "task:"  # ``subset("task:push")``: the episodes of one task

#: Per-episode metadata columns every store carries, with their dtypes and defaults.
EPISODE_COLUMNS: dict[str, tuple[np.dtype, object]] = {
    "success": (np.dtype(bool), False),
    "return": (np.dtype(np.float64), 0.0),
    "source": (np.dtype(object), "unknown"),
    "seed": (np.dtype(np.int64), -1),
}


class DatasetError(ValueError):
    """A dataset is malformed; the message names the file, episode or key at fault."""


def episode_column(name: str, values: object, labels: Sequence[str] | None = None) -> np.ndarray:
    """A per-episode metadata column in its dtype (``EPISODE_COLUMNS``), converted only where the
    value means the same: ``success`` from booleans or 0/1, ``seed`` from whole numbers, ``return``
    from numbers. Anything else (the strings "False" or "yes", a success of 2, a seed of 3.7) is a
    DatasetError naming the episode (by ``labels[i]`` if given), never a truthiness cast that turns
    failures into successes."""
    dtype = EPISODE_COLUMNS[name][0]
    values = np.asarray(values)
    if values.ndim != 1:
        raise DatasetError(f"'{name}' must hold one value per episode, got shape {values.shape}")
    if dtype.kind == "O":  # text labels
        good = np.array([isinstance(value, str) for value in values.tolist()], dtype=bool)
        if good.all():
            return values.astype(object)
        expected = "text"
    else:
        good, expected = _numeric_column(values, dtype)
        if good is None:
            return values.astype(dtype)
    episode = int(np.argmin(good))
    value = values[episode].item() if isinstance(values[episode], np.generic) else values[episode]
    column, where = (
        (f"episode column '{name}'", f"episode {episode}") if labels is None else (f"'{name}'", labels[episode])
    )
    raise DatasetError(f"{column} must be {expected}; {where} has {value!r}")


def _numeric_column(values: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray | None, str]:
    """(None, _) when every value converts to ``dtype`` keeping its meaning, else (which do, what is expected)."""
    expected = {"b": "true/false (or 0/1)", "i": "a whole number", "f": "a number"}[dtype.kind]
    numbers = np.array([values.dtype.kind in "biuf" or _is_number(v) for v in values.tolist()], dtype=bool)
    if not numbers.all():
        return numbers, expected
    as_float = values.astype(np.float64)
    if dtype.kind == "b":
        good = np.isin(as_float, (0.0, 1.0))
    elif dtype.kind == "i":
        good = np.isfinite(as_float) & (as_float == np.round(as_float)) & (values.dtype.kind != "b")
    else:
        good = np.full(len(values), values.dtype.kind != "b")
    return (None if good.all() else good), expected


def episode_returns(reward: np.ndarray, episode_ends: np.ndarray) -> np.ndarray:
    """(E,) sum of each episode's per-step rewards: the ``return`` of data that records rewards but
    no returns (LeRobot's ``next.reward``, robomimic's ``rewards``)."""
    starts = np.concatenate([[0], np.asarray(episode_ends)[:-1]]).astype(np.int64)
    return np.add.reduceat(np.asarray(reward, dtype=np.float64), starts)


def _is_number(value: object) -> bool:
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating))


@dataclass
class EpisodeStore:
    """Columnar demonstrations.

    obs: observation key -> (N, *shape) array, keys in LeRobot naming (``observation.state``).
    action: (N, A) float32.
    episode_ends: (E,) int64, exclusive end row of each episode; strictly increasing.
    episodes: per-episode metadata column -> (E,) array (see ``EPISODE_COLUMNS``).
    reward: optional (N,) float32 per-step reward.
    fps: control frequency, used for timestamps on disk.
    task: natural-language or registry name of the task the demonstrations solve.
    subsets: named episode lists (robomimic filter keys, LeRobot splits): name -> sorted (k,) int64
        episode ids; they follow the episodes through ``select`` and ``concatenate``.
    unrecorded: ``EPISODE_COLUMNS`` the source did not record (a file without a ``success`` column,
        e.g. after LeRobot's own dataset tools rewrote it): filled with defaults so every store has
        the same shape, and named so that curation refuses them instead of reading defaults as data.
    unread: features the source holds that the reader was asked not to load (cameras of a
        state-only read): name -> (shape, dtype), so a summary can still list them.
    format_meta: what a source format says that protege does not use but must give back when it
        writes that format again, JSON-able, by format name (Minari's env_spec and spaces,
        robomimic's env_args); every writer keeps it, so it survives a stop in protege's own format.
    """

    obs: dict[str, np.ndarray]
    action: np.ndarray
    episode_ends: np.ndarray
    episodes: dict[str, np.ndarray] = field(default_factory=dict)
    reward: np.ndarray | None = None
    fps: int = 10
    task: str = ""
    subsets: dict[str, np.ndarray] = field(default_factory=dict)
    format_meta: dict[str, dict] = field(default_factory=dict)
    unrecorded: frozenset[str] = frozenset()
    unread: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.action = np.asarray(self.action)
        self.subsets = {name: np.unique(np.asarray(ids, dtype=np.int64)) for name, ids in self.subsets.items()}
        self.obs = {key: np.asarray(value) for key, value in self.obs.items()}
        self.reward = None if self.reward is None else np.asarray(self.reward)
        self.episode_ends = np.asarray(self.episode_ends, dtype=np.int64)
        self.validate()
        self.unrecorded = frozenset(self.unrecorded) | {name for name in EPISODE_COLUMNS if name not in self.episodes}
        for name, (dtype, default) in EPISODE_COLUMNS.items():
            if name not in self.episodes:
                self.episodes[name] = np.full(self.num_episodes, default, dtype=dtype)
            else:
                self.episodes[name] = episode_column(name, self.episodes[name])
        if TASK in self.episodes:
            self._settle_tasks()

    def _settle_tasks(self) -> None:
        """One task for all episodes is ``task``; several stay a per-episode text column."""
        tasks = np.asarray(self.episodes[TASK])
        if not all(isinstance(task, str) for task in tasks.tolist()):
            raise DatasetError(f"episode column '{TASK}' must hold one text per episode")
        if len(set(tasks.tolist())) == 1:
            self.task = str(tasks[0])
            del self.episodes[TASK]
        else:
            self.episodes[TASK] = tasks.astype(object)
            self.task = ""

    def validate(self) -> None:
        """Raise DatasetError naming the first inconsistency; cheap enough to run on every load."""
        n = len(self.action)
        if self.action.ndim != 2:
            raise DatasetError(f"'action' must have shape (N, A), got {self.action.shape}")
        if not self.obs:
            raise DatasetError("dataset has no observation keys (expected e.g. 'observation.state')")
        per_frame = {**self.obs, **({} if self.reward is None else {"reward": self.reward})}
        for key, value in per_frame.items():
            if len(value) != n:
                raise DatasetError(f"'{key}' has {len(value)} frames but 'action' has {n}")
        ends = self.episode_ends
        if ends.ndim != 1 or len(ends) == 0:
            raise DatasetError("dataset has no episodes")
        if ends[-1] != n or np.any(np.diff(np.concatenate([[0], ends])) <= 0):
            raise DatasetError(f"episode boundaries must be increasing and end at {n} frames, got ends {ends[:5]}...")
        for key, value in self.episodes.items():
            if len(value) != len(ends):
                raise DatasetError(f"episode column '{key}' has {len(value)} rows for {len(ends)} episodes")
        for name, ids in self.subsets.items():
            if len(ids) and (ids[0] < 0 or ids[-1] >= len(ends)):
                raise DatasetError(
                    f"episode subset '{name}' names episodes outside 0..{len(ends) - 1} "
                    f"(e.g. {ids[-1] if ids[-1] >= len(ends) else ids[0]})"
                )
        for key, value in [(ACTION, self.action), *per_frame.items()]:
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                row = int(np.nonzero(~np.isfinite(value.reshape(n, -1)).all(axis=1))[0][0])
                raise DatasetError(
                    f"'{key}' has NaN/inf values (first in episode {self.episode_of(row)}, frame row {row})"
                )

    @property
    def num_frames(self) -> int:
        return len(self.action)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(np.concatenate([[0], self.episode_ends])).astype(np.int64)

    @property
    def action_dim(self) -> int:
        return int(self.action.shape[1])

    def episode_index(self) -> np.ndarray:
        """(N,) episode id of every frame."""
        return np.repeat(np.arange(self.num_episodes), self.episode_lengths)

    def episode_of(self, row: int) -> int:
        return int(np.searchsorted(self.episode_ends, row, side="right"))

    def recorded_episodes(self) -> dict[str, np.ndarray]:
        """The per-episode columns that hold data (``unrecorded`` ones left out): what writers store."""
        return {name: values for name, values in self.episodes.items() if name not in self.unrecorded}

    def episode_tasks(self) -> np.ndarray:
        """(E,) the task of every episode."""
        return self.episodes[TASK] if TASK in self.episodes else np.full(self.num_episodes, self.task, dtype=object)

    def task_counts(self) -> dict[str, int]:
        """Episodes per task, tasks in the order they first appear."""
        tasks = self.episode_tasks().tolist()
        return {task: tasks.count(task) for task in dict.fromkeys(tasks)}

    def subset_names(self) -> list[str]:
        """Named subsets, and ``task:<name>`` for each (named) task."""
        tasks = self.task_counts()
        return sorted(self.subsets) + [f"{TASK_SUBSET}{task}" for task in tasks if task]

    def subset(self, name: str) -> EpisodeStore:
        """The store of the episodes in subset ``name`` (e.g. robomimic's ``train`` or ``better``, or
        ``task:push``, the episodes of one task)."""
        if name in self.subsets:
            return self.select(self.subsets[name])
        if name.startswith(TASK_SUBSET) and name in self.subset_names():
            return self.select(np.flatnonzero(self.episode_tasks() == name[len(TASK_SUBSET) :]))
        known = ", ".join(self.subset_names()) or "none"
        raise KeyError(f"dataset has no episode subset '{name}'; its subsets: {known}")

    def require_recorded(self, name: str, purpose: str) -> None:
        """Refuse ``purpose`` when the episodes' ``name`` was never recorded: its defaults are no data."""
        if name in self.unrecorded:
            raise DatasetError(
                f"{purpose} needs each episode's '{name}', which this dataset does not record (its file has none; "
                "e.g. LeRobot's dataset tools delete_episodes and split_dataset drop protege's episode columns)"
            )

    def require_one_task(self, purpose: str) -> None:
        """Policies are not conditioned on the task yet: several tasks at once are refused."""
        tasks = self.task_counts()
        if len(tasks) > 1:
            listed = ", ".join(f"{task!r} ({n} episodes)" for task, n in tasks.items())
            raise DatasetError(
                f"{purpose}: the dataset holds {len(tasks)} tasks ({listed}); protege's policies are not conditioned "
                f"on the task yet, so take one task's episodes with --subset {TASK_SUBSET}<task>"
            )

    def select(self, episode_ids: np.ndarray) -> EpisodeStore:
        """A new store holding only the given episodes, in the given order (subsets renumbered)."""
        episode_ids = np.asarray(episode_ids, dtype=np.int64)
        starts, lengths = self.episode_starts[episode_ids], self.episode_lengths[episode_ids]
        rows = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
        return EpisodeStore(
            obs={k: v[rows] for k, v in self.obs.items()},
            action=self.action[rows],
            episode_ends=np.cumsum(lengths),
            episodes={k: v[episode_ids] for k, v in self.episodes.items()},
            reward=None if self.reward is None else self.reward[rows],
            fps=self.fps,
            task=self.task,
            subsets={name: np.flatnonzero(np.isin(episode_ids, ids)) for name, ids in self.subsets.items()},
            format_meta=self.format_meta,
            unrecorded=self.unrecorded,
            unread=self.unread,
        )

    def split(self, val_fraction: float, seed: int) -> tuple[EpisodeStore, EpisodeStore | None]:
        """Train/validation split by whole episodes, so no validation frame leaks into training."""
        n_val = int(round(val_fraction * self.num_episodes))
        if n_val == 0:
            return self, None
        if n_val >= self.num_episodes:
            raise DatasetError(f"val_fraction={val_fraction} leaves no training episodes out of {self.num_episodes}")
        order = np.random.default_rng(seed).permutation(self.num_episodes)
        return self.select(np.sort(order[n_val:])), self.select(np.sort(order[:n_val]))

    @staticmethod
    def concatenate(stores: list[EpisodeStore]) -> EpisodeStore:
        """Join stores with the same keys, episodes in order."""
        first = stores[0]
        offsets = np.cumsum([0] + [s.num_frames for s in stores[:-1]])
        episode_offsets = np.cumsum([0] + [s.num_episodes for s in stores[:-1]])
        names = sorted({name for s in stores for name in s.subsets})
        subsets = {
            name: np.concatenate(
                [s.subsets.get(name, np.zeros(0, np.int64)) + o for s, o in zip(stores, episode_offsets)]
            )
            for name in names
        }
        rewards = [s.reward for s in stores]
        return EpisodeStore(
            obs={k: np.concatenate([s.obs[k] for s in stores]) for k in first.obs},
            action=np.concatenate([s.action for s in stores]),
            episode_ends=np.concatenate([s.episode_ends + o for s, o in zip(stores, offsets)]),
            episodes={k: np.concatenate([s.episodes[k] for s in stores]) for k in first.episodes if k != TASK}
            | {TASK: np.concatenate([s.episode_tasks() for s in stores])},
            reward=None if any(r is None for r in rewards) else np.concatenate(rewards),
            fps=first.fps,
            task=first.task,
            subsets=subsets,
            format_meta=first.format_meta,
            unrecorded=frozenset().union(*(s.unrecorded for s in stores)),
            unread=first.unread,
        )
