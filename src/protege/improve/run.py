"""What every improvement method shares: the frozen base, the run folder, the learning curve, resume.

An improvement run folder looks like a training run to the rest of protege::

    OUT/config.json                 the ImproveConfig (reproduces the run)
    OUT/curve.jsonl                 one line per learning-curve point: env steps, expert labels,
                                    wall seconds, success with its 95% Wilson interval
    OUT/curve.svg                   the curve, against env steps (and against labels for the DAgger family)
    OUT/checkpoints/latest.json     the newest improved policy; ``load_policy(OUT)`` and
    OUT/checkpoints/step-*/         ``protege eval OUT`` use it like any run's
    OUT/state.json                  where a killed run resumes (the method's own state beside it)

Curve points are measured on the training-time seed list (from ``TRAIN_EVAL_SEED``), which final
evaluations (``protege eval``, from ``EVAL_SEED``) never use, so choosing when to stop cannot tune
the reported number. Training episodes draw their seeds from ``IMPROVE_SEED`` on, disjoint from both.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from protege.atomic import clean_stale, staged_folder, write_json_atomic, write_text_atomic
from protege.config import TRAIN_EVAL_SEED, ImproveConfig, resolve_device
from protege.evaluate.actor import PolicyActor, check_fits
from protege.evaluate.stats import wilson_interval
from protege.policies import Policy
from protege.policies.storage import load_policy, policy_json, read_checkpoint_json, resolve_checkpoint, write_tensors
from protege.runner import rollout
from protege.tasks import Task, task_for

#: First seed of the episodes improvement methods train on (per run seed a block of a million).
IMPROVE_SEED = 1_000_000
CURVE, STATE = "curve.jsonl", "state.json"


def action_box(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """The task's action box (low, high), which bounds residual corrections and scales deviations."""
    env = task.make_env(1)
    space = env.single_action_space
    env.close()
    low, high = np.asarray(space.low, dtype=np.float32), np.asarray(space.high, dtype=np.float32)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError(f"task '{task.name}' has an unbounded action space; this method needs its box")
    return low, high


def read_curve(path: Path) -> list[dict]:
    """The points of a curve.jsonl (none if absent); a line torn by a kill mid-append is left out."""
    points = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            points.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return points


