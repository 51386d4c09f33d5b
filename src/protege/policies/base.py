"""The policy contract every family implements; the trainer and runner rely on nothing else.

A policy is a config dataclass plus an ``nn.Module`` that owns its normalizer and its math:

- ``loss(batch) -> (B,)`` per-sample losses, each >= 0 (the trainer reduces them, so curation can weight);
- ``predict(obs, noise=None) -> (B, horizon, A)`` action chunks in raw (unnormalized) units;
- ``sample_noise(B, generator)`` the initial noise a generative policy would draw (None if
  deterministic), so callers can fix or steer it. A family declares its shape with
  ``noise_shape`` (standard normal); ``predict`` draws it when none is given, so a family's
  ``predict_normalized`` always receives the noise it needs.

Observations are dicts key -> (B, n_obs, *shape) in raw units; batches add ``action``
(B, horizon, A) and ``action_is_pad`` (B, horizon).

The chunk contract: a window near an episode's end repeats the last action after the end
(``action_is_pad``). ``PolicyConfig.mask_padding`` decides, for every family alike, whether those
steps count in the loss; families compute their chunk errors with ``chunk_mse`` (or, for a
likelihood, weigh steps by ``loss_steps``) so the choice is made once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from protege.data.normalize import Normalizer, tracked_coordinates
from protege.data.store import ACTION, EpisodeStore
from protege.data.windows import WindowSampler, window_index
from protege.policies.nets.common import masked_mse
from protege.policies.nets.vision import BACKBONES, ImageEncoder

#: Default of ``PolicyConfig.mask_padding`` (see docs/results.md#padded-chunk-steps).
MASK_PADDING = True


@dataclass
class PolicyConfig:
    """Settings shared by every family: which observations it sees and its time windows."""

    n_obs: int = 1
    """Observation history length (frames up to and including the current one)."""
    horizon: int = 1
    """Length of the predicted action chunk."""
    n_action_steps: int = 1
    """Actions of each chunk the runner executes before predicting again (receding horizon)."""
    obs_keys: tuple[str, ...] = ()
    """Observation keys to condition on; empty means every low-dimensional key in the dataset. Name
    camera keys (``observation.image``, ``observation.images.<name>``: (H, W, 3) uint8 frames) to
    learn from pixels, beside state keys or alone."""
    vision: str = "small"
    """Encoder of every camera key: ``small`` (four convolutions, for CPU budgets), ``resnet18``
    (ResNet-18 with GroupNorm, as Diffusion Policy) or ``pixels`` (no parameters: an 8x8 grid of
    the normalized frame); both networks end in spatial-softmax keypoints (protege.policies.nets.vision)."""
    crop: float = 0.9
    """Fraction of each image side kept by the crop: random crops while training, the centre in
    evaluation (Diffusion Policy: 84 of 96 px); 1.0 turns the augmentation off."""
    keypoints: int = 32
    """Spatial-softmax keypoints per camera: each gives an (x, y) feature."""
    vision_bf16: bool = True
    """Run the camera backbones under bfloat16 autocast (the keypoints stay float32): measured 2.1x
    faster training steps of the small encoder on this CPU (AVX512-BF16) and on GPUs; turn off on
    CPUs without bfloat16 units (docs/vision.md#speed)."""
    mask_padding: bool = MASK_PADDING
    """Leave a chunk's padded steps (after the episode's end, repeating its last action) out of the
    loss; False fits them like real steps (the policy learns to hold still at the end). One default
    for every family, chosen by a paired measurement (docs/results.md#padded-chunk-steps)."""
    relative_actions: Literal["auto", "off"] = "auto"
    """``auto``: an action dimension that is an absolute target for an observed coordinate (PushT's
    target x for the agent's x), found in the data at ``fit``, is learned as its offset from that
    coordinate's current value, so the network never has to copy the agent's position to the pixel;
    ``off`` learns every action as recorded. Velocity and delta actions track no coordinate, so
    ``auto`` leaves them alone (docs/results.md#relative-actions)."""

    obs_noise: float = 0.0
    """Standard deviation of Gaussian noise added to the normalized state observations while
    training (not in evaluation): a regularizer for policies that memorize few demonstrations;
    0 turns it off (docs/results.md#regularization-on-pusht)."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if self.n_obs < 1 or self.horizon < 1:
            raise ValueError(f"n_obs and horizon must be >= 1, got n_obs={self.n_obs}, horizon={self.horizon}")
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ValueError(f"n_action_steps must be in [1, horizon={self.horizon}], got {self.n_action_steps}")
        if self.relative_actions not in ("auto", "off"):
            raise ValueError(f"relative_actions must be 'auto' or 'off', got '{self.relative_actions}'")
        if self.vision not in BACKBONES:
            raise ValueError(f"vision must be one of {', '.join(BACKBONES)}, got '{self.vision}'")
        if self.obs_noise < 0:
            raise ValueError(f"obs_noise must be >= 0, got {self.obs_noise}")
        if not 0.5 <= self.crop <= 1.0 or self.keypoints < 1:
            raise ValueError(
                f"need crop in [0.5, 1] and keypoints >= 1, got crop={self.crop}, keypoints={self.keypoints}"
            )


def require_fixed_encoding(config: PolicyConfig) -> None:
    """Refuse a learned camera encoder or observation noise for a family whose features are fixed
    once fitted (memories): noise would blur the memories and their leave-one-out scores."""
    if config.obs_noise > 0:
        raise ValueError(f"{config.name} embeds its memories once, when fitted: obs_noise must be 0")
    if config.vision != "pixels":
        raise ValueError(
            f"{config.name} embeds its memories once, when fitted, so its camera features cannot be learned: "
            f"use vision 'pixels', not '{config.vision}'"
        )


@dataclass(frozen=True)
class FeatureSpec:
    """Shapes a policy is built for: observation key -> per-step shape, and the action size."""

    obs_shapes: dict[str, tuple[int, ...]]
    action_dim: int

    @staticmethod
    def from_store(store: EpisodeStore, obs_keys: tuple[str, ...] = ()) -> FeatureSpec:
        keys = obs_keys or tuple(k for k, v in store.obs.items() if v.ndim == 2)
        missing = [k for k in keys if k not in store.obs]
        if missing:
            raise KeyError(f"dataset has no observation key(s) {missing}; it has {sorted(store.obs)}")
        for key in keys:
            values = store.obs[key]
            if values.ndim == 4 and not (values.dtype == np.uint8 and values.shape[-1] == 3):
                raise ValueError(
                    f"observation '{key}' has frames of shape {list(values.shape[1:])} and dtype {values.dtype}; "
                    "a camera key holds RGB frames, (H, W, 3) uint8"
                )
        return FeatureSpec({k: tuple(store.obs[k].shape[1:]) for k in keys}, store.action_dim)

    @property
    def image_keys(self) -> list[str]:
        """The camera keys: per-step shape (H, W, 3)."""
        return [k for k, shape in self.obs_shapes.items() if is_image_shape(shape)]

    def to_json(self) -> dict:
        return {"obs_shapes": {k: list(v) for k, v in self.obs_shapes.items()}, "action_dim": self.action_dim}

    @staticmethod
    def from_json(data: dict) -> FeatureSpec:
        return FeatureSpec({k: tuple(v) for k, v in data["obs_shapes"].items()}, int(data["action_dim"]))


def is_image_shape(shape: tuple[int, ...]) -> bool:
    """A per-step shape of RGB frames, (H, W, 3)."""
    return len(shape) == 3 and shape[-1] == 3


class Policy(nn.Module):
    """Base module: normalization, observation encoding (cameras through their encoders, state
    flattened) and batched, gradient-free prediction."""

    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig

    def __init__(self, config: PolicyConfig, spec: FeatureSpec):
        super().__init__()
        self.config, self.spec = config, spec
        images = spec.image_keys
        shapes = {**{k: (3,) if k in images else s for k, s in spec.obs_shapes.items()}, ACTION: (spec.action_dim,)}
        modes = {**{k: "image" if k in images else "mean_std" for k in spec.obs_shapes}, ACTION: "min_max"}
        self.normalizer = Normalizer(shapes, modes)
        self.cameras = nn.ModuleDict(
            {
                _module_name(key): ImageEncoder(
                    spec.obs_shapes[key], config.vision, config.crop, config.keypoints, config.vision_bf16
                )
                for key in images
            }
        )
        self.tracks_actions = False  # any dim offset (a host-side copy: no device sync per batch)
        if config.relative_actions != "off":  # per action dim: the flat state column it is offset from, or -1
            self.register_buffer("action_reference", torch.full((spec.action_dim,), -1, dtype=torch.long))
            self.register_load_state_dict_post_hook(lambda module, _: module.set_action_reference())

    @property
    def device(self) -> torch.device:
        return next(self.buffers()).device

    @property
    def obs_dim(self) -> int:
        """Width of one encoded observation frame: every key's features concatenated (a camera's
        encoder output, a state key flattened)."""
        return sum(self._key_dim(key) for key in self.spec.obs_shapes)

    def _key_dim(self, key: str) -> int:
        camera = self.cameras[_module_name(key)] if _module_name(key) in self.cameras else None
        return camera.out_dim if camera is not None else int(np.prod(self.spec.obs_shapes[key]))

    @property
    def state_keys(self) -> list[str]:
        """The low-dimensional observation keys, whose concatenated columns actions may be offset from."""
        return [k for k, shape in self.spec.obs_shapes.items() if len(shape) == 1]

    def fit(self, store: EpisodeStore) -> None:
        """Fit what comes from the data before training: which actions are learned as offsets, and the
        normalizer stats (of the offsets, over every chunk step); families add their own data-derived
        buffers (action bins, retrieval memory) by extending this."""
        action = store.action
        if hasattr(self, "action_reference"):
            state = np.concatenate([store.obs[k] for k in self.state_keys] or [np.zeros((len(action), 0))], axis=1)
            reference = tracked_coordinates(action, state)
            self.set_action_reference(torch.as_tensor(reference))
            if (reference >= 0).any():
                index = window_index(store.episode_ends, self.config.n_obs, self.config.horizon)
                origin = np.where(reference >= 0, state[:, np.maximum(reference, 0)], 0.0)
                action = (action[index.action_rows] - origin[index.obs_rows[:, -1], None]).reshape(-1, action.shape[1])
        self.normalizer.fit({**{k: store.obs[k] for k in self.spec.obs_shapes}, ACTION: action})

    def vision_settings(self) -> dict:
        """This policy's camera-encoding settings, for a policy built to see as this one does."""
        return {name: getattr(self.config, name) for name in ("vision", "crop", "keypoints", "vision_bf16")}

    def adopt_encoding(self, source: Policy) -> None:
        """See observations as ``source`` does: its observation normalizer stats and its trained
        camera encoders (an RL actor around a cloned policy starts from what cloning learned)."""
        own = self.normalizer.state_dict()
        self.normalizer.load_state_dict({k: v for k, v in source.normalizer.state_dict().items() if k in own})
        self.cameras.load_state_dict(source.cameras.state_dict())

    def set_action_reference(self, reference: torch.Tensor | None = None) -> None:
        """Set the tracked state column per action dim (-1: none; None keeps the loaded buffer)."""
        if reference is not None:
            self.action_reference.copy_(reference)
        self.tracks_actions = bool((self.action_reference >= 0).any())

    def action_origin(self, obs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """(B, 1, A) raw values the actions are offsets from (the current frame's tracked coordinates,
        0 for untracked dims), or None when every action is learned as recorded."""
        if not self.tracks_actions:
            return None
        reference = self.action_reference
        current = torch.cat(
            [torch.as_tensor(obs[k], dtype=torch.float32, device=self.device)[:, -1] for k in self.state_keys], dim=1
        )
        return torch.where(reference >= 0, current[:, reference.clamp(min=0)], 0.0).unsqueeze(1)

    def encode_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoded observation history (B, n_obs * obs_dim), frame after frame; checks shapes loudly.

        State keys are normalized and flattened; each camera's frames (B, n_obs, H, W, 3), uint8,
        go through its encoder as one batch of B * n_obs frames (the encoder is shared over the
        history), which crops at random in training mode and centrally in eval mode.
        """
        parts = []
        for key, shape in self.spec.obs_shapes.items():
            if key not in obs:
                raise KeyError(
                    f"observation is missing '{key}'; the policy was trained on {list(self.spec.obs_shapes)}"
                )
            camera = _module_name(key) in self.cameras
            x = torch.as_tensor(obs[key], device=self.device)
            x = x if camera and x.dtype == torch.uint8 else x.to(torch.float32)
            expected = (self.config.n_obs, *shape)
            if tuple(x.shape[1:]) != expected:
                raise ValueError(
                    f"observation '{key}' must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
                )
            if camera:
                features = self.cameras[_module_name(key)](x.flatten(0, 1), partial(self.normalizer.normalize, key))
                parts.append(features.view(*x.shape[:2], -1))
            else:
                state = self.normalizer.normalize(key, x)
                if self.training and self.config.obs_noise > 0:
                    state = state + self.config.obs_noise * torch.randn_like(state)
                parts.append(state.flatten(2))
        return torch.cat(parts, dim=-1).flatten(1)

    def normalized_action(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Target chunk (B, horizon, A) in normalized units; checks the action size."""
        action = batch[ACTION]
        if action.shape[-1] != self.spec.action_dim:
            raise ValueError(
                f"batch actions have dimension {action.shape[-1]} but the policy expects {self.spec.action_dim}"
            )
        origin = self.action_origin(batch)
        return self.normalizer.normalize(ACTION, action if origin is None else action - origin)

    def loss_steps(self, action_is_pad: torch.Tensor) -> torch.Tensor | None:
        """(B, horizon) 1.0 for the chunk steps that count in the loss, 0.0 for the others; None when
        every step counts (``mask_padding`` off)."""
        return (~action_is_pad).to(torch.float32) if self.config.mask_padding else None

    def chunk_mse(self, pred: torch.Tensor, target: torch.Tensor, action_is_pad: torch.Tensor) -> torch.Tensor:
        """Per-sample MSE (B,) of (B, horizon, A) chunks over the steps ``loss_steps`` keeps."""
        if not self.config.mask_padding:
            return (pred - target).pow(2).mean(dim=(1, 2))
        return masked_mse(pred, target, action_is_pad)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-sample training loss (B,)."""
        raise NotImplementedError

    def noise_shape(self) -> tuple[int, ...] | None:
        """Shape of one sample's standard-normal initial noise; None for deterministic families."""
        return None

    def sample_noise(self, batch_size: int, generator: Generators = None) -> torch.Tensor | None:
        """Initial noise (B, *noise_shape) for ``predict``, drawn on the CPU from ``generator`` (the
        global stream if None; a list: row i from generator i) and moved to the policy's device;
        None for deterministic families."""
        shape = self.noise_shape()
        if shape is None:
            return None
        return per_row(lambda g, n: torch.randn((n, *shape), generator=g), batch_size, generator).to(self.device)

    def predict_normalized(self, obs_features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """(B, horizon, A) normalized chunk from encoded observations and the noise of
        ``sample_noise`` (None only for deterministic families)."""
        raise NotImplementedError

    def correct(self, obs: dict[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        """The action (B, A) executed at this step, given the step's observation history and the
        action the runner picked from the chunks; unchanged here. A residual policy adds its
        correction (protege.policies.residual), so chunked bases stay chunked under it."""
        return action

    @torch.inference_mode()
    def predict(self, obs: dict[str, torch.Tensor | np.ndarray], noise: torch.Tensor | None = None) -> torch.Tensor:
        """Action chunks (B, horizon, A) in raw units for observation histories (B, n_obs, ...);
        without ``noise`` a generative family draws it from the global random stream."""
        features = self.encode_obs(obs)
        noise = self.sample_noise(len(features)) if noise is None else noise.to(self.device)
        action = self.normalizer.unnormalize(ACTION, self.predict_normalized(features, noise))
        origin = self.action_origin(obs)
        return action if origin is None else action + origin


def _module_name(key: str) -> str:
    """A camera key as a module name (no dots): ``observation.images.top`` -> ``observation__images__top``."""
    return key.replace(".", "__")


#: One generator for a whole batch, one per row (each episode's noise then depends on its own seed
#: only, whatever the batch it runs in), or None for torch's global stream.
Generators = torch.Generator | list[torch.Generator] | None


def per_row(draw: Callable[[torch.Generator | None, int], torch.Tensor], batch_size: int, generator: Generators):
    """``draw(generator, n)`` for the batch, or row by row from a list of generators (one per row)."""
    if not isinstance(generator, list):
        return draw(generator, batch_size)
    if len(generator) != batch_size:
        raise ValueError(f"{len(generator)} generators for a batch of {batch_size}; give one per row")
    return torch.cat([draw(g, 1) for g in generator])


@torch.no_grad()
def per_sample_losses(policy: Policy, sampler: WindowSampler, batch_size: int, seed: int) -> torch.Tensor:
    """(N,) loss of every window of ``sampler``, with noise drawn from ``seed`` (comparable across
    calls: validation curves, importance weights)."""
    with torch.random.fork_rng(devices=[policy.device] if policy.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return torch.cat([policy.loss(sampler.gather(idx)) for idx in torch.arange(len(sampler)).split(batch_size)])
