"""A policy on disk: weights (with the normalizer stats) as safetensors and its config as JSON,
never pickle, so a checkpoint from a stranger cannot run code.

A policy folder holds ``model.safetensors`` (and, from training, ``ema.safetensors``) beside
``config.json`` = ``{"policy": {"name": ..., <config fields>}, "spec": <FeatureSpec>, "task": ...}``.
Training writes such folders under ``RUN/checkpoints/step-*/`` with ``latest.json`` naming the
newest (``protege.train.checkpoint``); ``resolve_checkpoint`` finds the folder from a run folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from protege.atomic import atomic_file, write_json_atomic
from protege.policies import FeatureSpec, Policy, PolicyConfig, policy_class

#: Config fields added after checkpoints were first written, per family: the value a checkpoint that
#: lacks the field was trained with, so it loads and resumes as it was trained whatever today's
#: default. (Before ``mask_padding`` existed, bet, knn and mcnn masked padded chunk steps and the
#: other families fitted them; before ``relative_actions``, every action was learned as recorded.)
WRITTEN_BEFORE: dict[str, dict[str, object]] = {
    family: {"mask_padding": family in ("bet", "knn", "mcnn"), "relative_actions": "off"}
    for family in ("mlp", "diffusion", "gaussian", "gmm", "flow", "mip", "bet", "knn", "mcnn", "distilled")
}


class CheckpointError(ValueError):
    """A checkpoint is damaged or does not fit its config; the message names the file."""


def read_checkpoint_json(path: Path) -> dict | list:
    """A checkpoint's JSON file (config, latest, best, train state), or one error naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: missing; the checkpoint is incomplete") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON, it may be truncated or corrupt ({error})") from error


#: safetensors header metadata: a digest of every tensor's name, dtype, shape and bytes. safetensors
#: has no checksum of its own, so one flipped byte in the data would load as a different weight.
DIGEST = "protege.blake2b"


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(tensors):
        tensor = tensors[key].contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """A safetensors file (detached, contiguous, CPU tensors) with the digest ``read_tensors`` checks."""
    tensors = weights(tensors)
    save_file(tensors, path, metadata={DIGEST: _digest(tensors)})


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or one error naming it (safetensors' own errors never say which file).
    Files protege wrote carry a digest: a damaged byte anywhere is an error, not a wrong weight."""
    try:
        with safe_open(path, "pt") as file:
            expected = (file.metadata() or {}).get(DIGEST)
            tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118 (no dict)
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: missing; the checkpoint is incomplete") from error
    except (SafetensorError, OSError) as error:
        raise CheckpointError(
            f"{path}: not a readable safetensors file, it may be truncated or corrupt ({error})"
        ) from error
    if expected is not None and _digest(tensors) != expected:
        raise CheckpointError(f"{path}: its content does not match the digest written with it; the file is damaged")
    return tensors


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load ``path`` into ``module`` only if every tensor is finite and has the name and dtype the
    module expects: ``load_state_dict`` would cast an int32 tensor into float weights without a
    word, and NaN weights (a diverged run) would evaluate as an ordinary-looking 0%."""
    state, expected = read_tensors(path), module.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: does not fit the policy its config.json describes (missing {missing[:3] or 'none'}, "
            f"unexpected {unexpected[:3] or 'none'}); the weights and config.json come from different runs"
        )
    for key, value in expected.items():
        if state[key].dtype != value.dtype:
            raise CheckpointError(f"{path}: '{key}' is stored as {state[key].dtype}, the policy expects {value.dtype}")
        if state[key].is_floating_point() and not torch.isfinite(state[key]).all():
            raise CheckpointError(f"{path}: '{key}' holds NaN/inf values; the run that wrote it diverged")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:  # shapes that do not fit (families that size buffers at load check their own)
        reason = str(error).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path}: does not fit the policy its config.json describes ({reason})") from error


def policy_config_to_json(config: PolicyConfig) -> dict:
    return {"name": config.name, **asdict(config)}


