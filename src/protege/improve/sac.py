"""SAC from stable-baselines3 on protege's own batched rollouts: the plumbing residual RL,
noise-space RL and SAC from scratch share.

stable-baselines3 owns the algorithm: the actor, the twin critics and their target networks, the
entropy temperature, the replay buffer and every gradient step (``SAC.train``). protege owns the
environment side: a ``Problem`` turns "frozen policy + task" into an RL problem with actions in
[-1, 1] (a residual, an initial noise, or a raw action), stepped as a batch of episodes in
lockstep like every protege rollout, so one base-policy call serves the whole batch. SB3's own
``learn`` loop would need environments that reset one member at a time; ours reset in waves, so
the loop here feeds SB3's buffer the live members' transitions and calls ``SAC.train`` after each
batched step (``utd`` gradient steps per transition). Truncation at the step limit is stored as a
timeout, not a terminal, so the critic bootstraps through it.

A run resumes from its last curve point: the SAC networks, optimizers, temperature, replay buffer
and random states are saved there as safetensors + JSON (never SB3's pickled zip), and the deployed
policy is a protege policy whose actor is a copy of SAC's deterministic actor (tanh of the mean).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch

from protege.atomic import staged_folder
from protege.extras import require
from protege.improve.run import ImproveRun
from protege.policies import Policy
from protege.policies.storage import read_checkpoint_json, read_tensors, write_tensors
from protege.progress import progress_bar
from protege.train.checkpoint import join_optimizer_state, split_optimizer_state

SAC_STATE = "sac"  # folder in the run with what resumes SAC


@dataclass
class Step:
    """One batched step of a problem: next observations, rewards, end flags and env steps taken, each (B,)."""

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    env_steps: np.ndarray


class Problem(Protocol):
    """A frozen policy and a task as an RL problem: flat observations, actions in [-1, 1]^action_dim,
    and ``policy`` holding the deployable result with an ``actor`` (protege.policies.nets.common.relu_mlp)."""

    obs_dim: int
    action_dim: int
    policy: Policy

    def reset(self, seeds: np.ndarray) -> np.ndarray: ...

    def explore(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Actions in [-1, 1] for the first ``learning_starts`` transitions, before SAC acts."""

    def close(self) -> None: ...

    def step(self, action: np.ndarray) -> Step: ...


def reward_of(kind: str, reward: np.ndarray, success: np.ndarray) -> np.ndarray:
    """``sparse``: 1 on the step the task succeeds, else 0; ``dense``: the task's own reward."""
    return success.astype(np.float32) if kind == "sparse" else np.asarray(reward, dtype=np.float32)


class _Spaces(gym.Env):
    """Only the spaces, for SB3 to size its networks and buffer; the loop below never steps it."""

    def __init__(self, obs_dim: int, action_dim: int):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)


def make_sac(run: ImproveRun, problem: Problem):
    sb3 = require("stable_baselines3", "rl", "SAC (protege improve --method residual, noise or sac)")
    from stable_baselines3.common.logger import Logger

    cfg = run.cfg
    model = sb3.SAC(
        "MlpPolicy",
        _Spaces(problem.obs_dim, problem.action_dim),
        learning_rate=cfg.lr,
        buffer_size=cfg.env_steps
        + cfg.num_envs * run.task.spec.max_steps,  # the budget plus the wave that ends past it
        learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size,
        gamma=cfg.gamma,
        ent_coef=cfg.ent_coef if cfg.ent_coef.startswith("auto") else float(cfg.ent_coef),
        policy_kwargs={"net_arch": list(cfg.hidden)},
        seed=cfg.seed,
        device=run.device,
    )
    with torch.no_grad():  # the actor's mean starts at 0: no correction, or the middle of the noise space
        model.actor.mu.weight.zero_()
        model.actor.mu.bias.zero_()
    model.set_logger(Logger(folder=None, output_formats=[]))
    model._current_progress_remaining = 1.0  # constant learning rate (SB3's learn loop would set it)
    return model


def copy_actor(model, actor: torch.nn.Sequential) -> None:
    """SAC's deterministic actor (mean head of ``latent_pi`` + ``mu``) into a protege relu_mlp."""
    layers = [m for m in model.actor.latent_pi if isinstance(m, torch.nn.Linear)] + [model.actor.mu]
    targets = [m for m in actor if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for source, target in zip(layers, targets, strict=True):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)


