"""1-D temporal U-Net denoiser (convolutions over the chunk's time axis, FiLM conditioning).

The architecture of the diffusion-policy paper at a configurable size; better suited to long
chunks and image features than the MLP denoiser, much slower on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from protege.policies.nets.common import Conditioned, SinusoidalEmbedding


def _conv_block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(min(8, c_out), c_out), nn.Mish()
    )


class FiLMConvBlock(nn.Module):
    """Two conv blocks with a per-channel FiLM of the condition between them, plus a skip."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int):
        super().__init__()
        self.conv1, self.conv2 = _conv_block(c_in, c_out, kernel), _conv_block(c_out, c_out, kernel)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # x (B, C, T)
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.conv1(x) * (1 + scale) + shift
        return self.conv2(h) + self.skip(x)


class UNet1DDenoiser(Conditioned, nn.Module):
    """Same interface as FiLMMLPDenoiser: x (B, H, A), t (B,), cond (B, C) -> (B, H, A).

    ``dims`` are channel widths per resolution; the horizon must divide by 2**(len(dims) - 1).
    """

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        dims: tuple[int, ...] = (64, 128, 256),
        kernel: int = 5,
        time_dim: int = 64,
    ):
        super().__init__()
        if horizon % 2 ** (len(dims) - 1):
            raise ValueError(
                f"U-Net with {len(dims)} levels needs horizon divisible by {2 ** (len(dims) - 1)}, got {horizon}"
            )
        self.time_embed = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim), nn.Mish())
        c = time_dim + cond_dim
        widths = (action_dim, *dims)
        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            last = i == len(dims) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        FiLMConvBlock(a, b, c, kernel),
                        FiLMConvBlock(b, b, c, kernel),
                        nn.Identity() if last else nn.Conv1d(b, b, 3, stride=2, padding=1),
                    ]
                )
            )
        self.mid = nn.ModuleList([FiLMConvBlock(dims[-1], dims[-1], c, kernel) for _ in range(2)])
        self.up = nn.ModuleList()
        for b, a in zip(reversed(dims[1:]), reversed(dims[:-1])):
            self.up.append(
                nn.ModuleList(
                    [
                        FiLMConvBlock(2 * b, a, c, kernel),
                        FiLMConvBlock(a, a, c, kernel),
                        nn.ConvTranspose1d(a, a, 4, stride=2, padding=1),
                    ]
                )
            )
        self.out = nn.Sequential(_conv_block(dims[0], dims[0], kernel), nn.Conv1d(dims[0], action_dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = torch.cat([self.time_embed(t), cond], dim=-1)
        h = x.transpose(1, 2)  # (B, A, H)
        skips = []
        for block1, block2, downsample in self.down:
            h = block2(block1(h, c), c)
            skips.append(h)
            h = downsample(h)
        for block in self.mid:
            h = block(h, c)
        for block1, block2, upsample in self.up:
            h = block2(block1(torch.cat([h, skips.pop()], dim=1), c), c)
            h = upsample(h)
        return self.out(h).transpose(1, 2)
