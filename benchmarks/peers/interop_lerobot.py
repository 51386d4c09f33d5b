"""LeRobot's side of benchmarks/interop.py; runs inside LeRobot's own virtual environment.

    VENV/bin/python benchmarks/peers/interop_lerobot.py describe --root DATASET
    VENV/bin/python benchmarks/peers/interop_lerobot.py delete --root DATASET --out DIR --episodes 0
    VENV/bin/python benchmarks/peers/interop_lerobot.py split --root DATASET --out DIR
    VENV/bin/python benchmarks/peers/interop_lerobot.py multitask --out DIR
    VENV/bin/python benchmarks/peers/interop_lerobot.py write-video --out DIR
    VENV/bin/python benchmarks/peers/interop_lerobot.py compare-video --root DATASET --other DATASET

``describe``: LeRobot 0.4.4's ``LeRobotDataset(repo_id, root=...)`` on a folder; prints its
features (dtype, shape), ``camera_keys`` and ``video_keys``, and for every camera (and every
feature of rank 3) what ``dataset[i]`` returns: dtype, shape, min and max. ``delete`` and
``split``: LeRobot's own dataset tools (``lerobot.datasets.dataset_tools.delete_episodes`` and
``split_dataset``) write a new dataset; prints which columns the new ``meta/episodes`` keeps.
``multitask``: ``LeRobotDataset.create`` + ``add_frame`` write 2 episodes of task 'reach' and 2
of 'push' (a few frames each). ``write-video``: LeRobot encodes 2 episodes of sharp 64x64
pictures (colour ramps, a moving red square) as a video feature (``use_videos=True``).
``compare-video``: decodes every frame of every video key of two datasets with LeRobot's own
decoder and prints the mean absolute error (0..255) overall and of the worst frame. One JSON
object on the last line of stdout; a failure is an exception (non-zero exit). Imports nothing from protege.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

REGENERATE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "regenerate.py"

REPO_ID = "protege/interop"


def open_dataset(root: Path) -> LeRobotDataset:
    return LeRobotDataset(REPO_ID, root=root)


def value_summary(value) -> dict:
    if not torch.is_tensor(value):
        return {"type": type(value).__name__}
    as_float = value.float()
    return {
        "dtype": str(value.dtype).removeprefix("torch."),
        "shape": list(value.shape),
        "min": float(as_float.min()),
        "max": float(as_float.max()),
    }


def describe(args: argparse.Namespace) -> dict:
    dataset = open_dataset(args.root)
    meta = dataset.meta
    item = dataset[min(3, len(dataset) - 1)]
    pictures = set(meta.camera_keys) | {k for k, f in meta.features.items() if len(f["shape"]) == 3}
    return {
        "episodes": meta.total_episodes,
        "frames": meta.total_frames,
        "tasks": sorted(meta.tasks.index) if meta.tasks is not None else [],
        "features": {k: {"dtype": f["dtype"], "shape": list(f["shape"])} for k, f in meta.features.items()},
        "camera_keys": list(meta.camera_keys),
        "video_keys": list(meta.video_keys),
        "samples": {k: value_summary(item[k]) for k in sorted(pictures) if k in item},
    }


def episode_columns(root: Path) -> list[str]:
    """Columns of meta/episodes that are not LeRobot's own (stats/, data/, videos/, meta/ and the basics)."""
    frames = [pd.read_parquet(path) for path in sorted((root / "meta" / "episodes").rglob("*.parquet"))]
    own = ("stats/", "data/", "videos/", "meta/")
    basics = {"episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index"}
    return sorted(c for c in pd.concat(frames).columns if not c.startswith(own) and c not in basics)


def delete(args: argparse.Namespace) -> dict:
    from lerobot.datasets.dataset_tools import delete_episodes

    shutil.rmtree(args.out, ignore_errors=True)
    source = open_dataset(args.root)
    result = delete_episodes(source, episode_indices=args.episodes, output_dir=args.out, repo_id=f"{REPO_ID}-deleted")
    return {
        "episodes": result.meta.total_episodes,
        "source_columns": episode_columns(args.root),
        "columns": episode_columns(args.out),
    }


