"""Training checkpoints: a policy folder plus the state that resumes training, written atomically.

Layout of a run folder::

    RUN/config.json                      the whole run config (reproduces the run)
    RUN/metrics.jsonl                    one JSON line per logging step / evaluation
    RUN/checkpoints/latest.json          {"step": 5000, "dir": "step-0005000"}
    RUN/checkpoints/step-0005000/
        config.json                      policy family, policy config, feature spec, train config
        model.safetensors                trained weights + normalizer stats (``normalizer.*``)
        ema.safetensors                  EMA weights (used for evaluation by default)
        train_state.safetensors / .json  optimizer moments, RNG states, step (for --resume)

A step folder is a policy folder (``protege.policies.storage`` loads it) with the training state
beside it. It is written under a temporary name and renamed into place, then ``latest.json`` is
replaced atomically, so a run killed at any moment resumes from the last complete checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from protege.atomic import staged_folder, write_json_atomic
from protege.policies import Policy
from protege.policies.storage import weights


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
    with staged_folder(final, overwrite=True) as tmp:
        tmp.mkdir()
        save_file(weights(policy.state_dict()), tmp / "model.safetensors")
        if ema_model is not None:
            save_file(weights(ema_model.state_dict()), tmp / "ema.safetensors")
        optim_tensors, optim_rest = _optimizer_split(optimizer.state_dict())
        save_file(
            weights({**optim_tensors, **{f"rng.{k}": v for k, v in rng.items()}}), tmp / "train_state.safetensors"
        )
        (tmp / "train_state.json").write_text(json.dumps({"step": step, "optimizer": optim_rest}))
        (tmp / "config.json").write_text(json.dumps(config_json, indent=2, default=str))
    write_json_atomic(ckpt_root / "latest.json", {"step": step, "dir": name})
    steps = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_train_state(
    ckpt: Path,
) -> tuple[int, dict, dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """(step, optimizer state, rng tensors, model weights, ema weights) of a checkpoint."""
    meta = json.loads((ckpt / "train_state.json").read_text())
    tensors = load_file(ckpt / "train_state.safetensors")
    rng = {k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")}
    ema_path = ckpt / "ema.safetensors"
    ema = load_file(ema_path) if ema_path.exists() else None
    return meta["step"], _optimizer_join(tensors, meta["optimizer"]), rng, load_file(ckpt / "model.safetensors"), ema
