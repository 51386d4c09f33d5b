"""Normalization fitted on the data and stored inside the policy, so a checkpoint carries it.

Stats are registered buffers (``normalizer.<key>.offset`` / ``.scale``), so they are saved in
``model.safetensors`` with the weights and a checkpoint whose stats are missing fails to load
(strict state dicts). Asking to normalize a key that was never declared raises a KeyError naming it
instead of passing the tensor through unchanged.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

Mode = Literal["mean_std", "min_max", "image"]
#: ``image`` mode estimates its per-channel stats from at most this many evenly spaced frames, so
#: fitting on a large camera dataset never converts all of it to floats.
IMAGE_STAT_FRAMES = 1000


def _buffer_name(key: str) -> str:
    return key.replace(".", "__")


class Normalizer(nn.Module):
    """Per-key affine map ``x -> (x - offset) / scale`` and its inverse.

    ``mean_std`` maps to zero mean and unit variance; ``min_max`` maps the data range to [-1, 1]
    (what diffusion samplers with clipping expect); ``image`` is for camera frames (N, H, W, C)
    in 0..255: pixels scaled to [0, 1], then mean/std per channel, so its stats have shape (C,) and
    apply to channel-last frames by broadcasting.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], modes: dict[str, Mode]):
        super().__init__()
        self.modes = dict(modes)
        for key, shape in shapes.items():
            self.register_buffer(f"{_buffer_name(key)}__offset", torch.zeros(shape))
            self.register_buffer(f"{_buffer_name(key)}__scale", torch.ones(shape))

    def _stats(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        if key not in self.modes:
            raise KeyError(f"normalizer has no stats for '{key}'; known keys: {sorted(self.modes)}")
        name = _buffer_name(key)
        return getattr(self, f"{name}__offset"), getattr(self, f"{name}__scale")

    @torch.no_grad()
    def fit(self, data: dict[str, np.ndarray]) -> None:
        """Fit every declared key on (N, *shape) arrays; constant dimensions get scale 1."""
        for key, mode in self.modes.items():
            if key not in data:
                raise KeyError(f"cannot fit normalizer: data has no '{key}' (has {sorted(data)})")
            if mode == "image":
                offset, scale = _channel_stats(np.asarray(data[key]))
            elif mode == "mean_std":
                x = torch.as_tensor(np.asarray(data[key]), dtype=torch.float64)
                offset, scale = x.mean(0), x.std(0, correction=0)
            else:
                x = torch.as_tensor(np.asarray(data[key]), dtype=torch.float64)
                lo, hi = x.amin(0), x.amax(0)
                offset, scale = (hi + lo) / 2, (hi - lo) / 2
            scale = torch.where(scale < 1e-6, torch.ones_like(scale), scale)
            buf_offset, buf_scale = self._stats(key)
            buf_offset.copy_(offset)
            buf_scale.copy_(scale)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        offset, scale = self._stats(key)
        return (x - offset) / scale

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        offset, scale = self._stats(key)
        return x * scale + offset


def _channel_stats(frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (C,) of frames (N, H, W, C) in 0..255 scaled to [0, 1], over at most
    ``IMAGE_STAT_FRAMES`` evenly spaced frames, accumulated in float64 sums a few frames at a time."""
    picks = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), IMAGE_STAT_FRAMES)).astype(int))
    total = np.zeros(frames.shape[-1])
    squares = np.zeros(frames.shape[-1])
    for chunk in np.array_split(picks, max(1, len(picks) // 50)):
        x = frames[chunk].reshape(-1, frames.shape[-1]).astype(np.float64) / 255.0
        total += x.sum(0)
        squares += (x**2).sum(0)
    count = len(picks) * int(np.prod(frames.shape[1:-1]))
    mean = total / count
    return torch.as_tensor(mean), torch.as_tensor(np.sqrt(np.maximum(squares / count - mean**2, 0.0)))


#: An action dimension counts as an absolute target for a state coordinate when its offset from
#: that coordinate varies at most this fraction as much as the action itself (PushT: ~0.2).
TRACKING_RATIO = 0.5


def tracked_coordinates(action: np.ndarray, state: np.ndarray) -> np.ndarray:
    """(A,) index of the state column (N, D) each action column (N, A) is an absolute target for, -1
    for none: the column whose offset from the action varies least, if it varies under
    ``TRACKING_RATIO`` times the action's own spread (a position target tracks the position; a
    velocity or delta action is not close to any coordinate)."""
    action, state = np.asarray(action, dtype=np.float64), np.asarray(state, dtype=np.float64)
    if state.shape[1] == 0:
        return np.full(action.shape[1], -1, dtype=np.int64)
    a, s = action - action.mean(0), state - state.mean(0)
    offset_var = (a**2).mean(0)[:, None] + (s**2).mean(0)[None] - 2 * (a.T @ s) / len(a)  # (A, D): var(a_j - s_i)
    best = offset_var.argmin(1)
    spread = a.std(0)
    ratio = np.sqrt(np.maximum(offset_var[np.arange(len(best)), best], 0.0)) / np.maximum(spread, 1e-12)
    return np.where((ratio < TRACKING_RATIO) & (spread > 1e-6), best, -1)
