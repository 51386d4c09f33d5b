"""``residual``: a frozen base policy plus a small actor that adds a bounded correction at every step.

Residual policy learning (Silver et al. 2018; ResiP, Ankile et al. 2024): the base keeps executing
its own chunks as the runner schedules them, and at every step the residual actor sees the step's
observation history and the base action the runner picked, and adds

    a = clip(a_base + scale * half_range * tanh(actor([obs features, (a_base - mid) / half_range])))

where ``mid`` and ``half_range`` describe the task's action box. The correction therefore never
leaves ``scale`` of the range, and the base's weights are never touched (its parameters are
frozen; ``protege improve --method residual`` trains the actor only). Without a base (``base``
empty) the "base action" is the box's middle and ``scale`` 1: a plain actor, which is how SAC from
scratch (``--method sac``) is stored and evaluated like any other policy.

The observation features use this policy's own normalizer, copied from the base's when it is built,
so the actor's inputs are the base's normalized observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from protege.policies.base import FeatureSpec, Policy, PolicyConfig
from protege.policies.nets.common import relu_mlp
from protege.policies.storage import policy_from_json


@dataclass
class ResidualConfig(PolicyConfig):
    """A frozen base (its policy config and feature spec) and the correcting actor's shape and bound."""

    base: dict = field(default_factory=dict)
    """The base policy's ``{"policy": ..., "spec": ...}`` entry; empty for a plain actor (SAC from scratch)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor (ReLU)."""
    scale: float = 0.2
    """Largest correction, as a fraction of the action box's half-width per dimension."""
    action_low: tuple[float, ...] = ()
    """The task's action box, lower corner."""
    action_high: tuple[float, ...] = ()
    """The task's action box, upper corner."""
    relative_actions: str = "off"

    name: ClassVar[str] = "residual"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if len(self.action_low) != len(self.action_high):
            raise ValueError("action_low and action_high must have one entry per action dimension")


class ResidualPolicy(Policy):
    config_class = ResidualConfig

    def __init__(self, config: ResidualConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.base = policy_from_json(config.base) if config.base else None
        if self.base is not None:
            self.base.requires_grad_(False)
        low = torch.tensor(config.action_low or [-1.0] * spec.action_dim, dtype=torch.float32)
        high = torch.tensor(config.action_high or [1.0] * spec.action_dim, dtype=torch.float32)
        self.register_buffer("action_mid", (high + low) / 2)
        self.register_buffer("action_half", (high - low) / 2)
        self.actor = relu_mlp(self.feature_dim, config.hidden, spec.action_dim)

    @property
    def feature_dim(self) -> int:
        """Width of the actor's input: the observation history and the base action."""
        return self.config.n_obs * self.obs_dim + self.spec.action_dim

    def features(self, obs: dict[str, torch.Tensor], base_action: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim) actor input: normalized observation history, base action scaled to [-1, 1]."""
        return torch.cat([self.encode_obs(obs), (base_action - self.action_mid) / self.action_half], dim=1)

    def apply(self, base_action: torch.Tensor, squashed: torch.Tensor) -> torch.Tensor:
        """The executed action from the base action and the actor's output in [-1, 1]."""
        scale = self.config.scale if self.base is not None else 1.0
        corrected = base_action + scale * self.action_half * squashed
        return torch.minimum(
            torch.maximum(corrected, self.action_mid - self.action_half), self.action_mid + self.action_half
        )

    def predict(self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        """The base's chunks (the box's middle, as a one-step chunk, without a base)."""
        if self.base is not None:
            return self.base.predict(obs, noise)
        batch = len(next(iter(obs.values())))
        return self.action_mid.expand(batch, 1, -1).clone()

    def noise_shape(self) -> tuple[int, ...] | None:
        return self.base.noise_shape() if self.base is not None else None

    def sample_noise(self, batch_size: int, generator=None) -> torch.Tensor | None:
        """The base's own noise draw (a family may override ``sample_noise``, as bet does)."""
        return self.base.sample_noise(batch_size, generator) if self.base is not None else None

    @torch.inference_mode()
    def correct(self, obs: dict[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        base_action = action.to(self.device, torch.float32)
        return self.apply(base_action, torch.tanh(self.actor(self.features(obs, base_action))))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError("a residual policy is trained by `protege improve --method residual`, not by BC")
