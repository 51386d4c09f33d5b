"""robomimic's side of benchmarks/interop.py; runs inside robomimic's own virtual environment.

    VENV/bin/python benchmarks/peers/interop_robomimic.py load --dataset FILE.hdf5
    VENV/bin/python benchmarks/peers/interop_robomimic.py train --dataset FILE.hdf5 --out DIR [--epochs 3] [--steps 30]
        [--standardize-obs]

``load``: robomimic 0.3.0's ``SequenceDataset`` on every observation key of the first demo (1-D
keys as ``low_dim``, 3-D as ``rgb``), one sample drawn; prints its length, keys and the action
range it serves. ``train``: robomimic's own ``scripts/train.py`` ``train()`` with a BC config
generated from ``config_factory("bc")`` (CPU, no rollouts, no checkpoints, no tensorboard) for a few
epochs of a few steps; prints every epoch's training log and, beside the last L1 loss, the L1 loss
of always predicting the dataset's mean action (robomimic's ``SmoothL1Loss``, in the file's
units): BC's tanh-squashed actor cannot do better than that when actions lie outside [-1, 1].
``--standardize-obs`` trains on a copy whose low-dim observations are z-scored (robomimic 0.3.0's
own ``hdf5_normalize_obs`` asserts in training), which separates the action range from the
observation scale: on raw PushT states (pixels) the default MLP saturates its tanh and does not
move in a few hundred steps, whatever the actions.
One JSON object on the last line of stdout; a failure is an exception (non-zero exit). Imports
nothing from protege.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
from pathlib import Path

import h5py
import numpy as np


def observation_specs(dataset: Path) -> dict[str, list[str]]:
    """Modality -> keys as robomimic names them, judged by each obs array's rank in the first demo."""
    with h5py.File(dataset, "r") as file:
        first = sorted(file["data"], key=lambda name: int(name.split("_")[-1]))[0]
        obs = file["data"][first]["obs"]
        low_dim = sorted(k for k in obs if obs[k].ndim <= 2)
        rgb = sorted(k for k in obs if obs[k].ndim == 4)
    return {"low_dim": low_dim, "rgb": rgb, "depth": [], "scan": []}


def all_actions(dataset: Path) -> np.ndarray:
    with h5py.File(dataset, "r") as file:
        return np.concatenate([file["data"][demo]["actions"][()] for demo in file["data"]])


def load(args: argparse.Namespace) -> dict:
    import robomimic.utils.obs_utils as ObsUtils
    from robomimic.utils.dataset import SequenceDataset

    specs = observation_specs(args.dataset)
    ObsUtils.initialize_obs_utils_with_obs_specs({"obs": specs})
    keys = specs["low_dim"] + specs["rgb"]
    dataset = SequenceDataset(
        hdf5_path=str(args.dataset),
        obs_keys=keys,
        dataset_keys=("actions", "rewards", "dones"),
        seq_length=1,
        hdf5_cache_mode="all",
        hdf5_use_swmr=True,
    )
    sample = dataset[0]
    actions = all_actions(args.dataset)
    return {
        "samples": len(dataset),
        "demos": len(dataset.demos),
        "obs_keys": {k: list(v.shape) for k, v in sample["obs"].items()},
        "action_shape": list(sample["actions"].shape),
        "action_min": float(actions.min()),
        "action_max": float(actions.max()),
    }


def bc_config(dataset: Path, out: Path, epochs: int, steps: int, batch_size: int):
    from robomimic.config import config_factory

    config = config_factory("bc")
    with config.values_unlocked():
        config.experiment.name = "interop-bc"
        config.experiment.validate = False
        config.experiment.rollout.enabled = False
        config.experiment.render_video = False
        config.experiment.save.enabled = False
        config.experiment.logging.log_tb = False
        config.experiment.logging.terminal_output_to_txt = False
        config.experiment.epoch_every_n_steps = steps
        config.train.data = str(dataset)
        config.train.output_dir = str(out)
        config.train.num_epochs = epochs
        config.train.batch_size = batch_size
        config.train.cuda = False
        config.train.seed = 0
        specs = observation_specs(dataset)
        config.observation.modalities.obs.low_dim = specs["low_dim"]
        config.observation.modalities.obs.rgb = specs["rgb"]
    return config


def mean_action_l1(dataset: Path) -> float:
    """SmoothL1 loss of always predicting the mean action: the floor a fit must beat."""
    import torch

    actions = torch.as_tensor(all_actions(dataset), dtype=torch.float32)
    return float(torch.nn.SmoothL1Loss()(actions.mean(0).expand_as(actions), actions))


def standardized_copy(dataset: Path, out: Path) -> Path:
    """A copy with every low-dim observation z-scored over the file: robomimic 0.3.0's own
    ``hdf5_normalize_obs`` fails in training ("shape mismatch in @normalize obs" for any batch > 1).
    """
    copy = out.with_name(out.name + "-standardized.hdf5")
    shutil.copyfile(dataset, copy)
    with h5py.File(copy, "r+") as file:
        demos = [file["data"][name] for name in file["data"]]
        for key in observation_specs(copy)["low_dim"]:
            values = np.concatenate([demo["obs"][key][()] for demo in demos])
            mean, std = values.mean(0), values.std(0) + 1e-6
            for demo in demos:
                for group in ("obs", "next_obs"):
                    if group in demo and key in demo[group]:
                        demo[group][key][...] = (demo[group][key][()] - mean) / std
    return copy


def train(args: argparse.Namespace) -> dict:
    import robomimic.scripts.train as train_script
    import robomimic.utils.train_utils as TrainUtils
    import torch

    logs: list[dict] = []
    run_epoch = TrainUtils.run_epoch

    def recording_run_epoch(*a, **k):
        log = run_epoch(*a, **k)
        logs.append({key: float(v) for key, v in log.items() if isinstance(v, int | float)})
        return log

    TrainUtils.run_epoch = recording_run_epoch
    shutil.rmtree(args.out, ignore_errors=True)  # robomimic asks on stdin before reusing a run folder
    args.out.parent.mkdir(parents=True, exist_ok=True)
    dataset = standardized_copy(args.dataset, args.out) if args.standardize_obs else args.dataset
    config = bc_config(dataset, args.out, args.epochs, args.steps, args.batch_size)
    config.lock()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # robomimic prints the whole config and model
        train_script.train(config, device=torch.device("cpu"))
    last = logs[-1]
    return {
        "epochs": len(logs),
        "steps_per_epoch": args.steps,
        "loss": last.get("Loss"),
        "l1_loss": last.get("L1_Loss"),
        "first_l1_loss": logs[0].get("L1_Loss"),
        "mean_action_l1_loss": mean_action_l1(args.dataset),
        "standardized_obs": args.standardize_obs,
        "epoch_logs": logs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("load", "train"))
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("/tmp/interop-robomimic"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="gradient steps per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--standardize-obs", action="store_true", help="train on a copy with z-scored observations")
    args = parser.parse_args()
    torch_threads()
    result = load(args) if args.mode == "load" else train(args)
    print(json.dumps(result))


def torch_threads() -> None:
    import torch

    torch.set_num_threads(1)


if __name__ == "__main__":
    main()
