"""``diffusion``: diffusion policy over action chunks (DDPM training, DDIM sampling).

Training adds noise at a random timestep of a cosine schedule and regresses the clean chunk (or
the noise); sampling runs ``num_inference_steps`` deterministic DDIM steps from Gaussian noise,
which may be passed in (``predict(obs, noise=...)``) to fix or steer the result.

Measured: docs/results.md#family-diffusion
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from protege.policies.base import FeatureSpec, Policy
from protege.policies.nets.denoisers import DenoiserConfig, make_denoiser


@dataclass
class DiffusionConfig(DenoiserConfig):
    """Denoising diffusion over (horizon, action_dim) chunks conditioned on the obs history."""

    n_obs: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    num_train_timesteps: int = 100
    """Diffusion steps of the training noise schedule."""
    num_inference_steps: int = 10
    """DDIM steps at sampling time (<= num_train_timesteps); fewer is faster."""
    timestep_spacing: Literal["leading", "trailing"] = "leading"
    """Which training timesteps DDIM visits. ``leading`` (0, r, 2r, ... with r = train / inference
    steps; diffusion_policy's choice) never starts at the noisiest step, so one step denoises pure
    noise as if it were nearly clean and fails; ``trailing`` (T-1, T-1-r, ...) starts there, which
    makes 1-4 step sampling usable. It only affects sampling, so it can be changed on a loaded
    policy (``policy.config.timestep_spacing``) without retraining."""
    prediction: Literal["epsilon", "sample"] = "sample"
    """What the network predicts: the clean chunk (``sample``) or the added noise (``epsilon``,
    diffusion_policy's and LeRobot's choice). On PushT, sample prediction learns several times
    faster at the same budget (docs/results.md#pusht-why-diffusion-failed-what-changed-and-the-bar);
    checkpoints keep the choice they were trained with."""
    clip_sample: bool = True
    """Clip the predicted clean chunk to the normalized action range [-1, 1]."""

    name: ClassVar[str] = "diffusion"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps must be in [1, {self.num_train_timesteps}], got {self.num_inference_steps}"
            )
        if self.timestep_spacing not in ("leading", "trailing"):
            raise ValueError(f"timestep_spacing must be 'leading' or 'trailing', got '{self.timestep_spacing}'")


def cosine_alphas_cumprod(steps: int, s: float = 0.008) -> torch.Tensor:
    """Cumulative signal fraction of the squared-cosine schedule, betas capped at 0.999."""
    f = lambda t: math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    betas = torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(steps)], dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0).float()


class DiffusionPolicy(Policy):
    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.denoiser = make_denoiser(config, spec.action_dim, config.n_obs * self.obs_dim)
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(config.num_train_timesteps), persistent=False)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = self.normalized_action(batch)  # (B, H, A)
        cond = self.encode_obs(batch)
        t = torch.randint(0, self.config.num_train_timesteps, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        abar = self.alphas_cumprod[t].view(-1, 1, 1)
        xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        target = noise if self.config.prediction == "epsilon" else x0
        return self.chunk_mse(self.denoiser(xt, t, cond), target, batch["action_is_pad"])

    def noise_shape(self) -> tuple[int, ...]:
        return (self.config.horizon, self.spec.action_dim)

    def timesteps(self) -> list[int]:
        """DDIM's evenly spaced subset of training timesteps, from noisiest to cleanest."""
        total, steps = self.config.num_train_timesteps, self.config.num_inference_steps
        if self.config.timestep_spacing == "trailing":
            return [round(total - i * total / steps) - 1 for i in range(steps)]
        return [i * (total // steps) for i in reversed(range(steps))]

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        x = noise
        steps = self.timesteps()
        for i, t in enumerate(steps):
            abar = self.alphas_cumprod[t]
            abar_prev = self.alphas_cumprod[steps[i + 1]] if i + 1 < len(steps) else torch.ones_like(abar)
            out = self.denoiser(x, torch.full((len(x),), t, device=x.device), obs_features)
            if self.config.prediction == "epsilon":
                x0 = (x - (1 - abar).sqrt() * out) / abar.sqrt()
            else:
                x0 = out
            if self.config.clip_sample:
                x0 = x0.clamp(-1, 1)
            eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()
            x = abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps
        return x