def split(args: argparse.Namespace) -> dict:
    from lerobot.datasets.dataset_tools import split_dataset

    shutil.rmtree(args.out, ignore_errors=True)
    source = open_dataset(args.root)
    episodes = list(range(source.meta.total_episodes))
    cut = max(1, len(episodes) * 3 // 5)
    parts = split_dataset(source, splits={"train": episodes[:cut], "val": episodes[cut:]}, output_dir=args.out)
    return {
        "splits": {name: part.meta.total_episodes for name, part in parts.items()},
        "source_columns": episode_columns(args.root),
        "columns": episode_columns(args.out / "train"),
    }


def multitask(args: argparse.Namespace) -> dict:
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    features = {
        "observation.state": {"dtype": "float32", "shape": (4,), "names": None},
        "action": {"dtype": "float32", "shape": (2,), "names": None},
    }
    dataset = LeRobotDataset.create(
        repo_id=f"{REPO_ID}-multitask", fps=10, features=features, root=args.out, use_videos=False
    )
    rng = np.random.default_rng(0)
    for task in ("reach", "push", "reach", "push"):
        for _ in range(6):
            dataset.add_frame(
                {
                    "observation.state": rng.standard_normal(4).astype(np.float32),
                    "action": rng.uniform(-1, 1, 2).astype(np.float32),
                    "task": task,
                }
            )
        dataset.save_episode()
    dataset.finalize()
    return {"episodes": dataset.meta.total_episodes, "tasks": sorted(dataset.meta.tasks.index)}


def sharp_picture(episode: int, frame: int) -> np.ndarray:
    """The image-reward-v3 fixture's 64x64 pictures (sharp edges, a moving square), from its generator."""
    spec = importlib.util.spec_from_file_location("regenerate", REGENERATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.gradient_picture(episode, frame)


def write_video(args: argparse.Namespace) -> dict:
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    features = {
        "observation.state": {"dtype": "float32", "shape": (2,), "names": None},
        "observation.images.cam": {"dtype": "video", "shape": (64, 64, 3), "names": ["height", "width", "channels"]},
        "action": {"dtype": "float32", "shape": (2,), "names": None},
    }
    dataset = LeRobotDataset.create(
        repo_id=f"{REPO_ID}-video", fps=10, features=features, root=args.out, use_videos=True
    )
    for episode, length in enumerate((20, 16)):
        for frame in range(length):
            state = np.array([episode, frame], np.float32)
            dataset.add_frame(
                {
                    "observation.state": state,
                    "observation.images.cam": sharp_picture(episode, frame),
                    "action": state,
                    "task": "watch",
                }
            )
        dataset.save_episode()
    dataset.finalize()
    return {"episodes": dataset.meta.total_episodes, "video_keys": list(dataset.meta.video_keys)}


def frames_of(dataset: LeRobotDataset, key: str) -> np.ndarray:
    """Every frame of a video key as uint8-scale floats (frames, C, H, W), through LeRobot's decoder."""
    return np.stack([dataset[i][key].numpy() for i in range(len(dataset))]) * 255.0


def compare_video(args: argparse.Namespace) -> dict:
    first, second = open_dataset(args.root), open_dataset(args.other)
    result: dict = {"video_keys": list(first.meta.video_keys), "other_video_keys": list(second.meta.video_keys)}
    for key in first.meta.video_keys:
        if key not in second.meta.video_keys:
            result[key] = {"missing": True}
            continue
        error = np.abs(frames_of(first, key) - frames_of(second, key))
        result[key] = {"mae": float(error.mean()), "worst_frame_mae": float(error.mean(axis=(1, 2, 3)).max())}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("describe", "delete", "split", "multitask", "write-video", "compare-video"))
    parser.add_argument("--root", type=Path)
    parser.add_argument("--other", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--episodes", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    modes = {
        "describe": describe,
        "delete": delete,
        "split": split,
        "multitask": multitask,
        "write-video": write_video,
        "compare-video": compare_video,
    }
    print(json.dumps(modes[args.mode](args)))


if __name__ == "__main__":
    main()
