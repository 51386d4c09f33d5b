"""The training loop: AdamW, warm-up + cosine schedule, clipping, EMA, checkpoints, evaluation.

The trainer owns optimization and bookkeeping; the policy owns the math (``policy.loss``), so a
new family trains here unchanged.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from protege.atomic import clean_stale, write_json_atomic, write_text_atomic
from protege.config import TRAIN_EVAL_SEED, TrainConfig, resolve_device
from protege.curation.curate import Curation
from protege.data.store import EpisodeStore
from protege.data.windows import WindowSampler
from protege.evaluate.actor import PolicyActor, check_fits
from protege.formats import read_dataset
from protege.policies import FeatureSpec, Policy, make_policy
from protege.policies.base import per_sample_losses
from protege.policies.storage import (
    load_weights,
    policy_config_from_json,
    policy_config_to_json,
    read_checkpoint_json,
    resolve_checkpoint,
)
from protege.progress import progress_bar
from protege.runner import rollout
from protege.tasks import TASKS, task_for
from protege.train.checkpoint import load_train_state, save_checkpoint
from protege.train.distributed import Ranks
from protege.train.ema import EMA
from protege.train.loggers import MetricSinks, require_sinks

#: The parts of a metrics row being accumulated that a checkpoint carries across a resume (the
#: deterministic ones: a resumed run then logs the losses an uninterrupted one would).
LOSS_WINDOW = ("loss", "grad_norm", "n", "skipped")

#: What the progress bar shows of the metrics rows: key -> (label, format); each stays until a newer row has it.
POSTFIX = {
    "loss": ("loss", ".4f"),
    "samples_per_s": ("samples/s", ".0f"),
    "val_loss": ("val_loss", ".4f"),
    "success": ("success", ".2f"),
}


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``cfg.lr``, then cosine decay to zero at ``cfg.steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def validation_loss(policy: Policy, sampler: WindowSampler, batch_size: int, seed: int) -> float:
    """Mean loss over the whole validation set, with fixed noise draws so curves are comparable."""
    return float(per_sample_losses(policy, sampler, batch_size, seed).mean())


def closed_loop(policy: Policy, task_name: str, episodes: int, progress: bool) -> dict[str, float]:
    """Success rate (and the mean max of the task's progress signal, if it has one) on the fixed
    training-time seed list, disjoint from final evaluation."""
    task = task_for(task_name, policy.spec.obs_shapes)
    seeds = TRAIN_EVAL_SEED + np.arange(episodes)
    with torch.random.fork_rng(devices=[]):
        result = rollout(task, PolicyActor(policy, seed=0), seeds, num_envs=episodes, progress=progress, desc="eval")
    scores = {"success": float(result.success.mean())}
    if result.max_progress is not None:
        scores["max_progress"] = float(result.max_progress.mean())
    return scores


def _rng_state(generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state(), "sampler": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state: dict[str, torch.Tensor], generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(state["sampler"])
    if "torch" not in state:  # a rank the checkpoint holds no noise stream for
        return
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _truncate_metrics(path: Path, step: int) -> float:
    """Drop rows logged after ``step`` (and a line torn by a kill): a resumed run logs those steps
    again. Returns the training seconds logged by then (``train_s``), where the run's clock goes on."""
    kept, train_s = [], 0.0
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("step", 0) <= step:
            kept.append(line + "\n")
            train_s = row.get("train_s", train_s)
    write_text_atomic(path, "".join(kept))
    return train_s


def _check_resumable(ckpt: Path, config_json: dict) -> None:
    """Resuming needs the checkpoint's policy and features; name what differs instead of a state-dict error."""
    saved = read_checkpoint_json(ckpt / "config.json")
    now = json.loads(json.dumps(config_json, default=str))
    # a field added since the checkpoint was written reads as load_policy reads it (WRITTEN_BEFORE, else its default)
    if saved["policy"]["name"] == now["policy"]["name"]:
        saved["policy"] = json.loads(
            json.dumps(policy_config_to_json(policy_config_from_json(saved["policy"])), default=str)
        )
    keys = (
        [("policy", "name")]
        if saved["policy"]["name"] != now["policy"]["name"]
        else [(part, key) for part in ("policy", "spec") for key in sorted(saved[part].keys() | now[part].keys())]
    )
    diffs = [
        f"{part}.{key}: {saved[part].get(key)!r} in the checkpoint, {now[part].get(key)!r} now"
        for part, key in keys
        if saved[part].get(key) != now[part].get(key)
    ]
    if diffs:
        raise ValueError(
            f"cannot resume from {ckpt}: {'; '.join(diffs)} (repeat the run's options, "
            f"or use --config {ckpt.parents[1] / 'config.json'} --resume)"
        )


def start_from(policy: Policy, init: Path) -> None:
    """Load ``init``'s weights, normalizer and fitted buffers into ``policy`` (fine-tuning keeps the
    normalization the weights were trained under); a different family or feature spec is refused."""
    folder = resolve_checkpoint(init)
    saved = read_checkpoint_json(folder / "config.json")
    if saved["policy"]["name"] != policy.config.name or saved["spec"] != policy.spec.to_json():
        raise ValueError(
            f"--init {init}: a {saved['policy']['name']} policy on {saved['spec']['obs_shapes']}; this run trains "
            f"{policy.config.name} on {policy.spec.to_json()['obs_shapes']} (use the run's own settings)"
        )
    ema = folder / "ema.safetensors"
    load_weights(policy, ema if ema.exists() else folder / "model.safetensors")


class TrainingDiverged(ValueError):
    """The loss or the gradient became NaN/inf; the run stops before saving non-finite weights."""


def _check_options(cfg: TrainConfig) -> None:
    """Every numeric option in its range, before any data is read: a negative --val-fraction or a
    --steps of 0 would otherwise train on the wrong data or save an untrained checkpoint."""
    ranges = {
        "steps": (cfg.steps >= 1, ">= 1"),
        "batch_size": (cfg.batch_size >= 1, ">= 1"),
        "log_every": (cfg.log_every >= 1, ">= 1"),
        "save_every": (cfg.save_every >= 1, ">= 1"),
        "eval_every": (cfg.eval_every >= 0, ">= 0 (0 disables closed-loop evaluation)"),
        "eval_episodes": (cfg.eval_episodes >= 0, ">= 0"),
        "val_fraction": (0 <= cfg.val_fraction < 1, "in [0, 1)"),
        "lr": (math.isfinite(cfg.lr) and cfg.lr > 0, "a positive number"),
        "warmup_steps": (cfg.warmup_steps >= 0, ">= 0"),
        "grad_clip": (cfg.grad_clip >= 0, ">= 0 (0 disables clipping)"),
        "ema_decay": (0 <= cfg.ema_decay < 1, "in [0, 1) (0 disables EMA)"),
        "weight_decay": (cfg.weight_decay >= 0, ">= 0"),
        "nproc": (cfg.nproc >= 1, ">= 1"),
    }
    for name, (ok, expected) in ranges.items():
        if not ok:
            raise ValueError(f"--{name.replace('_', '-')} must be {expected}, got {getattr(cfg, name)}")
    if cfg.keep_best < 0 or (cfg.keep_best and not (cfg.eval_every and cfg.eval_episodes)):
        raise ValueError(
            f"--keep-best must be >= 0 and ranks closed-loop evaluations (set --eval-every and --eval-episodes), "
            f"got --keep-best {cfg.keep_best}"
        )
    if cfg.eval_task and cfg.eval_task not in TASKS:
        raise ValueError(f"--eval-task '{cfg.eval_task}' is not a task; known tasks: {', '.join(sorted(TASKS))}")


def _strict_json(row: dict) -> str:
    """A metrics line that strict JSON readers accept: a non-finite number is written as null."""
    return json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()})


