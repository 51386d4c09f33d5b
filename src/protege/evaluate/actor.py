"""PolicyActor: turns a chunk-predicting policy into a per-step actor. The runner owns chunking.

Receding-horizon execution with ``n_obs=2, horizon=8, n_action_steps=4``::

    step:        0   1   2   3   4   5   6   7   8
    observe:    [o0] o1  o2  o3 [o4] o5 ...            history (o_{t-1}, o_t) at each replan
    predict:     a0  a1  a2  a3  a4  a5  a6  a7        chunk from o_{-1}=o0, o0 (edge-padded)
    execute:     a0  a1  a2  a3                        then replan at step 4 from (o3, o4)

All environments of a wave step in lockstep, so one queue position serves the whole batch and
every prediction is a single batched policy call. Three execution strategies (``execution``):

- ``receding``: execute ``n_action_steps`` of each chunk, then predict again (above).
- ``ensemble``: temporal ensembling (ACT, Zhao et al. 2023). A chunk is predicted at every step;
  chunk ``c_s`` predicted at step ``s`` proposes ``c_s[t - s]`` for step ``t``. The action executed
  at ``t`` is ``sum_i w_i c_{s_i}[t - s_i] / sum_i w_i`` over the chunks that cover ``t``
  (the last ``horizon`` ones, fewer right after a reset), ordered oldest first, ``i = 0`` the
  oldest, with ``w_i = exp(-ensemble_decay * i)``: the oldest prediction weighs most (ACT's
  convention); ``ensemble_decay = 0`` is the plain mean, a negative decay favours newer chunks.
- ``adaptive``: every env keeps a queue of up to ``horizon`` planned actions. A chunk is predicted
  every ``check_every`` steps (and whenever some env's queue is empty). For env ``b`` with ``r``
  queued actions left the disagreement is

      d_b = (1 / r) * sum_{j < r} || n(new_b[j]) - n(queue_b[j]) ||_2

  where ``new_b[j]`` is the new chunk's action for step ``t + j``, ``queue_b[j]`` the queued
  action for the same step and ``n`` the policy's action normalization (min-max to [-1, 1] per
  dimension), i.e. the mean per-step L2 distance in normalized units over the overlap. Env ``b``
  replaces its queue by the new chunk (all ``horizon`` steps) where ``r == 0`` or
  ``d_b >= replan_threshold``, else keeps executing its queue. So ``replan_threshold = inf``
  executes whole chunks and ``0`` replans at every check.

The actor logs, per step, whether the policy was called and which envs took a new chunk;
:meth:`PolicyActor.take_counts` turns the log into per-episode policy calls and replans.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from protege.data.store import ACTION
from protege.policies.base import FeatureSpec, Policy
from protege.tasks.base import Task


class NonFiniteActionError(ValueError):
    """A policy predicted NaN or inf: evaluation stops instead of scoring a broken policy 0%."""


def check_fits(spec: FeatureSpec, task: Task, what: str, hint: str = "") -> None:
    """Refuse, before any work, a policy whose observations or actions are not the task's: it would
    fail mid-run after the training budget is spent, or worse, run on the wrong columns."""
    problems = []
    if spec.action_dim != task.spec.action_dim:
        problems.append(f"{spec.action_dim}-D actions where the task takes {task.spec.action_dim}-D")
    for key, shape in spec.obs_shapes.items():
        given = task.spec.obs_shapes.get(key)
        if given is None:
            problems.append(
                f"observation '{key}', which the task does not give (it gives {sorted(task.spec.obs_shapes)})"
            )
        elif tuple(given) != tuple(shape):
            problems.append(f"'{key}' of shape {list(shape)} where the task gives {list(given)}")
    if problems:
        raise ValueError(f"{what} does not fit task '{task.name}': {'; '.join(problems)}{hint}")


#: The execution strategies, each a ``_act_<name>`` method of PolicyActor.
EXECUTIONS: tuple[str, ...] = ("receding", "ensemble", "adaptive")


class PolicyActor:
    """Keeps the observation history and the planned actions for a batch of envs.

    With ``execution="receding"`` (default) ``n_action_steps`` of each predicted chunk are executed
    before the next prediction (default: the policy's own setting); ``ensemble`` and ``adaptive``
    are described in the module docstring. Each env's sampling noise comes from its own generator,
    seeded at every reset from ``seed`` and that env's episode seed, so an episode's outcome depends
    on its seed only, not on how many envs run beside it (with ``adaptive`` and ``check_every > 1``
    one env's empty queue makes the whole batch predict, so there the envs of a batch still meet).
    """

    def __init__(
        self,
        policy: Policy,
        n_action_steps: int | None = None,
        seed: int = 0,
        execution: str = "receding",
        ensemble_decay: float = 0.01,
        replan_threshold: float = 0.1,
        check_every: int = 1,
    ):
        self.policy = policy
        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}, got '{execution}'")
        if execution != "receding" and n_action_steps:
            raise ValueError(f"n_action_steps applies to receding execution only, not '{execution}'")
        self.execution = execution
        self.n_action_steps = n_action_steps or policy.config.n_action_steps
        if not 1 <= self.n_action_steps <= policy.config.horizon:
            raise ValueError(
                f"n_action_steps must be in [1, horizon={policy.config.horizon}], got {self.n_action_steps}"
            )
        if not math.isfinite(ensemble_decay):
            raise ValueError(f"ensemble_decay must be a finite number, got {ensemble_decay}")
        if not replan_threshold >= 0:
            raise ValueError(
                f"replan_threshold must be >= 0 (inf: replan only when a chunk runs out), got {replan_threshold}"
            )
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.ensemble_decay, self.replan_threshold, self.check_every = ensemble_decay, replan_threshold, check_every
        self.seed = seed
        self.generators: list[torch.Generator] = []  # one per env, seeded from its episode's seed
        self._clear()
        self._waves: list[tuple[np.ndarray, np.ndarray]] = []  # per reset: calls (T,), replans (T, B)
        self._calls: list[bool] = []
        self._replans: list[np.ndarray] = []

    def _clear(self) -> None:
        self.history: dict[str, torch.Tensor] = {}
        self.queue: torch.Tensor | None = None  # receding: (k, B, A); adaptive: (B, H, A), [:, j] for step t + j
        self.t = 0  # steps since the reset
        self.remaining: torch.Tensor | None = None  # adaptive: (B,) queued actions left per env
        self.chunks: torch.Tensor | None = None  # ensemble: (H, B, H, A) ring of the last H chunks
        self.born: torch.Tensor | None = None  # ensemble: (H,) step each ring slot was predicted (-1: empty)

    def reset(self, seeds: np.ndarray) -> None:
        self._close_wave()
        self._clear()
        self.generators = [torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(s)) for s in seeds]

    def observe(self, obs: dict[str, np.ndarray]) -> None:
        """Add a step's observations to the history (``act`` does this itself)."""
        device = self.policy.device
        for key, value in obs.items():
            if key not in self.policy.spec.obs_shapes:
                continue
            value = np.asarray(value)
            dtype = None if value.dtype == np.uint8 else torch.float32  # camera frames stay uint8
            frame = torch.as_tensor(value, dtype=dtype, device=device).unsqueeze(1)  # (B, 1, *shape)
            if key not in self.history:  # first step: the history repeats the first frame
                self.history[key] = frame.expand(-1, self.policy.config.n_obs, *frame.shape[2:]).clone()
            else:
                self.history[key] = torch.cat([self.history[key][:, 1:], frame], dim=1)

    def _predict(self) -> torch.Tensor:
        """One batched policy call: (B, H, A) chunks from the current histories."""
        batch = next(iter(self.history.values())).shape[0]
        noise = self.policy.sample_noise(batch, self.generators)
        chunk = self.policy.predict(self.history, noise=noise)
        if not torch.isfinite(chunk).all():
            raise NonFiniteActionError(
                "the policy predicted NaN/inf actions; its weights or normalizer stats are not finite "
                "(a diverged run?), so no episode can be scored"
            )
        return chunk

    def _log(self, called: bool, replanned: np.ndarray | bool, batch: int) -> None:
        self._calls.append(called)
        self._replans.append(np.broadcast_to(np.asarray(replanned, dtype=bool), (batch,)).copy())

    def planned(self, obs: dict[str, np.ndarray]) -> torch.Tensor:
        """The step's action (B, A) as the execution strategy takes it from the chunks, before the
        policy's per-step ``correct`` (a residual's RL environment needs both)."""
        self.observe(obs)
        action = getattr(self, f"_act_{self.execution}")()
        self.t += 1
        return action

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.policy.correct(self.history, self.planned(obs)).float().cpu().numpy()

    def _act_receding(self) -> torch.Tensor:
        called = self.queue is None or len(self.queue) == 0
        if called:
            chunk = self._predict()  # (B, H, A)
            self.queue = chunk[:, : self.n_action_steps].transpose(0, 1)  # (k, B, A)
        action, self.queue = self.queue[0], self.queue[1:]
        self._log(called, called, action.shape[0])
        return action

    def _act_ensemble(self) -> torch.Tensor:
        chunk = self._predict()  # (B, H, A), proposes actions for steps t .. t + H - 1
        horizon = chunk.shape[1]
        if self.chunks is None:
            self.chunks = chunk.new_zeros((horizon, *chunk.shape))
            self.born = torch.full((horizon,), -1, dtype=torch.long, device=chunk.device)
        slot = self.t % horizon
        self.chunks[slot] = chunk
        self.born[slot] = self.t
        valid = self.born >= 0  # (H,) every valid slot covers step t: the ring holds the last H chunks
        offset = (self.t - self.born).clamp(0, horizon - 1)  # (H,) index of step t within each chunk
        proposals = self.chunks[torch.arange(horizon, device=chunk.device), :, offset]  # (H, B, A)
        age_rank = self.born - self.born[valid].min()  # i = 0 for the oldest covering chunk
        weights = torch.exp(-self.ensemble_decay * age_rank.to(chunk.dtype)) * valid  # (H,)
        action = (weights[:, None, None] * proposals).sum(0) / weights.sum()
        self._log(True, True, chunk.shape[0])
        return action

    def _act_adaptive(self) -> torch.Tensor:
        empty = None if self.remaining is None else self.remaining <= 0  # (B,)
        called = empty is None or bool(empty.any()) or self.t % self.check_every == 0
        if called:
            chunk = self._predict()  # (B, H, A) for steps t .. t + H - 1
            if self.queue is None:
                self.queue = chunk.clone()
                self.remaining = torch.full((chunk.shape[0],), chunk.shape[1], dtype=torch.long, device=chunk.device)
                replan = torch.ones(chunk.shape[0], dtype=torch.bool, device=chunk.device)
            else:
                replan = empty | (self.disagreement(chunk) >= self.replan_threshold)
                self.queue = torch.where(replan[:, None, None], chunk, self.queue)
                self.remaining = torch.where(replan, chunk.shape[1], self.remaining)
            replanned = replan.cpu().numpy()
        else:
            replanned = False
        action = self.queue[:, 0]
        self.queue = torch.cat(
            [self.queue[:, 1:], self.queue[:, -1:]], dim=1
        )  # queue[:, j] stays the action for step t + j
        self.remaining = self.remaining - 1
        self._log(called, replanned, action.shape[0])
        return action

    def disagreement(self, chunk: torch.Tensor) -> torch.Tensor:
        """(B,) mean per-step L2 distance, in normalized action units, between a new chunk and the
        queued actions over the steps both cover (0 where nothing is queued)."""
        normalize = self.policy.normalizer.normalize
        dist = torch.linalg.vector_norm(normalize(ACTION, chunk) - normalize(ACTION, self.queue), dim=-1)  # (B, H)
        overlap = torch.arange(chunk.shape[1], device=chunk.device)[None] < self.remaining[:, None]  # (B, H)
        return (dist * overlap).sum(1) / overlap.sum(1).clamp(min=1)

    # --------------------------------------------------------------------------------- counts

    def _close_wave(self) -> None:
        if self._calls:
            self._waves.append((np.array(self._calls, dtype=bool), np.stack(self._replans)))
        self._calls, self._replans = [], []

    def take_counts(self, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Policy calls and replans per episode since the last ``take_counts``, then forget them.

        ``lengths`` are the episodes' lengths in seed order, as the runner returns them; episodes
        map to waves in order, the first envs of each wave (the runner pads the last wave by
        repeating its last seed). Only steps ``< length`` count: a call is a batched prediction
        that covered the env, a replan a step where the env started executing a new chunk
        (with ``ensemble`` every step, as every step merges a new chunk).
        """
        self._close_wave()
        lengths = np.asarray(lengths, dtype=np.int64)
        calls, replans = np.zeros(len(lengths), dtype=np.int64), np.zeros(len(lengths), dtype=np.int64)
        i = 0
        for wave_calls, wave_replans in self._waves:
            for b in range(min(wave_replans.shape[1], len(lengths) - i)):
                n = lengths[i]
                calls[i], replans[i] = wave_calls[:n].sum(), wave_replans[:n, b].sum()
                i += 1
        if i != len(lengths):
            raise ValueError(f"the actor logged {i} episodes, but {len(lengths)} lengths were given")
        self._waves = []
        return calls, replans
