"""Rollout videos: which episodes to show, their file names, WebM encoding and the manifest.

A video is one episode's pictures, the reset scene then one per step (length + 1 frames), at the
task's control rate (real time), encoded as WebM VP9 in yuv420p: what an HTML ``<video>`` element
plays in Chromium and Firefox without plug-ins. Pictures are small (<= 128 px) and the encoder runs
at its real-time setting, so a video takes milliseconds. Every file is written beside its
destination and renamed into place (protege.atomic).

The manifest ``videos.json`` lists, per video: the policy label, task, seed, success in the
evaluation and in the replay (and whether they agree), length, number of frames, file (relative
to the manifest's folder), width, height and fps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from protege.atomic import atomic_file, write_json_atomic

MANIFEST = "videos.json"
CODEC = "libvpx-vp9"
#: Real-time VP9 (no look-ahead, fastest speed step) at a constant quality: crisp enough for flat
#: drawings and simulator frames at <= 128 px, a few kB per second.
ENCODER_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "lag-in-frames": "0"}


def pick_seeds(seeds: np.ndarray, success: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` successful and the first ``n`` failed episodes' seeds, in seed-list order."""
    success = np.asarray(success, dtype=bool)
    chosen = np.concatenate([np.flatnonzero(success)[:n], np.flatnonzero(~success)[:n]])
    return np.asarray(seeds)[np.sort(chosen)]


def file_stem(label: str, taken: set[str]) -> str:
    """A file-name-safe form of a policy label (runs of other characters become "_"), numbered when
    two labels come out the same so that no policy's videos overwrite another's."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "policy"
    unique, number = stem, 1
    while unique in taken:
        number += 1
        unique = f"{stem}_{number}"
    taken.add(unique)
    return unique


def video_name(stem: str, seed: int, success: bool) -> str:
    """``<stem>-seed<seed>-<success|failure>.webm``: the outcome the video shows."""
    return f"{stem}-seed{seed}-{'success' if success else 'failure'}.webm"


def even(frames: np.ndarray) -> np.ndarray:
    """Frames cropped to even width and height (yuv420p halves both for its colour planes)."""
    height, width = frames.shape[1:3]
    return frames[:, : height - height % 2, : width - width % 2]


def write_webm(path: Path, frames: np.ndarray, fps: int) -> tuple[int, int]:
    """Encode (T, H, W, 3) uint8 RGB ``frames`` to a WebM VP9 file shown at ``fps``; its (width, height)."""
    frames = even(np.asarray(frames, dtype=np.uint8))
    height, width = frames.shape[1:3]
    with atomic_file(path) as tmp, av.open(str(tmp), "w", format="webm") as container:
        stream = container.add_stream(CODEC, rate=fps, options=ENCODER_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = 1  # small frames: threads cost more than they save, and the machine is shared
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return width, height


def write_manifest(folder: Path, entries: Sequence[dict]) -> Path:
    """Write ``folder/videos.json`` (file names relative to ``folder``); its path."""
    path = folder / MANIFEST
    write_json_atomic(path, {"frames": "the reset scene, then one per step: length + 1", "videos": list(entries)})
    return path
