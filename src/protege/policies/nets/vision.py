"""Camera encoders: uint8 frames (B, H, W, 3) -> feature vectors (B, F), for every policy family.

An encoder crops (random at training time, centred in eval mode), scales to [0, 1], applies the
policy's per-channel image normalization, runs a backbone and reads spatial-softmax keypoints off
its last feature map: the expected (x, y) of each of ``keypoints`` learned heat maps, so the
features say *where* things are, which is what a controller needs (Levine et al. 2016; Diffusion
Policy and robomimic use the same head). Backbones, all our own modules (PyPI's torchvision does
not import beside the local torch build, and no pretrained weights are downloaded):

- ``resnet18``: ResNet-18's layout (four stages of two basic blocks, 64-512 channels) with
  GroupNorm instead of BatchNorm, as Diffusion Policy trains it from scratch (batch statistics
  are noisy at small batches and break EMA weights);
- ``small``: four 3x3 convolutions (32-64 channels, three of them stride 2) with GroupNorm: about
  25x fewer multiply-adds than ``resnet18`` at 84 px, for CPU budgets;
- ``pixels``: no parameters, the normalized frame average-pooled to an 8x8 grid and flattened,
  for families that do not train an encoder (retrieval compares these directly).

The encoder is shared across the observation history: frames of every step go through it as one
batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

Backbone = Literal["resnet18", "small", "pixels"]
BACKBONES: tuple[str, ...] = ("resnet18", "small", "pixels")
PIXEL_GRID = 8  # ``pixels``: side of the pooled grid


@functools.cache
def has_fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (emulated, autocast would only slow it down)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return (
        device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 16), channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection (projected when the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.norm1 = _norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = _norm(channels)
        self.skip = (
            nn.Identity()
            if stride == 1 and in_channels == channels
            else nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), _norm(channels))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(out)) + self.skip(x))


def resnet18_gn() -> tuple[nn.Sequential, int]:
    """ResNet-18 without its pooling head, GroupNorm throughout; (module, output channels)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), _norm(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    width = 64
    for channels, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(width, channels, stride), BasicBlock(channels, channels, 1)]
        width = channels
    return nn.Sequential(*layers), width


def small_convnet() -> tuple[nn.Sequential, int]:
    """Four 3x3 convolutions, stride 2, 2, 2, 1; (module, output channels)."""
    layers: list[nn.Module] = []
    width = 3
    for channels, stride in ((32, 2), (64, 2), (64, 2), (64, 1)):
        layers += [nn.Conv2d(width, channels, 3, stride, 1), _norm(channels), nn.ReLU()]
        width = channels
    return nn.Sequential(*layers), width


class SpatialSoftmax(nn.Module):
    """(B, C, h, w) feature map -> (B, 2 * keypoints): each keypoint's expected (x, y) in [-1, 1]."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.project = nn.Conv2d(channels, keypoints, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        heat = self.project(features)  # (B, K, h, w)
        b, k, h, w = heat.shape
        attention = heat.flatten(2).softmax(-1)  # (B, K, h * w)
        ys = torch.linspace(-1.0, 1.0, h, device=heat.device, dtype=heat.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=heat.device, dtype=heat.dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(h * w, 2)  # (h * w, 2): (x, y)
        return (attention @ grid).reshape(b, 2 * k)


def crop_size(height: int, width: int, crop: float) -> tuple[int, int]:
    """The (h, w) a ``crop`` fraction of each side keeps (at least 8 px)."""
    return max(min(8, height), round(height * crop)), max(min(8, width), round(width * crop))


def random_crop(frames: torch.Tensor, size: tuple[int, int], generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, H, W, C) -> (B, h, w, C), an independent random window per frame, gathered in one
    indexing call on the frames' device (no loop per frame)."""
    b, height, width = frames.shape[:3]
    h, w = size
    draw_on = generator.device if generator is not None else frames.device  # no host round trip on a GPU
    top = torch.randint(height - h + 1, (b, 1), generator=generator, device=draw_on).to(frames.device)
    left = torch.randint(width - w + 1, (b, 1), generator=generator, device=draw_on).to(frames.device)
    rows = (top + torch.arange(h, device=frames.device))[:, :, None]  # (B, h, 1)
    cols = (left + torch.arange(w, device=frames.device))[:, None, :]  # (B, 1, w)
    return frames[torch.arange(b, device=frames.device)[:, None, None], rows, cols]


def center_crop(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W, C) -> (B, h, w, C), the centred window."""
    height, width = frames.shape[1:3]
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    return frames[:, top : top + size[0], left : left + size[1]]


class ImageEncoder(nn.Module):
    """One camera's frames (B, H, W, 3), uint8 (or floats in [0, 255]) -> (B, ``out_dim``) features.

    ``forward``'s ``normalize`` maps channel-last [0, 1] pixels to normalized ones: the policy's
    ``Normalizer`` for this key (per channel), given at each call so that the stats live in one
    place and an EMA copy of the policy uses its own.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        backbone: Backbone = "small",
        crop: float = 0.9,
        keypoints: int = 32,
        bf16: bool = False,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"vision backbone must be one of {', '.join(BACKBONES)}, got '{backbone}'")
        if not 0.5 <= crop <= 1.0:
            raise ValueError(f"crop must be in [0.5, 1] (the kept fraction of each side), got {crop}")
        if len(shape) != 3 or shape[-1] != 3:
            raise ValueError(f"an image observation is (H, W, 3), got shape {list(shape)}")
        self.shape, self.backbone_name, self.bf16 = tuple(shape), backbone, bf16
        self.channels_last = (
            True  # measured faster for the convolutions on the CPU (benchmarks/speed.py --sections images)
        )
        self.crop = crop_size(shape[0], shape[1], crop)
        if backbone == "pixels":
            self.net, self.head = None, None
            self.out_dim = 3 * PIXEL_GRID * PIXEL_GRID
        else:
            self.net, channels = resnet18_gn() if backbone == "resnet18" else small_convnet()
            self.head = SpatialSoftmax(channels, keypoints)
            self.out_dim = 2 * keypoints

    def forward(
        self, frames: torch.Tensor, normalize: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        if tuple(frames.shape[1:]) != self.shape:
            raise ValueError(
                f"frames must have shape (B, {', '.join(map(str, self.shape))}), got {tuple(frames.shape)}"
            )
        if self.training and self.crop != self.shape[:2]:
            frames = random_crop(frames, self.crop)
        else:
            frames = center_crop(frames, self.crop)
        x = frames.float() / 255.0
        if normalize is not None:
            x = normalize(x)
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.permute(0, 3, 1, 2).contiguous(memory_format=layout)  # (B, 3, h, w)
        if self.net is None:
            return F.adaptive_avg_pool2d(x, PIXEL_GRID).flatten(1)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16 and has_fast_bf16(x.device)):
            features = self.net(x)
        return self.head(features.float())  # keypoints in float32: their coordinates need the precision
