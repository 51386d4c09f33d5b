"""MP4 camera streams for LeRobot video features, through PyAV: append frames, decode time ranges.

LeRobot keeps each camera's frames in MP4 files holding many episodes back to back; an episode's
frames are those shown in [from_timestamp, to_timestamp) seconds. Writing gives frame i of a file
the time i / fps. Reading seeks to the keyframe before a range, decodes up to its end and places
every frame by its own time stamp (pts * time_base), so a dropped or duplicated frame is an error
instead of a silent shift of every later frame.

Encoding, as LeRobot 0.4.4 does: AV1 (libsvtav1) in yuv420p with a keyframe every 2 frames (cheap
random access for training loaders), but at crf 20 rather than LeRobot's 30, and preset 10 (faster
than the default 8 at the same error); H.264 (libx264) where the PyAV build lacks SVT-AV1. The loss
is mostly yuv420p's half-resolution colour, not the codec; sharp colour edges lose most and random
noise far more: video is for camera images, not for arrays. The measured round-trip errors are in
docs/formats.md#video; the tests hold one encode of the fixture's pictures to <= 1.0 mean absolute
error (0..255) over all frames and <= 2.0 per frame.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

PIX_FMT = "yuv420p"
#: Encoders in order of preference, with their settings (keyframe every 2 frames, as LeRobot).
ENCODERS: dict[str, dict[str, str]] = {
    "libsvtav1": {"crf": "20", "g": "2", "preset": "10"},
    "libx264": {"crf": "18", "g": "2"},
}


class VideoError(Exception):
    """A video cannot be written or read as expected; the message names the file and the frames."""


def pick_encoder() -> str:
    """The first of ``ENCODERS`` this PyAV build ships."""
    for name in ENCODERS:
        if name in av.codecs_available:
            return name
    raise VideoError(f"this PyAV build has none of the encoders {list(ENCODERS)}")


def codec_name(encoder: str) -> str:
    """The codec an encoder writes ("av1", "h264"), as LeRobot records it in ``video.codec``."""
    return av.codec.Codec(encoder, "w").canonical_name


@dataclass(frozen=True)
class Segment:
    """The ``count`` frames of ``path`` shown in [start_s, end_s); ``label`` names them in errors."""

    path: Path
    start_s: float
    end_s: float
    count: int
    label: str


def encode_segments(
    path: Path, frames: np.ndarray, ends: np.ndarray, fps: int, encoder: str, done: Callable[[], object] = lambda: None
) -> None:
    """Write (N, H, W, 3) uint8 ``frames`` to one MP4, segment by segment (rows up to each of ``ends``)."""
    with VideoWriter(path, *frames.shape[1:3], fps, encoder) as writer:
        for start, end in zip([0, *ends[:-1]], ends):
            writer.write(frames[start:end])
            done()


def decode_segments(
    segments: Sequence[Segment], shape: tuple[int, int, int], fps: int, done: Callable[[], object] = lambda: None
) -> np.ndarray:
    """(total count, H, W, 3) uint8 frames of ``segments`` in order; one open file per run of segments."""
    frames = np.empty((sum(segment.count for segment in segments), *shape), dtype=np.uint8)
    start = 0
    for path, run in itertools.groupby(segments, key=lambda segment: segment.path):
        run = list(run)
        with _blame(run[0]):
            reader = VideoReader(path)
        with reader:
            for segment in run:
                with _blame(segment):
                    decoded = reader.frames(segment.start_s, segment.end_s, segment.count, fps)
                    if decoded.shape[1:] != tuple(shape):
                        raise VideoError(f"frames are {decoded.shape[1:]}, expected {tuple(shape)}")
                frames[start : start + segment.count] = decoded
                start += segment.count
                done()
    return frames


@contextlib.contextmanager
def _blame(segment: Segment) -> Iterator[None]:
    try:
        yield
    except VideoError as error:
        raise VideoError(f"{segment.path}: {segment.label}: {error}") from error


class VideoWriter:
    """Appends (k, H, W, 3) uint8 RGB frames to one MP4; frame i of the file is shown at i / fps s."""

    def __init__(self, path: Path, height: int, width: int, fps: int, encoder: str) -> None:
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration to stderr otherwise
        path.parent.mkdir(parents=True, exist_ok=True)
        self._time_base = Fraction(1, fps)
        self._count = 0
        self._container = av.open(str(path), "w")
        try:
            self._stream = self._container.add_stream(encoder, rate=fps, options=ENCODERS[encoder])
            self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, PIX_FMT
        except (av.FFmpegError, ValueError) as error:
            self._container.close()
            raise VideoError(f"cannot set up {encoder} for {width}x{height} frames at {fps} fps ({error})") from error

    def write(self, frames: np.ndarray) -> None:
        try:
            for image in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts, frame.time_base = self._count, self._time_base
                self._container.mux(self._stream.encode(frame))
                self._count += 1
        except (av.FFmpegError, ValueError) as error:
            raise VideoError(
                f"cannot encode {frames.shape[2]}x{frames.shape[1]} frames "
                f"with {self._stream.codec_context.name} ({error})"
            ) from error

    def close(self) -> None:
        """Flush the encoder and finish the file (an unflushed MP4 has no index and cannot be read)."""
        try:
            self._container.mux(self._stream.encode(None))
        except av.FFmpegError as error:
            raise VideoError(f"cannot finish the video ({error})") from error
        finally:
            self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, error_type: type | None, *exc: object) -> None:
        if error_type is None:
            self.close()
            return
        with contextlib.suppress(av.FFmpegError, ValueError):  # the first error is the one to report
            self._container.close()


class VideoReader:
    """Decodes time ranges of one MP4's first video stream into RGB frames."""

    def __init__(self, path: Path) -> None:
        try:
            self._container = av.open(str(path))
        except (av.FFmpegError, OSError) as error:
            raise VideoError(f"cannot open the video, it may be missing, truncated or corrupt ({error})") from error
        if not self._container.streams.video:
            self._container.close()
            raise VideoError("the file has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"

    def frames(self, start_s: float, end_s: float, count: int, fps: int) -> np.ndarray:
        """The ``count`` frames shown in [start_s, end_s), as (count, H, W, 3) uint8.

        Frame k must be shown at start_s + k / fps (half a frame of slack); anything else, a
        missing, extra or misplaced frame, raises VideoError saying what was found.
        """
        half_frame, time_base = 0.5 / fps, float(self._stream.time_base)
        images, times = [], []
        try:
            self._container.seek(max(0, int((start_s - half_frame) / time_base)), stream=self._stream)
            for frame in self._container.decode(self._stream):
                if frame.pts is None:
                    raise VideoError(f"a frame after {times[-1] if times else start_s:.3f} s has no time stamp")
                shown = frame.pts * time_base
                if shown >= end_s - half_frame:
                    break
                if shown >= start_s - half_frame:
                    images.append(frame.to_ndarray(format="rgb24"))
                    times.append(shown)
        except av.FFmpegError as error:
            raise VideoError(
                f"cannot decode [{start_s:.3f}, {end_s:.3f}) s, the file may be truncated or corrupt ({error})"
            ) from error
        offsets = np.rint((np.asarray(times) - start_s) * fps).astype(np.int64)
        if len(offsets) != count or (offsets != np.arange(count)).any():
            found = f"{len(times)} frames" + (f" at {times[0]:.3f}..{times[-1]:.3f} s" if times else "")
            raise VideoError(
                f"expected {count} frames at {start_s:.3f} s + k/{fps} s before {end_s:.3f} s, decoded {found}"
            )
        return np.stack(images) if images else np.zeros((0, self._stream.height, self._stream.width, 3), np.uint8)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
