"""Transformer denoiser: one token per chunk time step, conditioned through adaptive LayerNorm.

The observation features and the diffusion/flow time are embedded into one condition vector that
scales, shifts and gates every block (adaLN-Zero, as in DiT): this reaches every token at every
layer, where a prepended condition token must first be found by attention. Attention is not
causal: the denoiser refines a whole chunk at once, so later actions inform earlier ones (the
chunk is executed open loop, smoothness across it matters more than an autoregressive order).
"""

from __future__ import annotations

import torch
from torch import nn

from protege.policies.nets.common import Conditioned, SinusoidalEmbedding


class AdaLNBlock(nn.Module):
    """Pre-norm attention + MLP block whose norms are modulated and residuals gated by the condition.

    The modulation starts at zero, so every block starts as the identity and training grows it.
    """

    def __init__(self, dim: int, heads: int, cond_dim: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * dim, dim)
        )
        self.modulation = nn.Linear(cond_dim, 6 * dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # x (B, T, D), cond (B, C)
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond).unsqueeze(1).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        x = x + gate1 * self.attn(h, h, h, need_weights=False)[0]
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.mlp(h)


class TransformerDenoiser(Conditioned, nn.Module):
    """Same interface as FiLMMLPDenoiser: x (B, H, A), t (B,), cond (B, C) -> (B, H, A)."""

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        time_dim: int = 64,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer width {dim} must divide by its number of heads {heads}")
        self.time_embed = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim), nn.Mish())
        self.cond = nn.Sequential(nn.Linear(time_dim + cond_dim, dim), nn.Mish(), nn.Linear(dim, dim), nn.Mish())
        self.inp = nn.Linear(action_dim, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(horizon, dim))
        self.blocks = nn.ModuleList(AdaLNBlock(dim, heads, dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.final_modulation = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, action_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = self.cond(torch.cat([self.time_embed(t), cond], dim=-1))
        h = self.inp(x) + self.pos
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_modulation(c).unsqueeze(1).chunk(2, dim=-1)
        return self.out(self.norm(h) * (1 + scale) + shift)
