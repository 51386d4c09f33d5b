"""Batched rollouts: one loop for collecting demonstrations and for evaluating policies.

Seeds are run in waves of ``num_envs`` parallel episodes; every wave resets all environments
with its seeds and steps until all are done, so episode ``i`` always runs from ``seeds[i]``
whatever the batch size. Each episode yields one record; the recorded steps (optional) become an
EpisodeStore of demonstrations; the rendered frames (optional, for videos) one array per episode.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from protege.data.store import EpisodeStore
from protege.progress import progress_bar
from protege.tasks.base import Actor, Perturbation, Task


@dataclass
class Rollouts:
    """Per-episode outcomes (E,) in seed order, and the recorded demonstrations if asked for.

    ``max_progress``: the max of the task's progress signal over each episode (PushT's coverage
    score), or None for a task without one. ``frames``: with ``render``, each episode's pictures
    (length + 1, H, W, 3) uint8: the reset scene, then the scene after every step.
    """

    seeds: np.ndarray
    success: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    wall_time: np.ndarray
    store: EpisodeStore | None = None
    max_progress: np.ndarray | None = None
    frames: list[np.ndarray] | None = None


def _steps_to_episodes(frames: list[np.ndarray], live: np.ndarray) -> np.ndarray:
    """(T, B, ...) step-major frames and (T, B) live mask -> episode-major rows of live steps."""
    stacked = np.stack(frames)  # (T, B, ...)
    return np.swapaxes(stacked, 0, 1)[live.T]


def _episode_pictures(pictures: list[np.ndarray], lengths: np.ndarray) -> list[np.ndarray]:
    """(T + 1) renders of (B, H, W, 3) -> per episode its first length + 1 pictures (reset included)."""
    return [np.stack([p[b] for p in pictures[: n + 1]]) for b, n in enumerate(lengths)]


def wave_size(task: Task, num_envs: int, episodes: int, render: bool = False) -> int:
    """How many episodes run side by side: ``num_envs``, at most ``episodes`` and the task's limit."""
    if num_envs < 1:
        raise ValueError(f"--num-envs must be >= 1, got {num_envs}")
    return min(num_envs, episodes, task.env_limit(render) or num_envs)


def rollout(
    task: Task,
    actor: Actor,
    seeds: np.ndarray | list[int],
    num_envs: int = 50,
    record: bool = False,
    source: str = "",
    progress: bool = True,
    desc: str = "rollouts",
    perturb: Perturbation | None = None,
    asynchronous: bool = False,
    render: bool = False,
) -> Rollouts:
    """Run one episode per seed with ``actor`` in the loop; record the steps when asked.

    With ``perturb`` the environments execute perturbed actions while the actor's own actions are
    recorded (DART-style labels). ``asynchronous`` steps the environments in subprocesses.
    ``render`` runs the task's render env instead (in-process, ``asynchronous`` unused) and keeps
    every episode's pictures; without it nothing is drawn.
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    n = wave_size(task, num_envs, len(seeds), render)
    if n < min(num_envs, len(seeds)):
        print(f"{task.name}: {n} envs at a time while they draw (each renderer holds its own memory)", file=sys.stderr)
    env = task.make_render_env(n) if render else task.make_env(n, asynchronous=asynchronous)
    success, returns, lengths, wall, max_progress = (
        np.zeros(len(seeds), dtype=d) for d in (bool, np.float64, np.int64, np.float64, np.float64)
    )
    stores, frames = [], []
    bar = progress_bar(total=len(seeds), desc=desc, unit="ep", disable=not progress, leave=False)
    for lo in range(0, len(seeds), n):
        wave = seeds[lo : lo + n]
        k = len(wave)
        padded = np.concatenate([wave, np.repeat(wave[-1:], n - k)])
        start = time.perf_counter()
        obs, _ = env.reset(seed=padded.tolist())
        actor.reset(padded)
        if perturb is not None:
            perturb.reset(padded)
        done = np.zeros(n, dtype=bool)
        ep_success, ep_return, ep_length = np.zeros(n, dtype=bool), np.zeros(n), np.zeros(n, dtype=np.int64)
        ep_progress = np.zeros(n)
        obs_frames, action_frames, reward_frames, live_frames = [], [], [], []
        pictures = [env.render()] if render else []
        for _ in range(task.spec.max_steps):
            action = np.asarray(actor.act(obs), dtype=np.float32)
            live = ~done
            if record:
                obs_frames.append({key: value.copy() for key, value in obs.items()})
                action_frames.append(action)
                live_frames.append(live)
            obs, reward, terminated, truncated, info = env.step(action if perturb is None else perturb(action))
            reward = np.asarray(reward, dtype=np.float64)
            if record:
                reward_frames.append(reward.astype(np.float32))
            ep_return += np.where(live, reward, 0.0)
            ep_length += live
            ep_success |= live & np.asarray(info["success"], dtype=bool)
            if task.spec.progress:
                ep_progress = np.where(
                    live, np.maximum(ep_progress, np.asarray(info["progress"], np.float64)), ep_progress
                )
            finished = int(done[:k].sum())
            done |= np.asarray(terminated) | np.asarray(truncated)
            if render:
                pictures.append(env.render())
            bar.update(int(done[:k].sum()) - finished)  # long episodes: the bar moves within a wave
            if done.all():
                break
        elapsed = time.perf_counter() - start
        sl = slice(lo, lo + k)
        success[sl], returns[sl], lengths[sl], wall[sl] = ep_success[:k], ep_return[:k], ep_length[:k], elapsed
        max_progress[sl] = ep_progress[:k]
        if render:
            frames += _episode_pictures(pictures, ep_length[:k])
        if record:
            live_mask = np.stack(live_frames)[:, :k]  # (T, k)
            stores.append(
                EpisodeStore(
                    obs={key: _steps_to_episodes([f[key][:k] for f in obs_frames], live_mask) for key in obs_frames[0]},
                    action=_steps_to_episodes([a[:k] for a in action_frames], live_mask),
                    episode_ends=np.cumsum(ep_length[:k]),
                    episodes={
                        "success": ep_success[:k],
                        "return": ep_return[:k],
                        "source": np.full(k, source or "policy", dtype=object),
                        "seed": wave,
                    },
                    reward=_steps_to_episodes([r[:k] for r in reward_frames], live_mask),
                    fps=task.spec.fps,
                    task=task.name,
                )
            )
        bar.update(k - int(done[:k].sum()))  # episodes cut by max_steps without a done flag
    bar.close()
    env.close()
    store = EpisodeStore.concatenate(stores) if record else None
    progress_out = max_progress if task.spec.progress else None
    return Rollouts(seeds, success, returns, lengths, wall, store, progress_out, frames if render else None)
