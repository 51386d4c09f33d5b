"""LeRobot's side of benchmarks/peer_lerobot.py; runs inside LeRobot's own virtual environment.

    VENV/bin/python benchmarks/peers/lerobot_worker.py train --root DATASET --out DIR --minutes M
    VENV/bin/python benchmarks/peers/lerobot_worker.py serve --out DIR

``train``: LeRobot's DiffusionPolicy at its defaults (the recipe of LeRobot's own training example:
its pre/post processors, an AdamW preset, a shuffled DataLoader over ``delta_timestamps`` windows)
on the exported dataset for M minutes of training wall clock; writes DIR/lerobot.json (samples/s,
the data-loading share, seconds per chunk at batch 1) and the trained policy. ``serve``: loads it
and answers one JSON line per step on stdin ({"reset": n} or {"state": [[...]], "env": [[...]]})
with the actions of ``select_action`` (LeRobot's own queues), so protege's runner can evaluate it
on the same seeds. Imports nothing from protege.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.datasets.utils import dataset_to_policy_features
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
from lerobot.policies.factory import make_pre_post_processors

REPO_ID = "protege/pusht-export"


def build(root: Path) -> tuple[DiffusionPolicy, object, object, LeRobotDataset]:
    meta = LeRobotDatasetMetadata(REPO_ID, root=root)
    features = dataset_to_policy_features(meta.features)
    outputs = {k: f for k, f in features.items() if f.type is FeatureType.ACTION}
    inputs = {k: f for k, f in features.items() if k not in outputs}
    config = DiffusionConfig(input_features=inputs, output_features=outputs, device="cpu")
    policy = DiffusionPolicy(config)
    pre, post = make_pre_post_processors(config, dataset_stats=meta.stats)
    frames = {key: [i / meta.fps for i in config.observation_delta_indices] for key in inputs}
    frames["action"] = [i / meta.fps for i in config.action_delta_indices]
    dataset = LeRobotDataset(REPO_ID, root=root, delta_timestamps=frames)
    return policy, pre, post, dataset


def train(args: argparse.Namespace) -> None:
    policy, pre, post, dataset = build(args.root)
    policy.train()
    optimizer = policy.config.get_optimizer_preset().build(policy.parameters())
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True)
    data_s, update_s, steps = 0.0, 0.0, 0
    deadline = time.perf_counter() + 60 * args.minutes
    while time.perf_counter() < deadline:
        batches = iter(loader)
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                break
            batch = pre(batch)
            t1 = time.perf_counter()
            loss, _ = policy.forward(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            t2 = time.perf_counter()
            data_s, update_s, steps = data_s + t1 - t0, update_s + t2 - t1, steps + 1
    policy.eval()
    sample = pre({k: v[:1] for k, v in next(iter(loader)).items() if k != "action" and torch.is_tensor(v)})
    sample = {k: v for k, v in sample.items() if k in policy.config.input_features}
    chunk_s = []
    with torch.inference_mode():
        for _ in range(args.chunk_repeats):
            t0 = time.perf_counter()
            policy.diffusion.generate_actions(sample)
            chunk_s.append(time.perf_counter() - t0)
    args.out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(args.out / "policy")
    pre.save_pretrained(args.out / "policy")
    post.save_pretrained(args.out / "policy")
    result = {
        "steps": steps,
        "batch_size": args.batch_size,
        "train_wall_s": data_s + update_s,
        "samples_per_s": steps * args.batch_size / max(data_s + update_s, 1e-9),
        "data_loading_share": data_s / max(data_s + update_s, 1e-9),
        "s_per_chunk_batch1": statistics.median(chunk_s),
        "parameters": sum(p.numel() for p in policy.parameters()),
        "num_inference_steps": policy.config.num_inference_steps or policy.config.num_train_timesteps,
        "torch_threads": torch.get_num_threads(),
    }
    (args.out / "lerobot.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


def serve(args: argparse.Namespace) -> None:
    policy = DiffusionPolicy.from_pretrained(args.out / "policy")
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(args.out / "policy"))
    policy.eval()
    for line in sys.stdin:
        request = json.loads(line)
        if "reset" in request:
            policy.reset()
            torch.manual_seed(int(request["reset"]))
            print(json.dumps({"ok": True}), flush=True)
            continue
        obs = {
            "observation.state": torch.tensor(request["state"], dtype=torch.float32),
            "observation.environment_state": torch.tensor(request["env"], dtype=torch.float32),
        }
        with torch.inference_mode():
            action = post(policy.select_action(pre(obs)))
        print(json.dumps({"action": action.tolist()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("train", "serve"))
    parser.add_argument("--root", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-repeats", type=int, default=3)
    args = parser.parse_args()
    train(args) if args.mode == "train" else serve(args)


if __name__ == "__main__":
    main()