def _last_checkpoint(run_dir: Path) -> str:
    try:
        return f"the last finite checkpoint is kept: {resolve_checkpoint(run_dir)}"
    except FileNotFoundError:
        return "no checkpoint was written before it"


def train(cfg: TrainConfig) -> Path:
    """Train ``cfg.policy`` on ``cfg.dataset``; returns the run folder. Resumable with cfg.resume.
    Under ``torchrun`` every process calls this: data-parallel (protege.train.distributed)."""
    _check_options(cfg)
    device = resolve_device(cfg.device)
    ranks = Ranks.start(device)
    try:
        ranks.check(cfg.batch_size, cfg.curation.methods)
        run_dir = _train(cfg, ranks, ranks.device(device))
        ranks.barrier()  # the other ranks return once rank 0 has written the last checkpoint
        return run_dir
    finally:
        ranks.close()


def _train(cfg: TrainConfig, ranks: Ranks, device: torch.device) -> Path:
    sink_modules = require_sinks(cfg.log)  # every rank: a missing extra fails all of them at once
    sink_modules = sink_modules if ranks.main else {}
    run_dir = cfg.run_dir()
    has_checkpoint = (run_dir / "checkpoints" / "latest.json").exists()
    if has_checkpoint and not cfg.resume:
        raise FileExistsError(
            f"run folder '{run_dir}' already has checkpoints; pass --resume to continue it or --out for a new run"
        )
    torch.manual_seed(cfg.seed)
    store = read_dataset(cfg.dataset, obs_keys=cfg.policy.obs_keys or None, images=False)  # never decodes unused images
    if cfg.subset:  # of DATASET; the --add-data episodes are all added
        store = store.subset(cfg.subset)
    if cfg.add_data:
        added = [read_dataset(path, obs_keys=cfg.policy.obs_keys or None, images=False) for path in cfg.add_data]
        store = EpisodeStore.concatenate([store, *added])
    store.require_one_task("protege train")
    spec = FeatureSpec.from_store(store, cfg.policy.obs_keys)
    dataset_task = store.task
    eval_task = cfg.eval_task or (dataset_task if dataset_task in TASKS else "")
    train_store, val_store = store.split(cfg.val_fraction, cfg.seed)
    del store  # the split holds copies: camera frames would otherwise sit in memory twice
    curation = Curation(cfg.curation, train_store, cfg.seed)
    closed_loop_on = bool(eval_task and cfg.eval_every and cfg.eval_episodes)
    if closed_loop_on:  # every rank checks, so a mismatch stops them all before DDP starts
        hint = "; pass --eval-task for another task, or --eval-every 0 to train without closed-loop evaluation"
        check_fits(spec, task_for(eval_task, spec.obs_shapes), f"dataset '{cfg.dataset}'", hint)
    policy = make_policy(cfg.policy, spec)
    policy.fit(curation.fit_store())
    # Nonparametric families (knn) are complete once fitted: no steps, no EMA copy of the memory.
    trainable = any(p.requires_grad for p in policy.parameters())
    if cfg.init is not None and trainable:
        start_from(policy, cfg.init)
    policy.to(device)
    total_steps = cfg.steps if trainable else 0
    ema = EMA(policy, cfg.ema_decay) if cfg.ema_decay > 0 and trainable and ranks.main else None
    loss_fn = ranks.loss_module(policy) if trainable else policy.loss
    optimizer = torch.optim.AdamW([{"params": list(policy.parameters())}], lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = WindowSampler(train_store, cfg.policy.n_obs, cfg.policy.horizon, device)
    has_val = bool(val_store) and ranks.main
    val_sampler = WindowSampler(val_store, cfg.policy.n_obs, cfg.policy.horizon, device) if has_val else None
    share = ranks.share(cfg.batch_size)
    generator = torch.Generator().manual_seed(cfg.seed)
    # the processes it ran on (it resumes on any number) and torch's threads in each: runs repeat bit for bit at
    # one thread count, and another one changes the float reduction order (tests/test_vision.py)
    run_config = cfg.to_json() | {"nproc": ranks.world, "torch_threads": torch.get_num_threads()}
    config_json = {
        "train": run_config,
        "policy": run_config["policy"],
        "spec": spec.to_json(),
        "task": eval_task or dataset_task,
    }

    ranks.seed_noise(cfg.seed)

    if ranks.main:
        clean_stale(run_dir / "checkpoints")  # temporary folders of a killed run
        clean_stale(run_dir)
    ranks.barrier()  # the other ranks read the checkpoint once rank 0 has put it back in order
    start, saved_window = 0, None
    if cfg.resume and has_checkpoint:
        ckpt = resolve_checkpoint(run_dir)
        _check_resumable(ckpt, config_json)
        start, optim_state, rng, saved_window = load_train_state(ckpt)
        load_weights(policy, ckpt / "model.safetensors")
        if ema is not None and (ckpt / "ema.safetensors").exists():
            load_weights(ema.model, ckpt / "ema.safetensors")
        optimizer.load_state_dict(optim_state)
        own = ranks.own_rng(rng)
        _restore_rng(own, generator, device)
        if "torch" not in own:  # saved by fewer processes than resume it
            ranks.seed_noise(cfg.seed, start)
    metrics_path = run_dir / "metrics.jsonl"
    train_s = 0.0  # seconds spent on batches and updates (evaluation and checkpoints excluded), over resumes
    if ranks.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", run_config)
        if start == 0:
            metrics_path.write_text("")
        elif metrics_path.exists():
            train_s = _truncate_metrics(metrics_path, start)

    postfix: dict[str, str] = {}

    def log(row: dict) -> None:
        """A metrics row: into metrics.jsonl, to the --log sinks, and its latest values onto the bar (rank 0)."""
        if not ranks.main:
            return
        with metrics_path.open("a") as f:
            f.write(_strict_json(row) + "\n")
        sinks.log(row)
        postfix.update(
            {label: format(row[key], spec) for key, (label, spec) in POSTFIX.items() if row.get(key) is not None}
        )
        bar.set_postfix(postfix, refresh=False)  # shown at the bar's next (throttled) redraw

    def checkpoint(step: int, rng: dict[str, torch.Tensor], scores: dict[str, float] | None = None) -> None:
        save_checkpoint(
            run_dir,
            step,
            policy,
            ema.model if ema else None,
            config_json,
            optimizer,
            rng,
            scores=scores,
            keep_best=cfg.keep_best,
            log_window={k: window[k] for k in LOSS_WINDOW},  # timings restart with the process
        )

    eval_policy = ema.model if ema else policy
    curation.start(sampler, cfg.batch_size, total_steps, run_dir)

    def evaluate_now(step: int) -> dict[str, float] | None:
        """Validation loss and closed-loop scores at ``step``, logged; the closed-loop scores (if any)."""
        eval_policy.eval()
        row, scores = {"step": step, "train_s": train_s}, None
        if val_sampler is not None:
            row["val_loss"] = validation_loss(eval_policy, val_sampler, 1024, cfg.seed)
        if eval_task and cfg.eval_episodes > 0:
            scores = closed_loop(eval_policy, eval_task, cfg.eval_episodes, cfg.progress)
            row |= scores
        log(row)
        policy.train()
        return scores

    bar = progress_bar(
        range(start, total_steps),
        initial=start,
        total=total_steps,
        desc=f"train {cfg.policy.name}",
        unit="step",
        disable=not (cfg.progress and ranks.main),
    )
    # the log row being accumulated; saved with each checkpoint, so a resumed run logs the rows an
    # uninterrupted one would even when --save-every is not a multiple of --log-every
    empty_window = {"loss": 0.0, "grad_norm": 0.0, "data_s": 0.0, "update_s": 0.0, "n": 0, "steps": 0, "skipped": 0}
    window = {**empty_window, **{k: v for k, v in (saved_window or {}).items() if k in LOSS_WINDOW}}
    with MetricSinks(sink_modules, run_dir, config_json) as sinks:  # closed on errors too (wandb: failed)
        policy.train()
        for step in bar:
            curation.before_step(step, start, policy, eval_policy)
            t0 = time.perf_counter()
            batch = sampler.sample(cfg.batch_size, generator, share)
            t1 = time.perf_counter()
            lr = learning_rate(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = curation.reduce(loss_fn(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(
                policy.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
            )
            loss_value, norm_value = ranks.mean(loss.detach()), float(grad_norm)
            done = step + 1
            finite = math.isfinite(loss_value) and math.isfinite(norm_value)
            if finite:
                optimizer.step()
                if ema is not None:
                    ema.update(policy, step)
            elif cfg.on_nonfinite == "stop":
                log({"step": done, "stopped": "non-finite loss or gradient"})
                raise TrainingDiverged(
                    f"loss {loss_value} (gradient norm {norm_value}) at step {done}: training stopped, "
                    f"{_last_checkpoint(run_dir)}. Lower --lr, raise --warmup-steps or --batch-size, or pass "
                    "--on-nonfinite skip to skip such steps"
                )
            elif ranks.main:
                bar.write(
                    f"step {done}: loss {loss_value}, gradient norm {norm_value}; update skipped (--on-nonfinite skip)"
                )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t2 = time.perf_counter()
            if finite:
                window["loss"] += loss_value
                window["grad_norm"] += norm_value
                window["n"] += 1
            window["skipped"] += not finite
            window["data_s"] += t1 - t0
            window["update_s"] += t2 - t1
            window["steps"] += 1
            train_s += t2 - t0
            if done % cfg.log_every == 0 or done == total_steps:
                n, steps, elapsed = window["n"], window["steps"], window["data_s"] + window["update_s"]
                row = {
                    "step": done,
                    "loss": window["loss"] / n if n else None,
                    "grad_norm": window["grad_norm"] / n if n else None,
                    "lr": lr,
                    "samples_per_s": steps * cfg.batch_size / elapsed,
                    "steps_per_s": steps / elapsed,
                    "data_s_per_step": window["data_s"] / steps,
                    "update_s_per_step": window["update_s"] / steps,
                    "train_s": train_s,
                    **({"skipped_steps": window["skipped"]} if window["skipped"] else {}),
                }
                log(row)
                window = dict(empty_window)
            at_eval = bool(cfg.eval_every) and (done % cfg.eval_every == 0 or done == total_steps)
            at_save = (
                done % cfg.save_every == 0 or done == total_steps or (cfg.keep_best and at_eval and closed_loop_on)
            )
            if not (at_eval or at_save):
                continue
            rng = ranks.gather_rng(_rng_state(generator, device))  # every rank, before rank 0 alone goes on
            if not ranks.main:
                continue
            scores = None
            if at_eval:
                try:
                    scores = evaluate_now(done)
                except BaseException:
                    checkpoint(done, rng)  # the steps trained so far are kept even if the evaluation fails
                    raise
            if at_save:
                checkpoint(done, rng, scores)
        bar.close()
        if start >= total_steps and not has_checkpoint and ranks.main:
            scores = evaluate_now(0) if not trainable and cfg.eval_every else None
            checkpoint(total_steps, _rng_state(generator, device), scores)
    return run_dir
