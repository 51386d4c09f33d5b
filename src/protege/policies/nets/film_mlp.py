"""Residual MLP denoiser over a flattened action chunk, conditioned by FiLM.

Trains two orders of magnitude faster than a temporal U-Net on a CPU for low-dimensional
observations, which is what makes the default benchmark fit in minutes.
"""

from __future__ import annotations

import torch
from torch import nn

from protege.policies.nets.common import Conditioned, SinusoidalEmbedding


class FiLMResidualBlock(nn.Module):
    """x + W2 · mish(FiLM(W1 · mish(LN(x)))): the condition scales and shifts the features."""

    def __init__(self, dim: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.film = nn.Linear(cond_dim, 2 * dim)
        self.fc2 = nn.Linear(dim, dim)
        self.act = nn.Mish()

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        scale, shift = film.chunk(2, dim=-1)
        h = self.fc1(self.act(self.norm(x))) * (1 + scale) + shift
        return x + self.fc2(self.act(h))


class FiLMMLPDenoiser(Conditioned, nn.Module):
    """Predicts noise (or the clean chunk) for x (B, H, A) at timesteps t (B,) given cond (B, C)."""

    def __init__(
        self, action_dim: int, horizon: int, cond_dim: int, hidden_dim: int = 256, depth: int = 4, time_dim: int = 64
    ):
        super().__init__()
        self.time_embed = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim), nn.Mish())
        self.cond = nn.Sequential(nn.Linear(time_dim + cond_dim, hidden_dim), nn.Mish())
        self.inp = nn.Linear(horizon * action_dim, hidden_dim)
        self.blocks = nn.ModuleList(FiLMResidualBlock(hidden_dim, hidden_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, horizon * action_dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoise(x, self.conditions(t, cond))

    def conditions(self, t: torch.Tensor, cond: torch.Tensor) -> list[torch.Tensor]:
        """Every block's (B, 2 * hidden) FiLM parameters: all that depends on t and cond, not on x.
        A sampler with a fixed schedule computes them for all its steps in one batched call."""
        c = self.cond(torch.cat([self.time_embed(t), cond], dim=-1))
        return [block.film(c) for block in self.blocks]

    def denoise(self, x: torch.Tensor, conditions: list[torch.Tensor]) -> torch.Tensor:
        h = self.inp(x.flatten(1))
        for block, film in zip(self.blocks, conditions):
            h = block(h, film)
        return self.out(h).view_as(x)