class ImproveRun:
    """The frozen base policy, the task, the output folder and the bookkeeping of one improvement run."""

    def __init__(self, cfg: ImproveConfig):
        counts = ("env_steps", "eval_episodes", "num_envs", "eval_every", "episodes_per_round", "round_steps")
        for name in counts:
            if getattr(cfg, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
        if cfg.seed < 0:
            raise ValueError(
                f"--seed must be >= 0 (its training episodes must not meet the collect seeds), got {cfg.seed}"
            )
        self.cfg = cfg
        self.base_folder = resolve_checkpoint(cfg.run)
        saved = read_checkpoint_json(self.base_folder / "config.json")
        task_name = cfg.task or saved.get("task", "")
        if not task_name:
            raise ValueError(f"checkpoint '{self.base_folder}' records no task; pass --task")
        self.device = resolve_device(cfg.device)
        self.base: Policy = load_policy(self.base_folder, device=self.device)
        self.task: Task = task_for(task_name, self.base.spec.obs_shapes)
        self.base.requires_grad_(False)
        check_fits(self.base.spec, self.task, f"checkpoint '{self.base_folder}'")
        self.out = cfg.out or Path(cfg.run) / f"improve-{cfg.method}"
        self.state = self._start()
        self.clock = time.perf_counter() - self.state["wall_s"]  # the wall clock goes on across resumes
        self.next_seed = IMPROVE_SEED + cfg.seed * 1_000_000 + self.state["episodes"]

    def _start(self) -> dict:
        """The saved state of a resumed run (curve points after it dropped), or a fresh one."""
        state_path = self.out / STATE
        if state_path.exists() and not self.cfg.resume:
            raise FileExistsError(f"'{self.out}' holds an improvement run; pass --resume to continue it or --out")
        self.out.mkdir(parents=True, exist_ok=True)
        clean_stale(self.out)
        clean_stale(self.out / "checkpoints")
        config = json.loads(json.dumps(self.cfg.to_json(), default=str))  # as config.json holds it
        if state_path.exists():
            saved = read_checkpoint_json(self.out / "config.json")
            differ = sorted(
                k for k in config if k not in ("resume", "progress", "device") and saved.get(k) != config[k]
            )
            if differ:
                raise ValueError(f"cannot resume '{self.out}' with other settings ({', '.join(differ)}); repeat them")
            state = read_checkpoint_json(state_path)
            kept = [p for p in self.curve() if p["env_steps"] <= state["env_steps"]]
            write_text_atomic(self.out / CURVE, "".join(json.dumps(p) + "\n" for p in kept))
            return state
        write_json_atomic(self.out / "config.json", config)
        write_text_atomic(self.out / CURVE, "")
        return {"env_steps": 0, "labels": 0, "wall_s": 0.0, "episodes": 0, "points": 0}

    @property
    def done(self) -> bool:
        """The env-step budget (and the label budget, if any) is spent."""
        labels = self.cfg.labels and self.state["labels"] >= self.cfg.labels
        return self.state["env_steps"] >= self.cfg.env_steps or bool(labels)

    def seeds(self, count: int) -> np.ndarray:
        """The next ``count`` training-episode seeds (a resumed run goes on where it stopped)."""
        seeds = self.next_seed + np.arange(count)
        self.next_seed += count
        return seeds

    def curve(self) -> list[dict]:
        return read_curve(self.out / CURVE)

    def score(self, policy: Policy) -> dict:
        """Closed-loop success of ``policy`` on the curve's seed list, with its 95% Wilson interval."""
        seeds = TRAIN_EVAL_SEED + np.arange(self.cfg.eval_episodes)
        with torch.random.fork_rng(devices=[]):
            out = rollout(
                self.task,
                PolicyActor(policy.eval(), seed=0),
                seeds,
                num_envs=self.cfg.eval_episodes,
                progress=self.cfg.progress,
                desc="curve",
            )
        point = {
            "success": float(out.success.mean()),
            "success_ci95": list(wilson_interval(int(out.success.sum()), len(seeds))),
            "episodes": len(seeds),
        }
        if out.max_progress is not None:
            point["max_progress"] = float(out.max_progress.mean())
        return point

    def record(self, policy: Policy, env_steps: int, labels: int, episodes: int, extra: dict | None = None) -> dict:
        """A curve point for ``policy`` after ``env_steps`` / ``labels`` / ``episodes`` (totals so far):
        scored, published as the newest checkpoint, and the state advanced (the method saves its own
        state first, so a kill between the two repeats the point, never skips it)."""
        self.state.update(
            env_steps=env_steps, labels=labels, episodes=episodes, wall_s=time.perf_counter() - self.clock
        )
        point = {"env_steps": env_steps, "labels": labels, "wall_s": self.state["wall_s"], **self.score(policy)}
        point |= extra or {}
        self.publish(policy, env_steps, point)
        with (self.out / CURVE).open("a") as f:
            f.write(json.dumps(point) + "\n")
        self.state["points"] += 1
        write_json_atomic(self.out / STATE, self.state)
        from protege.improve.curve import plot_curve  # matplotlib only when drawing

        write_text_atomic(self.out / "curve.svg", plot_curve(self.curve(), self.cfg.method))
        return point

    def publish(self, policy: Policy, env_steps: int, point: dict, keep: int = 2) -> Path:
        """Write ``policy`` as OUT/checkpoints/step-<env steps> and point latest.json at it."""
        root = self.out / "checkpoints"
        name = f"step-{env_steps:09d}"
        with staged_folder(root / name, overwrite=True) as tmp:
            tmp.mkdir()
            write_tensors(policy.state_dict(), tmp / "model.safetensors")
            meta = policy_json(policy, self.task.name) | {"improve": {"method": self.cfg.method, **point}}
            (tmp / "config.json").write_text(json.dumps(meta, indent=2, default=str))
        write_json_atomic(root / "latest.json", {"step": env_steps, "dir": name})
        for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        return root / name
