"""Closed-loop evaluation of checkpoints on one shared seed list, with per-episode rows saved.

Every success, return, length and max-progress summary is computed from the values written to
``episodes.csv``, so a reader can check it; the policy calls and replans per env step (total over
all episodes' steps) come from the actor's log. Episodes run in parallel waves, so
``wall_time_s`` is the wall time of the episode's whole wave, policy included.

With ``videos`` the first successes and failures of each policy are replayed afterwards, their
seeds in one rendering batch, and written as WebM files under ``videos/`` with a manifest
(protege.evaluate.videos): the evaluation itself draws nothing, so its rows are the same either way.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protege.atomic import atomic_file, write_json_atomic
from protege.cluster import Fanout
from protege.config import TRAIN_EVAL_SEED, EvalConfig, resolve_device
from protege.evaluate.actor import PolicyActor, check_fits
from protege.evaluate.stats import mcnemar_exact, summarize
from protege.machine import machine
from protege.policies.base import Policy
from protege.policies.storage import BEST, load_policy, read_checkpoint_json, resolve_checkpoint
from protege.runner import Rollouts, rollout, wave_size
from protege.tables import text_table
from protege.tasks import Task, task_for

VIDEOS = "videos"  # folder of the rollout videos, inside the eval folder

#: One row per episode. ``max_progress``: the max over the episode of the task's progress signal in
#: [0, 1] (PushT: goal coverage / 0.95, capped at 1), empty for a task without one.
EPISODE_FIELDS = ["task", "policy", "checkpoint", "seed", "success", "return", "length", "max_progress", "wall_time_s"]


@dataclass
class PolicyResult:
    """One checkpoint's outcome on the seed list: label, summary and per-episode rows."""

    label: str
    summary: dict
    rows: list[dict]

    @property
    def success(self) -> np.ndarray:
        return np.array([r["success"] for r in self.rows], dtype=bool)


def checkpoint_task(path: Path) -> str:
    return read_checkpoint_json(resolve_checkpoint(path) / "config.json").get("task", "")


def _label(path: Path, policy_name: str, taken: set[str]) -> str:
    label = policy_name if policy_name not in taken else f"{policy_name}:{path.name}"
    taken.add(label)
    return label


def evaluate(cfg: EvalConfig) -> dict:
    """Evaluate every checkpoint on the same seeds; write episodes.csv and summary.json."""
    if not cfg.checkpoints:
        raise ValueError("give at least one checkpoint or run folder to evaluate")
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    task_name = cfg.task or checkpoint_task(cfg.checkpoints[0])
    if not task_name:
        raise ValueError(f"checkpoint '{cfg.checkpoints[0]}' records no task; pass --task")
    if cfg.labels and (len(cfg.labels) != len(cfg.checkpoints) or len(set(cfg.labels)) != len(cfg.labels)):
        raise ValueError(
            f"--labels needs {len(cfg.checkpoints)} distinct names, one per checkpoint; got {list(cfg.labels)}"
        )
    seeds = cfg.seed + np.arange(cfg.episodes)
    device = resolve_device(cfg.device)
    folders = [resolve_checkpoint(path, cfg.checkpoint) for path in cfg.checkpoints]
    policies = [load_policy(folder, ema=cfg.ema) for folder in folders]  # every one checked before any work, on the CPU
    task = task_for(task_name, *(policy.spec.obs_shapes for policy in policies))
    for folder, policy in zip(folders, policies):
        check_fits(policy.spec, task, f"checkpoint '{folder}'")
    if cfg.videos > 0:
        task.make_render_env(1).close()  # a task that cannot draw its scene refuses before any episode runs
    out_dir = cfg.out or Path(cfg.checkpoints[0]) / "eval"
    results, taken, videos, stems = [], set(), [], set()
    labels = [
        cfg.labels[i] if cfg.labels else _label(Path(path), policy.config.name, taken)
        for i, (path, policy) in enumerate(zip(cfg.checkpoints, policies))
    ]
    with Fanout(cfg) as fan:
        if fan.remote:  # every policy's shards submitted at once; gathered below in seed order
            shapes = [policy.spec.obs_shapes for policy in policies]
            shards = [_submit_shards(fan, folder, task, shapes, cfg, seeds) for folder in folders]
        for i, (path, folder, policy, label) in enumerate(zip(cfg.checkpoints, folders, policies, labels)):
            if not fan.remote or cfg.videos:  # on Ray the workers hold the policies that run
                policy = policy.to(device)
            actor = make_actor(policy, cfg)
            if fan.remote:
                out, calls, replans = _merge(fan.gather(shards[i], desc=f"eval {label}", progress=cfg.progress))
            else:
                out, calls, replans = run_episodes(task, actor, seeds, cfg, cfg.progress, f"eval {label}")
            results.append(_policy_result(task_name, label, path, folder, out, calls, replans, actor, cfg))
            if cfg.videos > 0:
                videos += record_videos(task, make_actor(policy, cfg), label, out, cfg, out_dir / VIDEOS, stems)
    report = {
        "task": task_name,
        "machine": machine(),
        "progress": task.spec.progress,
        "seeds": {"first": int(seeds[0]), "count": len(seeds)},
        "execution": execution_settings(cfg),
        "policies": {r.label: r.summary for r in results},
        "paired": [
            {"a": a.label, "b": b.label, **mcnemar_exact(a.success, b.success)}
            for i, a in enumerate(results)
            for b in results[i + 1 :]
        ],
    }
    if cfg.videos > 0:
        report["videos"] = _write_manifest(out_dir / VIDEOS, videos)
    write_results(out_dir, results, report)
    report["out"] = str(out_dir)
    return report


