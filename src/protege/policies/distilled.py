"""``distilled``: a one-step student of a trained diffusion or flow teacher.

Distillation of the teacher's deterministic sampler (Luhman & Luhman, 2021, "Knowledge distillation
in iterative generative models"): the teacher's DDIM / Euler sampler is a deterministic map from
(obs, noise z) to an action chunk, so the student regresses that map directly: ``student(obs, z)``
is fitted to ``teacher(obs, z)`` with a per-sample MSE in normalized units, and at inference it is
one network call per chunk. Because the target depends on z, the student learns which mode the
teacher picks for each z instead of averaging the modes: given the same z it lands where the
teacher would (up to a thin band of z near the teacher's mode boundary, where it blurs).

Targets are cached by default: ``fit`` samples the teacher ``cache_noise`` (K) times from fresh z
at every training window, and a training batch takes one random cached (z, target) per window,
looked up by the window's raw observations. The teacher's sampler costs ``num_inference_steps``
gradient-free forward passes per sample against ~3 passes for the student's forward + backward, so
sampling it every step makes a step several times slower; the cache costs K teacher samples per
window once.
Windows not in the cache (validation episodes) are sampled fresh, so the validation loss measures
generalization to new observations and new z. ``cache_noise=0`` samples the teacher every step
(unlimited z, for long runs where K x windows draws would be memorized).

The teacher (``config.teacher``, a run or checkpoint folder) is loaded in ``fit`` (or lazily by the
first ``loss``), frozen, and kept outside the module's state: the student's checkpoint holds only
its own weights and the normalizer copied from the teacher, so loading and running it never needs
the teacher. The student must use the teacher's feature spec, ``n_obs`` and ``horizon``; its noise
has the teacher's shape (B, horizon, action_dim).

Measured: docs/results.md#family-distilled
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from protege.data.store import EpisodeStore
from protege.data.windows import WindowSampler
from protege.policies.base import FeatureSpec, Policy
from protege.policies.nets.denoisers import DenoiserConfig, make_denoiser
from protege.policies.storage import load_policy


@dataclass
class DistilledConfig(DenoiserConfig):
    """One-step student regressing a diffusion or flow teacher's sample from the same noise."""

    teacher: str = ""
    """Teacher run or checkpoint folder (a trained diffusion or flow policy); only needed for training."""
    n_obs: int = 2
    """Observation history length; must equal the teacher's."""
    horizon: int = 16
    """Length of the predicted action chunk; must equal the teacher's."""
    n_action_steps: int = 8
    teacher_steps: int = 0
    """Sampling steps the teacher runs to make targets (0: its own num_inference_steps)."""
    teacher_ema: bool = True
    """Load the teacher's EMA weights when its checkpoint has them."""
    cache_noise: int = 8
    """Teacher samples (z, chunk) cached per training window in ``fit``; training batches draw from them (0: sample the
    teacher every step)."""

    name: ClassVar[str] = "distilled"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.teacher:
            raise ValueError("distilled needs a teacher: --policy.teacher RUN (a trained diffusion or flow run folder)")
        if self.teacher_steps < 0 or self.cache_noise < 0:
            raise ValueError(
                f"teacher_steps and cache_noise must be >= 0, got {self.teacher_steps}, {self.cache_noise}"
            )


class _Shared:
    """Holds the teacher (or the target cache) outside nn.Module bookkeeping: not in state_dict or
    parameters, not moved by ``.to``, and shared, not copied, by ``copy.deepcopy`` (the trainer's
    EMA copy of the student)."""

    def __init__(self, value):
        self.value = value

    def __deepcopy__(self, memo: dict) -> _Shared:
        return self


@dataclass
class TargetCache:
    """Teacher samples for the training windows, on the CPU. Identical windows (common: toy/fork
    episodes share their path after the fork) pool their draws, so a window the trainer samples c
    times as often has c x K draws. ``rows``: raw obs window bytes -> unique window u; its draws are
    ``noise``/``target`` rows ``start[u] .. start[u] + size[u] - 1`` (normalized units)."""

    rows: dict[bytes, int]
    start: torch.Tensor
    size: torch.Tensor
    noise: torch.Tensor
    target: torch.Tensor

    def draw(self, windows: torch.Tensor) -> torch.Tensor:
        """One random draw index per unique window id (B,)."""
        size = self.size[windows]
        return self.start[windows] + (torch.rand(len(windows)) * size).long().clamp(max=size - 1)


def check_teacher(teacher: Policy, config: DistilledConfig, spec: FeatureSpec) -> None:
    """Raise a ValueError naming what makes ``teacher`` unusable for a student with config/spec."""
    where = f"teacher '{config.teacher}'"
    noise = teacher.sample_noise(1)
    shape = (1, teacher.config.horizon, teacher.spec.action_dim)
    if noise is None or tuple(noise.shape) != shape:
        raise ValueError(
            f"{where} is a '{teacher.config.name}' policy, not a generative chunk sampler; "
            f"distill from a diffusion or flow run"
        )
    if (teacher.config.n_obs, teacher.config.horizon) != (config.n_obs, config.horizon):
        raise ValueError(
            f"{where} has n_obs={teacher.config.n_obs}, horizon={teacher.config.horizon} but the student has "
            f"n_obs={config.n_obs}, horizon={config.horizon}; they must match "
            f"(--policy.n-obs {teacher.config.n_obs} --policy.horizon {teacher.config.horizon})"
        )
    if teacher.spec != spec:
        raise ValueError(
            f"{where} was trained on features {teacher.spec.to_json()} but the student's are {spec.to_json()}; "
            f"use the teacher's dataset and --policy.obs-keys {' '.join(teacher.spec.obs_shapes)}"
        )


