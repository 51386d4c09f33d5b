"""Quality vs sampling steps on toy/fork: diffusion (DDIM steps, leading and trailing timestep
spacing), flow (Euler steps, and adaptive) and one-step ``distilled`` students next to their
teachers; prints JSON.

    python benchmarks/sampling_steps.py [--diffusion RUN] [--flow RUN] [--student RUN ...] [--out DIR]

Runs not given are made here with the stated budgets: 200 expert episodes of toy/fork, diffusion
6000 steps, flow 1000 steps, and one student per teacher (1000 steps, cached teacher targets),
all at batch 256 with the trainer's defaults otherwise.

Success: closed loop on ``--episodes`` seeds from 100000 through ``protege.evaluate.evaluate``,
every variant of one teacher in one evaluation (same seeds, paired McNemar tests). A step-count
variant is the teacher's own weights with ``num_inference_steps`` (or ``adaptive``) changed in its
config, written as a checkpoint folder. Latency: median ms of ``policy.predict`` (inference_mode)
per chunk at batch 1 and 64, on start observations of the task. ``calls`` is the number of denoiser
calls per chunk (the mean over the batch-64 call for adaptive flow).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from protege.bench.variants import write_variant
from protege.config import EVAL_SEED, CollectConfig, EvalConfig, TrainConfig
from protege.demos.collect import collect
from protege.evaluate.evaluate import evaluate
from protege.evaluate.timing import predict_ms
from protege.machine import machine
from protege.policies import Policy, policy_class
from protege.policies.distilled import DistilledConfig
from protege.policies.storage import load_policy
from protege.tasks import make_task
from protege.train.trainer import train

TASK = "toy/fork"
STEPS = (1, 2, 4, 10)


def start_obs(policy: Policy, batch: int) -> dict[str, torch.Tensor]:
    """Histories (batch, n_obs, ...) of the task's first observations (seeds EVAL_SEED..)."""
    env = make_task(TASK).make_env(batch)
    obs, _ = env.reset(seed=[EVAL_SEED + i for i in range(batch)])
    env.close()
    return {
        k: torch.as_tensor(v).unsqueeze(1).repeat(1, policy.config.n_obs, *([1] * (v.ndim - 1)))
        for k, v in obs.items()
        if k in policy.spec.obs_shapes
    }


def latency(policy: Policy, repeats: int) -> dict:
    out = {}
    for batch in (1, 64):
        obs = start_obs(policy, batch)
        noise = policy.sample_noise(batch, torch.Generator().manual_seed(0))
        out[f"ms_batch_{batch}"] = round(predict_ms(policy, obs, noise, repeats), 4)
    return out


def calls(policy: Policy) -> float:
    cfg = policy.config
    if cfg.name == "flow" and cfg.adaptive:
        policy.predict(start_obs(policy, 64), noise=policy.sample_noise(64, torch.Generator().manual_seed(0)))
        return round(policy.last_steps, 3)
    return 1.0 if cfg.name == "distilled" else float(cfg.num_inference_steps)


def variant(run: Path, folder: Path, **changes) -> Path:
    """The run's (EMA) policy with config fields changed, saved as its own checkpoint folder."""
    return write_variant(run, folder, TASK, changes)


