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
    n_action_steps: int = 4
    """Steps of each chunk executed before predicting again. 4 of 16 (diffusion_policy: 8) replans
    twice as often: on PushT +17 points of success, paired, and no loss on toy/fork or Meta-World
    push (docs/results.md#pusht-why-diffusion-failed-what-changed-and-the-bar)."""
    num_train_timesteps: int = 100
    """Diffusion steps of the training noise schedule."""
    num_inference_steps: int = 5
    """DDIM steps at sampling time (<= num_train_timesteps); fewer is faster. 5 trailing steps kept
    10 leading steps' success on PushT, toy/fork and Meta-World push at half the time per chunk."""
    timestep_spacing: Literal["leading", "trailing"] = "trailing"
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
        alphas_cumprod = cosine_alphas_cumprod(config.num_train_timesteps)
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)
        self.schedule = alphas_cumprod.tolist()

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
        x, batch = noise, len(noise)
        steps = self.timesteps()
        t = torch.tensor(steps, device=x.device).repeat_interleave(batch)
        conditions = self.denoiser.conditions(t, obs_features.repeat(len(steps), 1))  # every step in one call
        abars = [self.schedule[step] for step in steps] + [1.0]  # Python floats: no device round trips
        for i, (abar, abar_prev) in enumerate(zip(abars, abars[1:])):
            out = self.denoiser.denoise(x, [c[i * batch : (i + 1) * batch] for c in conditions])
            x0 = out if self.config.prediction == "sample" else (x - math.sqrt(1 - abar) * out) / math.sqrt(abar)
            if self.config.clip_sample:
                x0 = x0.clamp(-1, 1)
            # DDIM: x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev) eps, eps = (x - sqrt(abar) x0) / sqrt(1 - abar)
            keep = math.sqrt((1 - abar_prev) / (1 - abar))
            x = x0.mul(math.sqrt(abar_prev) - keep * math.sqrt(abar)).add_(x, alpha=keep)
        return x
