"""Minari's side of benchmarks/interop.py; runs inside Minari's own virtual environment.

    VENV/bin/python benchmarks/peers/interop_minari.py describe --root DATASETS_ROOT --id NAMESPACE/NAME-vN

Loads the dataset with Minari 0.5.4's own ``minari.load_dataset`` (``MINARI_DATASETS_PATH`` set to
``--root``) and prints one JSON object: the environment spec (as Minari serializes it), both spaces
(``minari.serialization.serialize_space``), episode and step counts, the keys of the first
episode's observations, and whether ``recover_environment()`` makes an environment that resets
(Gymnasium-Robotics' environments registered first). Each part catches its own error, so one
failure never hides the others. Imports nothing from protege.
"""

from __future__ import annotations

import argparse
import json
import os
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


def first_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return text.splitlines()[0][:300]


def attempt(function: Callable[[], Any]) -> dict:
    """{"ok": True, "value": ...} or {"ok": False, "error": first line of the exception}."""
    try:
        return {"ok": True, "value": function()}
    except Exception as error:  # noqa: BLE001 - every failure is a result here
        traceback.print_exc()
        return {"ok": False, "error": first_line(error)}


def spec_json(dataset) -> str | None:
    spec = dataset.env_spec
    return None if spec is None else spec.to_json()


def observation_keys(dataset) -> list[str] | str:
    episode = next(dataset.iterate_episodes())
    observations = episode.observations
    if isinstance(observations, dict):
        return sorted(observations)
    return f"array {list(observations.shape)}"


def recover(dataset) -> str:
    import gymnasium as gym

    try:
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
    except ImportError:
        pass
    env = dataset.recover_environment()
    env.reset(seed=0)
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    env.close()
    return name


def describe(root: Path, dataset_id: str) -> dict:
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    import minari
    from minari.serialization import serialize_space

    loaded = attempt(lambda: minari.load_dataset(dataset_id))
    result: dict = {"load": {k: v for k, v in loaded.items() if k != "value"}}
    if not loaded["ok"]:
        return result
    dataset = loaded["value"]
    result["load"]["value"] = f"{dataset.total_episodes} episodes, {dataset.total_steps} steps"
    result["env_spec"] = attempt(lambda: spec_json(dataset))
    result["observation_space"] = attempt(lambda: serialize_space(dataset.observation_space))
    result["action_space"] = attempt(lambda: serialize_space(dataset.action_space))
    result["observation_keys"] = attempt(lambda: observation_keys(dataset))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result["recover_environment"] = attempt(lambda: recover(dataset))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("describe",))
    parser.add_argument("--root", type=Path, required=True, help="the MINARI_DATASETS_PATH the dataset is under")
    parser.add_argument("--id", required=True, help="dataset id, e.g. fetch/pickplace/expert-v0")
    args = parser.parse_args()
    print(json.dumps(describe(args.root, args.id)))


if __name__ == "__main__":
    main()