def measure(group: str, variants: dict[str, Path], args) -> dict:
    """Evaluate the variants together (paired) and time each one."""
    report = evaluate(
        EvalConfig(
            checkpoints=tuple(variants.values()),
            task=TASK,
            episodes=args.episodes,
            seed=EVAL_SEED,
            out=args.out / "eval" / group,
            device="cpu",
            progress=False,
        )
    )
    rows = {}
    for label, summary in zip(variants, report["policies"].values()):
        policy = load_policy(variants[label])
        rows[label] = {
            "success": summary["success_rate"],
            "success_ci95": [round(x, 3) for x in summary["success_ci95"]],
            "calls_per_chunk": calls(policy),
            **latency(policy, args.repeats),
        }
    labels = {name: label for label, name in zip(variants, report["policies"])}
    paired = [
        {"a": labels[p["a"]], "b": labels[p["b"]], "difference": p["difference"], "p_value": round(p["p_value"], 4)}
        for p in report["paired"]
    ]
    return {"variants": rows, "paired": paired}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--diffusion", type=Path, help="trained diffusion run on toy/fork (default: train one)")
    parser.add_argument("--flow", type=Path, help="trained flow run on toy/fork (default: train one)")
    parser.add_argument("--student", type=Path, nargs="*", help="distilled runs (default: distill one per teacher)")
    parser.add_argument("--out", type=Path, default=Path("runs/sampling-steps"))
    parser.add_argument("--demos", type=int, default=200, help="expert episodes collected when training here")
    parser.add_argument("--diffusion-steps", type=int, default=6000)
    parser.add_argument("--flow-steps", type=int, default=1000)
    parser.add_argument("--student-steps", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    timings = {}

    def fit(name: str, policy_cfg, steps: int) -> Path:
        data = args.out / "data"
        if not (data / "meta" / "info.json").exists():
            collect(CollectConfig(task=TASK, episodes=args.demos, out=data, overwrite=True, progress=False))
        reused = (args.out / name / "checkpoints" / "latest.json").exists()
        start = time.perf_counter()
        run = train(
            TrainConfig(
                dataset=data,
                policy=policy_cfg,
                out=args.out / name,
                steps=steps,
                eval_every=0,
                save_every=steps,
                device="cpu",
                progress=False,
                resume=True,
            )
        )
        timings[f"train_{name}_s"] = "reused an earlier run" if reused else round(time.perf_counter() - start, 1)
        return run

    def budget(run: Path) -> dict:
        cfg = json.loads((Path(run) / "config.json").read_text())
        return {
            "steps": cfg["steps"],
            "batch_size": cfg["batch_size"],
            "dataset": cfg["dataset"],
            **({"cache_noise": cfg["policy"]["cache_noise"]} if "cache_noise" in cfg["policy"] else {}),
        }

    teachers = {
        "diffusion": args.diffusion or fit("diffusion", policy_class("diffusion").config_class(), args.diffusion_steps),
        "flow": args.flow or fit("flow", policy_class("flow").config_class(), args.flow_steps),
    }
    students = (
        args.student
        if args.student is not None
        else [
            fit(f"distilled-{name}", DistilledConfig(teacher=str(run)), args.student_steps)
            for name, run in teachers.items()
        ]
    )

    result = {"task": TASK, "seeds": {"first": EVAL_SEED, "count": args.episodes}, "machine": machine()}
    folder = args.out / "variants"
    for name, run in teachers.items():
        variants = {f"{name}-{n}": variant(run, folder / f"{name}-{n}", num_inference_steps=n) for n in STEPS}
        if name == "diffusion":
            variants |= {
                f"diffusion-trailing-{n}": variant(
                    run, folder / f"diffusion-trailing-{n}", num_inference_steps=n, timestep_spacing="trailing"
                )
                for n in STEPS
            }
        if name == "flow":
            variants["flow-adaptive"] = variant(run, folder / "flow-adaptive", adaptive=True)
        result[name] = {"run": str(run), "budget": budget(run), **measure(name, variants, args)}
    for run in students:
        student = load_policy(run)
        teacher_run = Path(student.config.teacher)
        teacher = load_policy(teacher_run)
        label = f"distilled-{teacher.config.name}"
        label = label if label not in result else f"{label}-{run.name}"
        pair = {
            f"{teacher.config.name}-teacher": variant(teacher_run, folder / f"{label}-teacher"),
            label: variant(run, folder / label),
        }
        result[label] = {
            "run": str(run),
            "budget": budget(run),
            "teacher": str(teacher_run),
            "teacher_steps": student.config.teacher_steps or teacher.config.num_inference_steps,
            **measure(label, pair, args),
        }
    result["timings"] = timings
    print(json.dumps(result, indent=1))
    (args.out / "sampling_steps.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