def train_sac(run: ImproveRun, problem: Problem) -> Policy:
    """SAC on ``problem`` until the env-step budget is spent, a curve point every ``eval_every`` env steps."""
    cfg, state = run.cfg, run.state
    model = make_sac(run, problem)
    rng = np.random.default_rng([cfg.seed, 17])
    rl_steps, owed = 0, 0.0
    if (run.out / SAC_STATE).exists() and state["points"]:
        rl_steps, rng, env_steps, episodes, owed = _load_state(run, model)
        run.next_seed += episodes - state["episodes"]
        if env_steps > state["env_steps"]:  # killed after saving SAC's state, before its curve point
            copy_actor(model, problem.policy.actor)
            run.record(problem.policy, env_steps, 0, episodes, {"rl_steps": rl_steps})
    else:  # a fresh run (or one killed before its first SAC state: nothing was learned yet)
        copy_actor(model, problem.policy.actor)
        if not state["points"]:
            run.record(problem.policy, 0, 0, 0, {"rl_steps": 0})
    env_steps, episodes = state["env_steps"], state["episodes"]
    next_point = (env_steps // cfg.eval_every + 1) * cfg.eval_every
    bar = progress_bar(
        total=cfg.env_steps, initial=env_steps, desc=f"improve {cfg.method}", unit="step", disable=not cfg.progress
    )
    while env_steps < cfg.env_steps:
        seeds = run.seeds(cfg.num_envs)
        obs, done = problem.reset(seeds), np.zeros(len(seeds), dtype=bool)
        while not done.all():
            if rl_steps < cfg.learning_starts:
                action = problem.explore(rng, len(seeds)).astype(np.float32)
            else:
                action, _ = model.predict(obs, deterministic=False)
            step = problem.step(action)
            live = np.flatnonzero(~done)
            for i in live:
                ended = bool(step.terminated[i] or step.truncated[i])
                model.replay_buffer.add(
                    obs[i : i + 1],
                    step.obs[i : i + 1],
                    action[i : i + 1],
                    step.reward[i : i + 1],
                    np.array([ended]),
                    [{"TimeLimit.truncated": bool(step.truncated[i] and not step.terminated[i])}],
                )
            taken = int(step.env_steps[live].sum())
            rl_steps += len(live)
            env_steps += taken
            bar.update(taken)
            done |= step.terminated | step.truncated
            obs = step.obs
            if rl_steps >= cfg.learning_starts:
                owed += len(live) * cfg.utd
                if int(owed):
                    model.train(gradient_steps=int(owed), batch_size=cfg.batch_size)
                    owed -= int(owed)
        episodes += len(seeds)
        if env_steps >= next_point or env_steps >= cfg.env_steps:
            next_point = (env_steps // cfg.eval_every + 1) * cfg.eval_every
            copy_actor(model, problem.policy.actor)
            counts = {"rl_steps": rl_steps, "env_steps": env_steps, "episodes": episodes, "owed": owed}
            _save_state(run, model, rng, counts)
            run.record(problem.policy, env_steps, 0, episodes, {"rl_steps": rl_steps})
    bar.close()
    problem.close()
    return problem.policy


def _modules(model) -> dict[str, object]:
    optimizers = {"actor": model.actor.optimizer, "critic": model.critic.optimizer}
    if model.ent_coef_optimizer is not None:
        optimizers["ent_coef"] = model.ent_coef_optimizer
    return optimizers


BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _save_state(run: ImproveRun, model, rng: np.random.Generator, counts: dict) -> None:
    """Everything SAC needs to go on where it stopped, beside the curve point it belongs to."""
    buffer = model.replay_buffer
    filled = buffer.buffer_size if buffer.full else buffer.pos
    tensors = {f"policy.{k}": v for k, v in model.policy.state_dict().items()}
    tensors |= {f"buffer.{name}": torch.from_numpy(getattr(buffer, name)[:filled].copy()) for name in BUFFER_FIELDS}
    if model.log_ent_coef is not None:
        tensors["log_ent_coef"] = model.log_ent_coef.detach()
    meta = {
        **counts,
        "buffer": {"pos": buffer.pos, "full": buffer.full},
        "n_updates": model._n_updates,
    }
    for name, optimizer in _modules(model).items():
        optim_tensors, meta[f"optim.{name}"] = split_optimizer_state(optimizer.state_dict())
        tensors |= {f"{name}.{k}": v for k, v in optim_tensors.items()}
    numpy_state = np.random.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if model.device.type == "cuda":  # SAC samples its actions on the GPU there
        tensors["rng.cuda"] = torch.cuda.get_rng_state(model.device)
    tensors["rng.numpy"] = torch.from_numpy(numpy_state[1].astype(np.int64))
    meta["rng"] = {"numpy": [numpy_state[0], *map(float, numpy_state[2:])], "actions": rng.bit_generator.state}
    with staged_folder(run.out / SAC_STATE, overwrite=True) as tmp:
        tmp.mkdir()
        write_tensors(tensors, tmp / "state.safetensors")
        (tmp / "state.json").write_text(json.dumps(meta))


def _load_state(run: ImproveRun, model) -> tuple[int, np.random.Generator, int, int, float]:
    """Restore what ``_save_state`` wrote; (RL steps, action rng, env steps, episodes, gradient steps owed)."""
    folder = run.out / SAC_STATE
    tensors, meta = read_tensors(folder / "state.safetensors"), read_checkpoint_json(folder / "state.json")
    model.policy.load_state_dict({k[len("policy.") :]: v for k, v in tensors.items() if k.startswith("policy.")})
    buffer = model.replay_buffer
    for name in BUFFER_FIELDS:
        values = tensors[f"buffer.{name}"].numpy()
        getattr(buffer, name)[: len(values)] = values
    buffer.pos, buffer.full = meta["buffer"]["pos"], meta["buffer"]["full"]
    if model.log_ent_coef is not None:
        with torch.no_grad():
            model.log_ent_coef.copy_(tensors["log_ent_coef"])
    for name, optimizer in _modules(model).items():
        prefix = f"{name}."
        own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix + "optim.")}
        optimizer.load_state_dict(join_optimizer_state(own, meta[f"optim.{name}"]))
    model._n_updates = meta["n_updates"]
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and model.device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], model.device)
    kind, pos, has_gauss, cached = meta["rng"]["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]["actions"]
    return meta["rl_steps"], rng, meta["env_steps"], meta["episodes"], meta["owed"]
