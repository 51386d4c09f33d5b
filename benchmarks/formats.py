"""Dataset conversion speed and peak memory, every format side by side in one run; prints JSON.

    python benchmarks/formats.py [--frames 100000] [--episodes 500] [--video-frames 100000] [--out FILE]

A synthetic dataset (32-d state, 7-d action, reward; episodes of equal length) is written as a
protege folder. Each conversion then runs in a fresh process, so its peak resident memory
(VmHWM) is its own: export (protege folder -> format) and import (format -> protege folder)
for every writable format, import of a diffusion_policy zarr, and for a dataset with a 48x64 video
camera: writing it (MP4 encode), a state-only read (must not decode) and a full read (decode).
Frames/s counts dataset frames per second of wall time, reading and writing included; peak memory
is the child's VmHWM (ru_maxrss would carry the parent's peak across exec).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from protege.data.store import EpisodeStore
from protege.formats import read_dataset, write_dataset
from protege.machine import machine

IMAGE_KEY = "observation.images.front"


def synthetic(frames: int, episodes: int, image: bool = False) -> EpisodeStore:
    """A smooth random-walk dataset; with ``image``, a moving block on a coloured background."""
    rng = np.random.default_rng(0)
    state = np.cumsum(rng.normal(scale=0.05, size=(frames, 32)), axis=0).astype(np.float32)
    obs = {"observation.state": state}
    if image:
        t = np.arange(frames)
        pictures = np.zeros((frames, 48, 64, 3), dtype=np.uint8)
        pictures[..., 0] = (t % 200)[:, None, None]
        columns = (t * 7) % 56
        pictures[np.arange(frames)[:, None], 20:28, columns[:, None] + np.arange(8)[None, :], 1] = (
            255  # a moving green block
        )
        obs[IMAGE_KEY] = pictures
    ends = np.linspace(0, frames, episodes + 1).astype(np.int64)[1:]
    return EpisodeStore(
        obs=obs,
        action=rng.uniform(-1, 1, size=(frames, 7)).astype(np.float32),
        episode_ends=ends,
        reward=rng.random(frames).astype(np.float32),
        task="synthetic",
    )


def write_zarr_replay(store: EpisodeStore, path: Path) -> None:
    """diffusion_policy's ReplayBuffer layout (zarr format 2): data/<key>, meta/episode_ends."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_group("data")
    root["data/state"] = store.obs["observation.state"]
    root["data/action"] = store.action
    root.create_group("meta")
    root["meta/episode_ends"] = store.episode_ends


def child(job: dict) -> dict:
    """One conversion in this process: time it and report this process's peak memory."""
    start = time.perf_counter()
    store = read_dataset(job["source"], job["from"], images=job.get("images", True))
    if job.get("to"):
        write_dataset(store, job["dest"], job["to"], overwrite=True)
    seconds = time.perf_counter() - start
    return {
        "frames": store.num_frames,
        "seconds": round(seconds, 3),
        "frames_per_s": round(store.num_frames / seconds),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> int:
    """This process's peak resident memory since it was exec'd (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def run_child(job: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True, check=False
    )
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--video-frames", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    results: dict = {
        "machine": machine(),
        "frames": args.frames,
        "episodes": args.episodes,
        "video_frames": args.video_frames,
        "conversions": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset(synthetic(args.frames, args.episodes), root / "state", video=False)
        targets = {
            "lerobot": root / "lerobot",
            "robomimic": root / "demo.hdf5",
            "minari": root / "minari" / "synthetic" / "state-v0",
        }
        for name, dest in targets.items():
            results["conversions"][f"export {name}"] = run_child(
                {"source": str(root / "state"), "from": "lerobot", "to": name, "dest": str(dest)}
            )
            results["conversions"][f"import {name}"] = run_child(
                {"source": str(dest), "from": name, "to": "lerobot", "dest": str(root / f"back-{name}")}
            )
        write_zarr_replay(read_dataset(root / "state"), root / "replay.zarr")
        results["conversions"]["import zarr"] = run_child(
            {"source": str(root / "replay.zarr"), "from": "zarr", "to": "lerobot", "dest": str(root / "back-zarr")}
        )
        if args.video_frames:
            write_dataset(
                synthetic(args.video_frames, args.episodes, image=True), root / "inline-images", video=False
            )  # uint8 arrays in parquet
            results["conversions"]["write video (encode)"] = run_child(
                {"source": str(root / "inline-images"), "from": "lerobot", "to": "lerobot", "dest": str(root / "video")}
            )
            results["conversions"]["read video dataset, state only"] = run_child(
                {"source": str(root / "video"), "from": "lerobot", "images": False}
            )
            results["conversions"]["read video dataset, decoded"] = run_child(
                {"source": str(root / "video"), "from": "lerobot"}
            )
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
