"""Small building blocks shared by the policy networks."""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(in_dim: int, hidden_dim: int, depth: int, out_dim: int) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden_dim`` with Mish activations, then a linear head."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden_dim), nn.Mish()]
        width = hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def relu_mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Linear + ReLU per hidden width, then a linear head: the layout of stable-baselines3's SAC actor,
    so a trained actor's mean head copies into it weight for weight (protege.improve.sac)."""
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class Conditioned:
    """The split every denoiser offers a sampler: ``conditions(t, cond)`` (tensors with the batch
    first) then ``denoise(x, conditions)``. A sampler with a fixed schedule computes the conditions
    of all its steps in one batched call and slices each step's rows; networks that gain nothing
    from the split pass t and cond through."""

    def conditions(self, t: torch.Tensor, cond: torch.Tensor) -> list[torch.Tensor]:
        return [t, cond]

    def denoise(self, x: torch.Tensor, conditions: list[torch.Tensor]) -> torch.Tensor:
        return self(x, *conditions)


class SinusoidalEmbedding(nn.Module):
    """Diffusion timestep (B,) -> (B, dim) sin/cos features at geometric frequencies."""

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        self.register_buffer(
            "freqs", torch.exp(-math.log(10_000) * torch.arange(half) / max(half - 1, 1)), persistent=False
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, is_pad: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE (B,) of (B, H, A) chunks over the steps that are real, not edge padding."""
    valid = (~is_pad).unsqueeze(-1).to(pred.dtype)  # (B, H, 1)
    return ((pred - target).pow(2) * valid).sum(dim=(1, 2)) / (valid.sum(dim=(1, 2)) * pred.shape[-1]).clamp(min=1)