def _policy_result(
    task_name: str,
    label: str,
    path: Path,
    folder: Path,
    out: Rollouts,
    calls: np.ndarray,
    replans: np.ndarray,
    actor: PolicyActor,
    cfg: EvalConfig,
) -> PolicyResult:
    """One checkpoint's rows and summary from its episodes' outcomes."""
    progress = out.max_progress if out.max_progress is not None else [""] * len(out.seeds)
    rows = [
        {
            "task": task_name,
            "policy": label,
            "checkpoint": str(folder),
            "seed": int(s),
            "success": bool(ok),
            "return": float(r),
            "length": int(n),
            "max_progress": p if p == "" else float(p),
            "wall_time_s": float(w),
        }
        for s, ok, r, n, p, w in zip(out.seeds, out.success, out.returns, out.lengths, progress, out.wall_time)
    ]
    steps = max(int(out.lengths.sum()), 1)
    summary = {
        **summarize(out.success, out.returns, out.lengths, out.max_progress),
        "checkpoint": checkpoint_selection(path, folder, cfg.checkpoint),
        "n_action_steps": actor.n_action_steps if cfg.execution == "receding" else None,
        "policy_calls_per_step": int(calls.sum()) / steps,
        "replans_per_step": int(replans.sum()) / steps,
    }
    return PolicyResult(label, summary, rows)


def run_episodes(
    task: Task, actor: PolicyActor, seeds: np.ndarray, cfg: EvalConfig, progress: bool, desc: str, num_envs: int = 0
) -> tuple[Rollouts, np.ndarray, np.ndarray]:
    """One episode per seed in waves of ``num_envs`` (default --num-envs); the outcomes and, per
    episode, policy calls and replans."""
    out = rollout(
        task,
        actor,
        seeds,
        num_envs=num_envs or cfg.num_envs,
        progress=progress,
        desc=desc,
        asynchronous=cfg.async_envs,
    )
    calls, replans = actor.take_counts(out.lengths)
    return out, calls, replans


def _shard(
    folder: Path, task_name: str, shapes: list[dict], cfg: EvalConfig, seeds: np.ndarray, wave: int
) -> tuple[Rollouts, np.ndarray, np.ndarray]:
    """A Ray worker's part of an evaluation: the episodes of ``seeds`` (whole waves of ``wave`` envs,
    the last one padded as the local run pads it), with the same task and actor as a local run."""
    policy = load_policy(folder, ema=cfg.ema).to(resolve_device(cfg.device))
    task = task_for(task_name, *shapes)
    padded = np.concatenate([seeds, np.repeat(seeds[-1:], -len(seeds) % wave)])
    out, calls, replans = run_episodes(task, make_actor(policy, cfg), padded, cfg, False, "", num_envs=wave)
    n = len(seeds)
    kept = Rollouts(
        *(getattr(out, name)[:n] for name in FIELDS),
        max_progress=None if out.max_progress is None else out.max_progress[:n],
    )
    return kept, calls[:n], replans[:n]


