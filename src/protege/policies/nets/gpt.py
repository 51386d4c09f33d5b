"""A small GPT: causal pre-norm transformer over a short token sequence (the observation history)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalBlock(nn.Module):
    """x + attn(LN(x)) with a causal mask, then x + MLP(LN(x)): each token sees only its past."""

    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"embed_dim={dim} must be divisible by n_heads={n_heads}")
        self.n_heads, self.dropout = n_heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D)
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        x = x + self.proj(h.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """Tokens (B, T, in_dim) -> features (B, T, embed_dim), learned positions, T <= max_len."""

    def __init__(self, in_dim: int, max_len: int, embed_dim: int, n_layers: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Linear(in_dim, embed_dim)
        self.pos = nn.Parameter(torch.zeros(max_len, embed_dim))
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(CausalBlock(embed_dim, n_heads, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.embed(tokens) + self.pos[: tokens.shape[1]])
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
