"""Checkpoints as safetensors + JSON, written atomically, never pickle.

Layout of a run folder::

    RUN/config.json                      the whole run config (reproduces the run)
    RUN/metrics.jsonl                    one JSON line per logging step / evaluation
    RUN/checkpoints/latest.json          {"step": 5000, "dir": "step-0005000"}
    RUN/checkpoints/step-0005000/
        config.json                      policy family, policy config, feature spec, train config
        model.safetensors                trained weights + normalizer stats (``normalizer.*``)
        ema.safetensors                  EMA weights (used for evaluation by default)
        train_state.safetensors / .json  optimizer moments, RNG states, step (for --resume)

A step folder is written under a temporary name and renamed into place, then ``latest.json`` is
replaced atomically, so a run killed at any moment resumes from the last complete checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from protege.policies import FeatureSpec, Policy, policy_class
from protege.policies.base import PolicyConfig


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside ``path`` and rename it over, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def policy_config_to_json(config: PolicyConfig) -> dict:
    return {"name": config.name, **asdict(config)}


def policy_config_from_json(data: dict) -> PolicyConfig:
    data = dict(data)
    cls = policy_class(data.pop("name")).config_class
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _optimizer_split(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state dict -> (tensors for safetensors, the JSON-able rest)."""
    tensors, rest = {}, {"param_groups": state["param_groups"], "state": {}}
    for idx, entry in state["state"].items():
        rest["state"][str(idx)] = {}
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                rest["state"][str(idx)][name] = value
    return tensors, rest


def _optimizer_join(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict] = {int(i): dict(v) for i, v in rest["state"].items()}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def save_checkpoint(
    run_dir: Path,
    step: int,
    policy: Policy,
    ema_model: torch.nn.Module | None,
    config_json: dict,
    optimizer: torch.optim.Optimizer,
    rng: dict[str, torch.Tensor],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` atomically, point latest.json at it, prune to the newest ``keep``."""
    ckpt_root = run_dir / "checkpoints"
    name = f"step-{step:07d}"
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_tensors(policy.state_dict()), tmp / "model.safetensors")
    if ema_model is not None:
        save_file(_tensors(ema_model.state_dict()), tmp / "ema.safetensors")
    optim_tensors, optim_rest = _optimizer_split(optimizer.state_dict())
    save_file(_tensors({**optim_tensors, **{f"rng.{k}": v for k, v in rng.items()}}), tmp / "train_state.safetensors")
    (tmp / "train_state.json").write_text(json.dumps({"step": step, "optimizer": optim_rest}))
    (tmp / "config.json").write_text(json.dumps(config_json, indent=2, default=str))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_json_atomic(ckpt_root / "latest.json", {"step": step, "dir": name})
    steps = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_policy(policy: Policy, folder: str | Path, task: str = "") -> Path:
    """Write an in-memory policy as a loadable checkpoint folder (weights + config, no training
    state), e.g. a teacher for ``distilled`` built in code; ``load_policy(folder)`` reads it back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_tensors(policy.state_dict()), folder / "model.safetensors")
    meta = {"policy": policy_config_to_json(policy.config), "spec": policy.spec.to_json(), "task": task}
    write_json_atomic(folder / "config.json", meta)
    return folder


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder, its checkpoints folder or a step folder -> the step folder to load."""
    path = Path(path)
    if (path / "model.safetensors").exists():
        return path
    for root in (path / "checkpoints", path):
        latest = root / "latest.json"
        if latest.exists():
            return root / json.loads(latest.read_text())["dir"]
    raise FileNotFoundError(f"no checkpoint found at '{path}' (expected model.safetensors or checkpoints/latest.json)")


def load_policy(path: str | Path, ema: bool = True, device: str | torch.device = "cpu") -> Policy:
    """Rebuild a trained policy from its checkpoint; EMA weights when present unless ema=False."""
    ckpt = resolve_checkpoint(path)
    meta = json.loads((ckpt / "config.json").read_text())
    config = policy_config_from_json(meta["policy"])
    policy = policy_class(config.name)(config, FeatureSpec.from_json(meta["spec"]))
    weights = ckpt / ("ema.safetensors" if ema and (ckpt / "ema.safetensors").exists() else "model.safetensors")
    policy.load_state_dict(load_file(weights), strict=True)
    return policy.to(device).eval()


def load_train_state(ckpt: Path) -> tuple[int, dict, dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """(step, optimizer state, rng tensors, model weights, ema weights) of a checkpoint."""
    meta = json.loads((ckpt / "train_state.json").read_text())
    tensors = load_file(ckpt / "train_state.safetensors")
    rng = {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")}
    ema_path = ckpt / "ema.safetensors"
    ema = load_file(ema_path) if ema_path.exists() else None
    return meta["step"], _optimizer_join(tensors, meta["optimizer"]), rng, load_file(ckpt / "model.safetensors"), ema
