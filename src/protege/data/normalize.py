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

Mode = Literal["mean_std", "min_max"]


def _buffer_name(key: str) -> str:
    return key.replace(".", "__")


class Normalizer(nn.Module):
    """Per-key affine map ``x -> (x - offset) / scale`` and its inverse.

    ``mean_std`` maps to zero mean and unit variance; ``min_max`` maps the data range to [-1, 1]
    (what diffusion samplers with clipping expect).
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
            x = torch.as_tensor(np.asarray(data[key]), dtype=torch.float64)
            if mode == "mean_std":
                offset, scale = x.mean(0), x.std(0, correction=0)
            else:
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
