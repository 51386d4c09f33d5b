"""protege beside LeRobot's DiffusionPolicy on PushT, one dataset, one machine, one run; prints JSON.

    python benchmarks/peer_lerobot.py --lerobot-python VENV/bin/python [--minutes 10] [--episodes 100]
        [--lerobot-episodes 2] [--out runs/peer-lerobot]

Not in CI. LeRobot goes in its own virtual environment, never into protege's (every lerobot
release caps torch below the wheel on this machine's disk, so its torch comes first and lerobot
without its pins)::

    python3.11 -m venv ../venv-lerobot
    ../venv-lerobot/bin/pip install torch==2.14.1 torchvision==0.29.1
    ../venv-lerobot/bin/pip install --no-deps lerobot==0.4.4
    ../venv-lerobot/bin/pip install <lerobot's requirements but torch, torchvision, torchcodec>

(``tests/fixtures/regenerate.py`` does exactly this, listing the requirements from lerobot's metadata.)

The 200 (default) expert demonstrations are exported as a LeRobotDataset v3 with the agent's
(x, y) as ``observation.state`` and the block pose as ``observation.environment_state`` (LeRobot's
DiffusionPolicy refuses state-only input); protege reads the same export back. Then, each alone
on the machine with the same threads and the same training wall clock:

- ``lerobot``: LeRobot's DiffusionPolicy at its defaults (benchmarks/peers/lerobot_worker.py);
- ``protege``: protege's diffusion at its defaults;
- ``protege-lerobot-size``: protege's diffusion with LeRobot's denoiser size (a 1-D U-Net with
  channels 512/1024/2048, kernel 5, 100 sampling steps), separating model size from code speed.

Per contender: training samples/s, data-loading share, seconds per chunk at batch 1 and success and
max coverage after the budget on the same gym-pusht seeds (LeRobot's on the first
``--lerobot-episodes`` of them: at its default 100 denoising steps one episode takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from protege.config import EVAL_SEED, CollectConfig, TrainConfig
from protege.data.store import STATE, EpisodeStore
from protege.data.windows import WindowSampler
from protege.demos.collect import collect
from protege.evaluate.actor import PolicyActor
from protege.evaluate.stats import mean_interval, wilson_interval
from protege.evaluate.timing import predict_ms
from protege.formats import read_dataset, write_dataset
from protege.machine import machine
from protege.policies import policy_class
from protege.policies.storage import load_policy
from protege.runner import rollout
from protege.tasks import make_task
from protege.train.trainer import train

HERE = Path(__file__).parent
ENV_STATE = "observation.environment_state"
#: LeRobot DiffusionConfig's denoiser, in protege's settings
LEROBOT_SIZE = {"denoiser": "unet", "unet_dims": (512, 1024, 2048), "kernel_size": 5, "num_inference_steps": 100}


def export(store: EpisodeStore, out: Path) -> Path:
    """The PushT demonstrations with the agent as observation.state and the block as the environment state."""
    state = store.obs[STATE]
    exported = EpisodeStore(
        obs={STATE: state[:, :2].copy(), ENV_STATE: state[:, 2:].copy()},
        action=store.action,
        episode_ends=store.episode_ends,
        episodes=store.episodes,
        task=store.task,
        fps=store.fps,
    )
    return write_dataset(exported, out, overwrite=True)


class SplitState:
    """Gives an actor trained on the export the observation layout it was trained on."""

    def __init__(self, actor) -> None:
        self.actor = actor

    def reset(self, seeds: np.ndarray) -> None:
        self.actor.reset(seeds)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = obs[STATE]
        return self.actor.act({STATE: state[:, :2], ENV_STATE: state[:, 2:]})


class LeRobotActor:
    """LeRobot's policy in its own venv, one JSON line per step (benchmarks/peers/lerobot_worker.py serve)."""

    def __init__(self, python: str, out: Path) -> None:
        worker = [python, str(HERE / "peers" / "lerobot_worker.py"), "serve", "--out", str(out)]
        self.proc = subprocess.Popen(worker, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def reset(self, seeds: np.ndarray) -> None:
        self._ask({"reset": int(seeds[0])})

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        reply = self._ask({"state": obs[STATE].tolist(), "env": obs[ENV_STATE].tolist()})
        return np.asarray(reply["action"], dtype=np.float32)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def scores(success: np.ndarray, coverage: np.ndarray) -> dict:
    return {
        "episodes": len(success),
        "success_rate": float(success.mean()),
        "success_ci95": list(wilson_interval(int(success.sum()), len(success))),
        "mean_max_coverage": float(coverage.mean()),
        "max_coverage_ci95": mean_interval(coverage),
    }


def evaluate_on_pusht(actor, seeds: np.ndarray) -> dict:
    """Success and max coverage of an actor that sees the export's observation layout."""
    done = rollout(make_task("pusht"), SplitState(actor), seeds, num_envs=min(50, len(seeds)), progress=False)
    return scores(done.success, done.max_progress)


def protege_side(name: str, data: Path, settings: dict, batch_size: int, minutes: float, out: Path) -> Path:
    """Train protege's diffusion for the wall-clock budget: probe its speed, then run that many steps."""
    config = policy_class("diffusion").config_class

    def run(steps: int, folder: Path, log_every: int) -> Path:
        return train(
            TrainConfig(
                dataset=data,
                policy=config(**settings),
                steps=steps,
                batch_size=batch_size,
                eval_every=0,
                save_every=steps,
                out=folder,
                progress=False,
                log_every=log_every,
            )
        )

    probe = run(6, out / f"{name}-probe", 2)
    rows = [json.loads(line) for line in (probe / "metrics.jsonl").read_text().splitlines()]
    steps_per_s = float(np.median([r["steps_per_s"] for r in rows if "steps_per_s" in r][1:]))
    return run(max(1, int(steps_per_s * 60 * minutes)), out / name, 100)


def measure(run: Path, data: Path, seeds: np.ndarray) -> dict:
    """Training speed from a run's metrics, seconds per chunk at batch 1 and the PushT scores."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if "samples_per_s" in r]
    data_s = sum(r["data_s_per_step"] for r in timed)
    total_s = sum(r["data_s_per_step"] + r["update_s_per_step"] for r in timed)
    policy = load_policy(run, device="cpu")
    store = read_dataset(data)
    window = WindowSampler(store, policy.config.n_obs, policy.config.horizon).gather(torch.arange(1))
    obs = {k: v for k, v in window.items() if k in policy.spec.obs_shapes}
    chunk_ms = predict_ms(policy, obs, policy.sample_noise(1, torch.Generator().manual_seed(0)), repeats=5)
    config = json.loads((run / "config.json").read_text())
    return {
        "steps": config["steps"],
        "batch_size": config["batch_size"],
        "train_wall_s": rows[-1]["train_s"],
        "samples_per_s": float(np.median([r["samples_per_s"] for r in timed])),
        "data_loading_share": data_s / total_s,
        "s_per_chunk_batch1": chunk_ms / 1000,
        "parameters": sum(p.numel() for p in policy.parameters()),
        **(evaluate_on_pusht(PolicyActor(policy), seeds) if len(seeds) else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lerobot-python", required=True, help="python of the venv LeRobot 0.4.4 is installed in")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall clock per contender")
    parser.add_argument("--demos", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes for protege")
    parser.add_argument("--lerobot-episodes", type=int, default=2, help="evaluation episodes for LeRobot (0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/peer-lerobot"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    _, store = collect(
        CollectConfig(task="pusht", episodes=args.demos, out=args.out / "demos", overwrite=True, progress=False)
    )
    data = export(store, args.out / "export")
    results: dict = {"minutes": args.minutes, "threads": args.threads, "demos": args.demos, "contenders": {}}

    start = time.perf_counter()
    worker = [
        args.lerobot_python,
        str(HERE / "peers" / "lerobot_worker.py"),
        "train",
        "--root",
        str(data),
        "--out",
        str(args.out / "lerobot"),
        "--minutes",
        str(args.minutes),
    ]
    subprocess.run(worker, check=True, env=env)
    lerobot = json.loads((args.out / "lerobot" / "lerobot.json").read_text())
    os.environ.update(env)
    seeds = EVAL_SEED + np.arange(args.episodes)  # LeRobot's are the first of these
    if args.lerobot_episodes:  # 0: speed only (at 100 denoising steps an episode takes minutes)
        actor = LeRobotActor(args.lerobot_python, args.out / "lerobot")
        lerobot |= evaluate_on_pusht(actor, seeds[: args.lerobot_episodes])
        actor.close()
    lerobot["wall_s"] = time.perf_counter() - start
    results["contenders"]["lerobot"] = lerobot
    # protege at its defaults (batch 256), and at LeRobot's denoiser size and batch (64): model vs code
    contenders = (
        ("protege", {}, 256, seeds),
        ("protege-lerobot-size", LEROBOT_SIZE, 64, seeds[: args.lerobot_episodes]),
    )
    for name, settings, batch_size, eval_seeds in contenders:
        run = protege_side(name, data, settings, batch_size, args.minutes, args.out)
        results["contenders"][name] = measure(run, data, eval_seeds)
    base = results["contenders"]["lerobot"]
    results["ratios_vs_lerobot"] = {
        name: {
            "samples_per_s": c["samples_per_s"] / base["samples_per_s"],
            "s_per_chunk_batch1": c["s_per_chunk_batch1"] / base["s_per_chunk_batch1"],
        }
        for name, c in results["contenders"].items()
    }
    results["machine"] = machine()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
