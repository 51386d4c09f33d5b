"""Training checkpoints: a policy folder plus the state that resumes training, written atomically.

Layout of a run folder::

    RUN/config.json                      the whole run config (reproduces the run)
    RUN/metrics.jsonl                    one JSON line per logging step / evaluation
    RUN/checkpoints/latest.json          {"step": 5000, "dir": "step-0005000"}
    RUN/checkpoints/best.json            with --keep-best K: the K best by training-time closed-loop
                                         success, best first: [{"step", "dir", "success", ...}]
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

from protege.atomic import staged_folder, write_json_atomic
from protege.policies import Policy
from protege.policies.storage import BEST, CheckpointError, read_checkpoint_json, read_tensors, write_tensors


def split_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
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


def join_optimizer_state(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
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
    scores: dict[str, float] | None = None,
    keep_best: int = 0,
    log_window: dict | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically, rank it in best.json by its training-time ``scores``
    (with ``keep_best`` > 0), point latest.json at it, and prune to the newest ``keep`` plus the best.
    ``log_window``: the metrics row being accumulated, restored on resume."""
    ckpt_root = run_dir / "checkpoints"
    name = f"step-{step:07d}"
    final = ckpt_root / name
    with staged_folder(final, overwrite=True) as tmp:
        tmp.mkdir()
        write_tensors(policy.state_dict(), tmp / "model.safetensors")
        if ema_model is not None:
            write_tensors(ema_model.state_dict(), tmp / "ema.safetensors")
        optim_tensors, optim_rest = split_optimizer_state(optimizer.state_dict())
        write_tensors({**optim_tensors, **{f"rng.{k}": v for k, v in rng.items()}}, tmp / "train_state.safetensors")
        (tmp / "train_state.json").write_text(
            json.dumps({"step": step, "optimizer": optim_rest, "log_window": log_window or {}})
        )
        (tmp / "config.json").write_text(json.dumps(config_json, indent=2, default=str))
    best = rank_best(ckpt_root, step, name, scores, keep_best) if keep_best and scores else read_best(ckpt_root)
    write_json_atomic(ckpt_root / "latest.json", {"step": step, "dir": name})
    kept = {entry["dir"] for entry in best}
    steps = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in steps[:-keep]:
        if old.name not in kept:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_best(ckpt_root: Path) -> list[dict]:
    path = ckpt_root / BEST
    return read_checkpoint_json(path) if path.exists() else []


def rank_best(ckpt_root: Path, step: int, name: str, scores: dict[str, float], keep_best: int) -> list[dict]:
    """best.json with checkpoint ``step`` ranked in: the ``keep_best`` highest by (success, mean max
    progress, step), best first. A step written again (a resumed run) replaces its old entry."""
    entries = [entry for entry in read_best(ckpt_root) if entry["step"] != step]
    entries.append({"step": step, "dir": name, **scores})
    entries.sort(key=lambda e: (e["success"], e.get("max_progress", 0.0), e["step"]), reverse=True)
    write_json_atomic(ckpt_root / BEST, entries[:keep_best])
    return entries[:keep_best]


def load_train_state(ckpt: Path) -> tuple[int, dict, dict[str, torch.Tensor], dict]:
    """(step, optimizer state, rng tensors, metrics row being accumulated) of a checkpoint; its
    weights load with ``load_weights``."""
    meta = read_checkpoint_json(ckpt / "train_state.json")
    tensors = read_tensors(ckpt / "train_state.safetensors")
    rng = {k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")}
    try:
        return meta["step"], join_optimizer_state(tensors, meta["optimizer"]), rng, meta.get("log_window", {})
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{ckpt / 'train_state.json'}: not a training state ({error!r})") from error