def _submit_shards(
    fan: Fanout, folder: Path, task: Task, shapes: list[dict], cfg: EvalConfig, seeds: np.ndarray
) -> list:
    """One policy's evaluation as Ray tasks over contiguous groups of whole waves of the seed list:
    every episode meets the same envs in its batch as in a local run, so the rows are the same."""
    if cfg.ray_workers < 0:
        raise ValueError(f"--ray-workers must be >= 0, got {cfg.ray_workers}")
    wave = wave_size(task, cfg.num_envs, len(seeds))
    waves = [seeds[lo : lo + wave] for lo in range(0, len(seeds), wave)]
    workers = min(cfg.ray_workers or fan.slots(), len(waves))
    groups = np.array_split(np.arange(len(waves)), workers)
    return [
        fan.submit(_shard, folder, task.name, shapes, cfg, np.concatenate([waves[i] for i in group]), wave)
        for group in groups
    ]


def _merge(parts: list[tuple[Rollouts, np.ndarray, np.ndarray]]) -> tuple[Rollouts, np.ndarray, np.ndarray]:
    """The shards' outcomes as one evaluation's, in seed order."""
    outs = [part[0] for part in parts]
    merged = Rollouts(
        *(np.concatenate([getattr(o, name) for o in outs]) for name in FIELDS),
        max_progress=None if outs[0].max_progress is None else np.concatenate([o.max_progress for o in outs]),
    )
    return merged, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


#: The per-episode arrays of Rollouts a shard sends back.
FIELDS = ("seeds", "success", "returns", "lengths", "wall_time")


def make_actor(policy: Policy, cfg: EvalConfig) -> PolicyActor:
    """The actor that runs ``policy`` with the evaluation's execution settings (noise from the seeds)."""
    return PolicyActor(
        policy,
        n_action_steps=cfg.n_action_steps or None,
        seed=0,
        execution=cfg.execution,
        ensemble_decay=cfg.ensemble_decay,
        replan_threshold=cfg.replan_threshold,
        check_every=cfg.check_every,
    )


def record_videos(
    task: Task, actor: PolicyActor, label: str, evaluated: Rollouts, cfg: EvalConfig, folder: Path, stems: set[str]
) -> list[dict]:
    """Replay the first ``cfg.videos`` successes and failures of one policy's evaluation with
    rendering, in one batch, and write a video of each into ``folder``; their manifest entries.

    The actor draws each episode's noise from its seed, so a replay repeats the evaluated episode
    unless execution couples the envs of a batch (adaptive with ``check_every > 1``) or batched
    arithmetic differs by batch size; a replay that ends otherwise is still shown, named by the
    outcome it shows, with ``replay_matches`` false. ``stems`` holds the file stems already in use.
    """
    from protege.evaluate.videos import file_stem, pick_seeds, video_name, write_webm  # PyAV only when asked for

    seeds = pick_seeds(evaluated.seeds, evaluated.success, cfg.videos)
    replay = rollout(
        task, actor, seeds, num_envs=len(seeds), progress=cfg.progress, desc=f"videos {label}", render=True
    )
    evaluated_success = dict(zip(evaluated.seeds.tolist(), evaluated.success.tolist()))
    stem, entries = file_stem(label, stems), []
    for seed, success, length, frames in zip(
        replay.seeds.tolist(), replay.success.tolist(), replay.lengths.tolist(), replay.frames
    ):
        name = video_name(stem, seed, success)
        width, height = write_webm(folder / name, frames, task.spec.fps)
        entries.append(
            {
                "policy": label,
                "task": task.name,
                "seed": seed,
                "success": evaluated_success[seed],
                "replay_success": success,
                "replay_matches": success == evaluated_success[seed],
                "length": length,
                "frames": len(frames),
                "file": name,
                "width": width,
                "height": height,
                "fps": task.spec.fps,
            }
        )
    return entries


