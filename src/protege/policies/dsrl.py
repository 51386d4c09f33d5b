"""``dsrl``: a frozen generative policy steered through its initial noise (DSRL, Wagenmaker et al. 2025).

A diffusion, flow, mip (with inference noise) or distilled policy turns an observation and an
initial noise ``w`` into an action chunk with a deterministic sampler. Diffusion steering by RL
learns a small actor that chooses ``w`` instead of drawing it:

    w = noise_bound * tanh(actor(normalized observation history)),   chunk = base.predict(obs, noise=w)

so every chunk the steered policy executes is one the base could have produced, and the base's
weights are never touched. ``protege improve --method noise`` trains the actor with SAC, one RL
step per executed chunk (protege.improve.noise). At evaluation the actor is deterministic, so the
steered policy draws no noise of its own (``noise_shape`` is None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from protege.policies.base import FeatureSpec, Policy, PolicyConfig
from protege.policies.nets.common import relu_mlp
from protege.policies.storage import policy_from_json


@dataclass
class NoiseSpaceConfig(PolicyConfig):
    """A frozen generative base and the noise actor's shape and bound."""

    base: dict = field(default_factory=dict)
    """The base policy's ``{"policy": ..., "spec": ...}`` entry (diffusion, flow, mip or distilled)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the noise actor (ReLU)."""
    noise_bound: float = 1.5
    """Largest absolute noise value the actor may choose (the base's noise is standard normal)."""
    relative_actions: str = "off"

    name: ClassVar[str] = "dsrl"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.base:
            raise ValueError("dsrl needs a base policy entry")
        if not self.noise_bound > 0:
            raise ValueError(f"noise_bound must be > 0, got {self.noise_bound}")


class NoiseSpacePolicy(Policy):
    config_class = NoiseSpaceConfig

    def __init__(self, config: NoiseSpaceConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.base = policy_from_json(config.base)
        self.base.requires_grad_(False)
        shape = self.base.noise_shape()
        if shape is None:
            raise ValueError(
                f"the base policy ({self.base.config.name}) draws no initial noise, so there is no noise space to "
                "steer; use a diffusion, flow, distilled or mip (--policy.inference-noise > 0) policy"
            )
        self.base_noise_shape = tuple(shape)
        self.actor = relu_mlp(config.n_obs * self.obs_dim, config.hidden, math.prod(shape))

    @property
    def noise_dim(self) -> int:
        return math.prod(self.base_noise_shape)

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, n_obs * obs_dim) actor input: the normalized observation history."""
        return self.encode_obs(obs)

    def to_noise(self, squashed: torch.Tensor) -> torch.Tensor:
        """The base's initial noise (B, *noise_shape) from an actor output in [-1, 1]."""
        return (self.config.noise_bound * squashed).view(-1, *self.base_noise_shape)

    @torch.inference_mode()
    def predict(self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        """The base's chunk from the actor's noise; a ``noise`` given here is the actor's output in [-1, 1]
        (B, noise_dim), as the RL environment passes it, instead of the actor's own choice."""
        squashed = torch.tanh(self.actor(self.features(obs))) if noise is None else noise.to(self.device)
        return self.base.predict(obs, noise=self.to_noise(squashed))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError("a dsrl policy is trained by `protege improve --method noise`, not by BC")
