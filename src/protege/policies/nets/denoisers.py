"""The denoiser choice shared by every family that refines an action chunk: diffusion, flow, MIP.

All three networks map a noisy or partial chunk x (B, H, A), a time t (B,) and the encoded
observation history (B, C) to a chunk (B, H, A); a family picks one with ``denoiser=...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from protege.policies.base import PolicyConfig
from protege.policies.nets.film_mlp import FiLMMLPDenoiser
from protege.policies.nets.transformer import TransformerDenoiser
from protege.policies.nets.unet1d import UNet1DDenoiser

#: The denoisers embed time on the diffusion-step scale (0..100); families with continuous time in
#: [0, 1] multiply by this, or the sinusoidal features barely change across the whole interval.
TIME_SCALE = 100.0


@dataclass
class DenoiserConfig(PolicyConfig):
    """Settings of the chunk network; families that refine chunks subclass this."""

    denoiser: Literal["mlp", "unet", "transformer"] = "mlp"
    """Network: residual FiLM MLP over the flat chunk (fast on CPU), 1-D temporal U-Net, or a transformer with one token
    per step."""
    hidden_dim: int = 256
    """Width of the MLP denoiser."""
    depth: int = 4
    """Residual blocks of the MLP denoiser."""
    unet_dims: tuple[int, ...] = (64, 128, 256)
    """Channel widths per U-Net level; horizon must divide by 2**(levels-1)."""
    kernel_size: int = 5
    """U-Net convolution kernel size."""
    transformer_dim: int = 128
    """Token width of the transformer denoiser."""
    transformer_depth: int = 4
    """Blocks of the transformer denoiser."""
    transformer_heads: int = 4
    """Attention heads of the transformer denoiser (must divide transformer_dim)."""


def make_denoiser(config: DenoiserConfig, action_dim: int, cond_dim: int) -> nn.Module:
    """The network ``config.denoiser`` names, sized by the config for (horizon, action_dim) chunks."""
    if config.denoiser == "mlp":
        return FiLMMLPDenoiser(action_dim, config.horizon, cond_dim, config.hidden_dim, config.depth)
    if config.denoiser == "unet":
        return UNet1DDenoiser(action_dim, config.horizon, cond_dim, tuple(config.unet_dims), config.kernel_size)
    if config.denoiser == "transformer":
        return TransformerDenoiser(
            action_dim,
            config.horizon,
            cond_dim,
            config.transformer_dim,
            config.transformer_depth,
            config.transformer_heads,
        )
    raise ValueError(f"unknown denoiser '{config.denoiser}'; choose mlp, unet or transformer")