def _write_manifest(folder: Path, entries: list[dict]) -> list[dict]:
    """Write the videos' manifest into ``folder``; the entries as summary.json lists them, each
    ``file`` relative to the eval folder (in the manifest: relative to its own folder)."""
    from protege.evaluate.videos import write_manifest

    write_manifest(folder, entries)
    kept = {entry["file"] for entry in entries}
    for stale in folder.glob("*.webm"):  # an earlier evaluation's videos in the same folder
        if stale.name not in kept:
            stale.unlink()
    return [entry | {"file": f"{folder.name}/{entry['file']}"} for entry in entries]


def checkpoint_selection(path: Path, folder: Path, rule: str) -> dict:
    """Which checkpoint was evaluated and the rule that picked it (recorded in summary.json): the
    final one, or the best of the kept ones by training-time closed-loop success on its own seeds."""
    step = (
        read_checkpoint_json(folder / "train_state.json").get("step")
        if (folder / "train_state.json").exists()
        else None
    )
    selection = {"rule": rule, "step": step, "folder": folder.name}
    if rule == "best" and (folder.parent / BEST).exists():  # a step folder given directly was picked by its user
        kept = read_checkpoint_json(folder.parent / BEST)
        selection |= {
            "of": len(kept),
            "by": f"training-time closed-loop success on seeds from {TRAIN_EVAL_SEED}",
            **kept[0],
        }
    return selection


def execution_settings(cfg: EvalConfig) -> dict:
    """The execution strategy and the settings it uses (recorded in summary.json)."""
    settings = {"strategy": cfg.execution}
    if cfg.execution == "receding":
        settings["n_action_steps"] = cfg.n_action_steps  # 0: each policy's own (per policy in its summary)
    elif cfg.execution == "ensemble":
        settings["ensemble_decay"] = cfg.ensemble_decay
    else:
        threshold = (
            cfg.replan_threshold if math.isfinite(cfg.replan_threshold) else str(cfg.replan_threshold)
        )  # strict JSON
        settings.update(replan_threshold=threshold, check_every=cfg.check_every)
    return settings


def write_results(out_dir: Path, results: list[PolicyResult], report: dict) -> None:
    with atomic_file(out_dir / "episodes.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=EPISODE_FIELDS)
        writer.writeheader()
        for result in results:
            writer.writerows(result.rows)
    write_json_atomic(out_dir / "summary.json", report)


def format_report(report: dict) -> str:
    """Plain-text table: success (and a task's max progress) with 95% intervals per policy, then
    paired McNemar tests."""
    lines = [
        f"task {report['task']}: {report['seeds']['count']} episodes per policy, seeds "
        f"{report['seeds']['first']}..{report['seeds']['first'] + report['seeds']['count'] - 1}"
    ]
    if "execution" in report:
        settings = ", ".join(f"{k} {v}" for k, v in report["execution"].items() if k != "strategy")
        lines.append(f"execution: {report['execution']['strategy']} ({settings})")
    lines.append("")
    progress = report.get("progress", "")
    headers = ["policy", "success", "95% CI", "return", "length", "calls/step"]
    if progress:
        headers[3:3] = [f"max {progress}", "95% CI"]
    rows = []
    for label, s in report["policies"].items():
        row = [label, f"{s['success_rate']:.2f}", "[{:.2f}, {:.2f}]".format(*s["success_ci95"])]
        if progress:
            row += [f"{s['mean_max_progress']:.3f}", "[{:.3f}, {:.3f}]".format(*s["max_progress_ci95"])]
        calls = f"{s['policy_calls_per_step']:.3f}" if "policy_calls_per_step" in s else "-"
        rows.append([*row, f"{s['mean_return']:.2f}", f"{s['mean_length']:.1f}", calls])
    lines.append(text_table(headers, rows))
    for p in report["paired"]:
        lines.append("")
        lines.append(
            f"paired {p['a']} vs {p['b']}: difference {p['difference']:+.2f}, "
            f"{p['a']} only {p['a_only']}, {p['b']} only {p['b_only']}, exact McNemar p = {p['p_value']:.3g}"
        )
    if report.get("videos"):
        differ = sum(not v["replay_matches"] for v in report["videos"])
        note = f"; {differ} replayed with another outcome than evaluated" if differ else ""
        lines += ["", f"videos: {len(report['videos'])} in {VIDEOS}/ (listed in {VIDEOS}/videos.json){note}"]
    return "\n".join(lines)