class DistilledPolicy(Policy):
    config_class = DistilledConfig

    def __init__(self, config: DistilledConfig, spec: FeatureSpec):
        super().__init__(config, spec)
        self.student = make_denoiser(config, spec.action_dim, config.n_obs * self.obs_dim)
        self._teacher: _Shared | None = None
        self._cache: _Shared | None = None

    @property
    def teacher(self) -> Policy:
        """The frozen teacher, loaded (and checked) on first use; on the student's device."""
        if self._teacher is None:
            teacher = load_policy(self.config.teacher, ema=self.config.teacher_ema)
            check_teacher(teacher, self.config, self.spec)
            if self.config.teacher_steps:
                limit = getattr(teacher.config, "num_train_timesteps", self.config.teacher_steps)
                if self.config.teacher_steps > limit:
                    raise ValueError(
                        f"teacher_steps must be <= the teacher's num_train_timesteps={limit}, "
                        f"got {self.config.teacher_steps}"
                    )
                teacher.config.num_inference_steps = self.config.teacher_steps
            self._teacher = _Shared(teacher.requires_grad_(False).eval())
        teacher = self._teacher.value
        if teacher.device != self.device:
            teacher.to(self.device)
        return teacher

    def _window_keys(self, obs: dict[str, torch.Tensor]) -> list[bytes]:
        """Identity of each raw observation window (B rows), to find it in the cache: a 128-bit
        digest of its bytes (camera frames as stored, uint8), so keys stay small beside the frames."""
        parts = [torch.as_tensor(obs[k]).flatten(1).cpu().numpy() for k in self.spec.obs_shapes]
        rows = np.concatenate([part.view(np.uint8).reshape(len(part), -1) for part in parts], axis=1)
        return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]

    def fit(self, store: EpisodeStore) -> None:
        """Load the teacher, take its normalizer (the student works in the teacher's units) and, with
        ``cache_noise`` K > 0, sample the teacher K times from fresh noise at every training window."""
        self.normalizer.load_state_dict(self.teacher.normalizer.state_dict())
        if hasattr(self, "action_reference"):  # the teacher's offsets (none if it learned raw actions)
            self.set_action_reference(
                getattr(self.teacher, "action_reference", self.action_reference.new_full((self.spec.action_dim,), -1))
            )
        self._cache = None
        if self.config.cache_noise == 0:
            return
        k = self.config.cache_noise
        sampler = WindowSampler(store, self.config.n_obs, self.config.horizon, self.device)
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
        rows: dict[bytes, int] = {}
        ids, noise, target = [], [], []
        for idx in torch.arange(len(sampler)).split(max(1, 4096 // k)):
            obs = sampler.gather(idx)
            z = torch.randn(len(idx) * k, self.config.horizon, self.spec.action_dim, generator=generator).to(
                self.device
            )
            noise.append(z.view(len(idx), k, *z.shape[1:]).cpu())
            target.append(self.teacher_sample(obs, z, k).view(len(idx), k, *z.shape[1:]).cpu())
            ids += [rows.setdefault(key, len(rows)) for key in self._window_keys(obs)]
        ids_t = torch.tensor(ids)
        order = torch.argsort(ids_t, stable=True)  # the draws of identical windows side by side
        size = torch.bincount(ids_t, minlength=len(rows)) * k
        flat = lambda parts: torch.cat(parts)[order].flatten(0, 1)  # noqa: E731
        self._cache = _Shared(TargetCache(rows, size.cumsum(0) - size, size, flat(noise), flat(target)))

    def noise_shape(self) -> tuple[int, ...]:
        return (self.config.horizon, self.spec.action_dim)

    @torch.no_grad()
    def teacher_sample(self, obs: dict[str, torch.Tensor], noise: torch.Tensor, repeats: int = 1) -> torch.Tensor:
        """The teacher's normalized chunks for raw observation windows (B rows) and noise
        (B * repeats, H, A), row i's window repeated for draws i * repeats ..: the student's
        regression targets. The teacher encodes the windows itself (its own cameras, in eval mode);
        the student's encoders learn their own features."""
        features = self.teacher.encode_obs({key: obs[key] for key in self.spec.obs_shapes})
        return self.teacher.predict_normalized(features.repeat_interleave(repeats, 0), noise)

    def targets(self, batch: dict[str, torch.Tensor], cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, teacher chunk) per sample: a random cached draw for windows seen in ``fit``, fresh
        teacher samples for the others (validation windows, or every window without a cache)."""
        z = torch.randn(len(cond), self.config.horizon, self.spec.action_dim, device=cond.device)
        target = torch.empty_like(z)
        hit = torch.zeros(len(cond), dtype=torch.bool)
        if self._cache is not None:
            cache = self._cache.value
            windows = torch.tensor([cache.rows.get(key, -1) for key in self._window_keys(batch)])
            hit = windows >= 0
            if hit.any():
                draw = cache.draw(windows[hit])
                z[hit.to(z.device)] = cache.noise[draw].to(z.device)
                target[hit.to(z.device)] = cache.target[draw].to(z.device)
        miss = (~hit).to(z.device)
        if miss.any():
            target[miss] = self.teacher_sample({key: batch[key][miss] for key in self.spec.obs_shapes}, z[miss])
        return z, target

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.normalized_action(batch)  # checks the action size; the target is the teacher's, not the data's
        cond = self.encode_obs(batch)
        z, target = self.targets(batch, cond)
        return self.chunk_mse(
            self.student(z, torch.zeros(len(z), device=z.device), cond), target, batch["action_is_pad"]
        )

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self.student(noise, torch.zeros(len(noise), device=noise.device), obs_features)