def policy_config_from_json(data: dict) -> PolicyConfig:
    """The config a checkpoint's ``policy`` entry describes; missing fields take the value the
    checkpoint was trained with (``WRITTEN_BEFORE``), else today's default."""
    data = dict(data)
    name = data.pop("name")
    cls = policy_class(name).config_class
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"policy '{name}' has no setting(s) {', '.join(unknown)} (written by a newer protege?)")
    data = {**{k: v for k, v in WRITTEN_BEFORE.get(name, {}).items() if k not in data}, **data}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as safetensors wants it: detached, contiguous, on the CPU."""
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def policy_json(policy: Policy, task: str = "") -> dict:
    """What ``config.json`` of a policy folder holds (training adds its own entries beside it)."""
    return {"policy": policy_config_to_json(policy.config), "spec": policy.spec.to_json(), "task": task}


def save_policy(policy: Policy, folder: str | Path, task: str = "") -> Path:
    """Write an in-memory policy as a loadable folder (weights + config, no training state), e.g.
    a teacher for ``distilled`` built in code; ``load_policy(folder)`` reads it back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / "model.safetensors") as tmp:
        write_tensors(policy.state_dict(), tmp)
    write_json_atomic(folder / "config.json", policy_json(policy, task))
    return folder


#: In a run's checkpoints folder: the best checkpoints by training-time closed-loop success, best
#: first (``protege train --keep-best K``); ``latest.json`` names the newest.
BEST = "best.json"


def resolve_checkpoint(path: str | Path, select: str = "final") -> Path:
    """A run folder, its checkpoints folder or a step folder -> the policy folder to load: the newest
    (``final``, named by ``latest.json``) or the best by training-time success (``best``, the first
    entry of ``best.json``, written by ``protege train --keep-best K``)."""
    path = Path(path)
    if (path / "model.safetensors").exists():
        return path
    name = {"final": "latest.json", "best": BEST}[select]
    for root in (path / "checkpoints", path):
        index = root / name
        if index.exists():
            return _indexed_folder(index, select)
    if select == "best" and (path / "checkpoints" / "latest.json").exists():
        raise FileNotFoundError(
            f"run '{path}' kept no best checkpoints; train it with --keep-best K (and --eval-every)"
        )
    raise FileNotFoundError(f"no checkpoint found at '{path}' (expected model.safetensors or checkpoints/latest.json)")


def _indexed_folder(index: Path, select: str) -> Path:
    """The step folder ``latest.json`` / ``best.json`` names: a folder beside the index, never a
    path that leads out of the run."""
    entries = read_checkpoint_json(index)
    entry = (entries[0] if isinstance(entries, list) and entries else None) if select == "best" else entries
    name = entry.get("dir") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise CheckpointError(f"{index}: expected a step folder name in 'dir' (like \"step-0005000\"), got {name!r}")
    folder = index.parent / name
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{index}: names '{name}', which holds no model.safetensors")
    return folder


def read_policy_json(folder: Path) -> tuple[PolicyConfig, FeatureSpec]:
    """The policy config and feature spec of a policy folder's ``config.json``, or one error naming it."""
    path = folder / "config.json"
    meta = read_checkpoint_json(path)
    try:
        return policy_config_from_json(meta["policy"]), FeatureSpec.from_json(meta["spec"])
    except KeyError as error:
        raise CheckpointError(f"{path}: no {error} entry; not a protege policy config") from error
    except (TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path}: {error}") from error


def policy_from_json(entry: dict) -> Policy:
    """An unloaded policy built from a ``{"policy": ..., "spec": ...}`` entry (a composite's base)."""
    config, spec = policy_config_from_json(entry["policy"]), FeatureSpec.from_json(entry["spec"])
    return policy_class(config.name)(config, spec)


def load_policy(path: str | Path, ema: bool = True, device: str | torch.device = "cpu") -> Policy:
    """Rebuild a trained policy from its folder; EMA weights when present unless ema=False."""
    folder = resolve_checkpoint(path)
    config, spec = read_policy_json(folder)
    policy = policy_class(config.name)(config, spec)
    file = folder / ("ema.safetensors" if ema and (folder / "ema.safetensors").exists() else "model.safetensors")
    load_weights(policy, file)
    return policy.to(device).eval()
