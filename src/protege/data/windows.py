"""Training windows: an observation history and an action chunk around every frame.

For a sample anchored at frame ``t`` of an episode spanning rows ``[s, e)``::

    obs rows:    t-n_obs+1 ... t-1  t                (n_obs frames, history ends at t)
    action rows:                    t  t+1 ... t+H-1 (horizon frames, chunk starts at t)

Rows outside ``[s, e)`` are replaced by the nearest edge row (the first frame repeats before the
start, the last frame after the end). Padded action steps are flagged in ``action_is_pad``, for
the policies' ``mask_padding`` choice; a padded observation history is not flagged, because the
runner builds the same history at an episode's start (the first frame repeated), so training and
closed loop see alike. All of it is index arithmetic over whole batches: no Python loop per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from protege.data.store import ACTION, EpisodeStore

SAMPLE_WEIGHT = "sample_weight"


@dataclass(frozen=True)
class WindowIndex:
    """Row indices of every sample's windows, precomputed once per dataset.

    obs_rows: (N, n_obs) int64, action_rows: (N, horizon) int64, action_is_pad: (N, horizon) bool.
    """

    obs_rows: np.ndarray
    action_rows: np.ndarray
    action_is_pad: np.ndarray


def window_index(episode_ends: np.ndarray, n_obs: int, horizon: int) -> WindowIndex:
    """Windows for every frame of every episode (one sample per frame)."""
    ends = np.asarray(episode_ends, dtype=np.int64)
    lengths = np.diff(np.concatenate([[0], ends]))
    starts = ends - lengths
    anchor = np.arange(ends[-1], dtype=np.int64)
    first = np.repeat(starts, lengths)[:, None]  # (N, 1)
    last = np.repeat(ends - 1, lengths)[:, None]
    obs_raw = anchor[:, None] + np.arange(-n_obs + 1, 1)  # (N, n_obs)
    act_raw = anchor[:, None] + np.arange(horizon)  # (N, horizon)
    obs_rows = np.clip(obs_raw, first, last)
    act_rows = np.clip(act_raw, first, last)
    return WindowIndex(obs_rows, act_rows, act_rows != act_raw)


def frame_tensors(obs: dict[str, np.ndarray], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Observation arrays as tensors on ``device``: camera frames stay uint8 (4x smaller than floats;
    on the CPU they share the store's memory), everything else becomes float32."""
    return {
        key: torch.as_tensor(values, device=device, dtype=None if values.dtype == np.uint8 else torch.float32)
        for key, values in obs.items()
    }


class WindowSampler:
    """Draws random training batches of windows from an EpisodeStore held as tensors.

    A batch is a dict: each observation key -> (B, n_obs, *shape) (float32, camera frames uint8),
    ``action`` -> (B, horizon, A),
    ``action_is_pad`` -> (B, horizon) bool, and
    ``sample_weight`` -> (B,) once ``restrict`` has set weights (curation).
    """

    def __init__(self, store: EpisodeStore, n_obs: int, horizon: int, device: torch.device | str = "cpu"):
        index = window_index(store.episode_ends, n_obs, horizon)
        self.device = torch.device(device)
        self.obs = frame_tensors(store.obs, self.device)
        self.action = torch.as_tensor(store.action, dtype=torch.float32, device=self.device)
        self.obs_rows = torch.as_tensor(index.obs_rows, device=self.device)
        self.action_rows = torch.as_tensor(index.action_rows, device=self.device)
        self.action_is_pad = torch.as_tensor(index.action_is_pad, device=self.device)
        self.candidates: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def restrict(self, kept: np.ndarray | None, weights: np.ndarray | None = None) -> None:
        """Sample only anchors where ``kept`` (N,) is true (all of them: unrestricted), and attach
        per-sample ``weights`` (N,)."""
        if kept is not None and not kept.any():
            raise ValueError("curation keeps no training samples")
        self.candidates = None if kept is None or kept.all() else torch.as_tensor(np.flatnonzero(kept))
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=self.device)

    def __len__(self) -> int:
        return len(self.obs_rows)

    def gather(self, samples: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch for the given sample (anchor frame) indices, shape (B,)."""
        samples = samples.to(self.device)
        obs_rows = self.obs_rows[samples]
        action_rows = self.action_rows[samples]
        batch = {key: value[obs_rows] for key, value in self.obs.items()}
        batch[ACTION] = self.action[action_rows]
        batch["action_is_pad"] = self.action_is_pad[samples]
        if self.weights is not None:
            batch[SAMPLE_WEIGHT] = self.weights[samples]
        return batch

    def sample(
        self, batch_size: int, generator: torch.Generator, share: slice = slice(None)
    ) -> dict[str, torch.Tensor]:
        """Uniformly random batch (over the kept anchors, if restricted); the generator (on the CPU)
        makes the stream reproducible. ``share``: the rows of the drawn batch to gather (a
        data-parallel rank's part; every rank draws the same indices)."""
        if self.candidates is None:
            return self.gather(torch.randint(len(self), (batch_size,), generator=generator)[share])
        drawn = torch.randint(len(self.candidates), (batch_size,), generator=generator)
        return self.gather(self.candidates[drawn[share]])
