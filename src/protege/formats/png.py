"""LeRobot ``image`` features: one PNG per frame, in a parquet column of ``{bytes, path}`` structs.

This is how LeRobot (through Hugging Face ``datasets``' Image feature) keeps camera frames when it
records without video. Unlike uint8 arrays in the parquet, LeRobot treats such a feature as a
camera (``camera_keys``, frames as float CHW in [0, 1]); unlike MP4 it is lossless, so protege
writes ``collect --pixels`` data this way. Pillow encodes and decodes (it is what ``datasets``
uses); compression level 1: on PushT's 96x96 frames level 6 (Pillow's default) encoded 1.4-1.6x
slower (about 2,000 against 3,000 frames/s on one core) for files 13% smaller (1,175 against 1,347
bytes a frame, raw 27,648), and decoding (3,000-5,700 frames/s) did not differ beyond noise.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pyarrow as pa
from PIL import Image

from protege.data.store import DatasetError

#: The parquet type of an image column, as ``datasets`` writes it.
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
COMPRESS_LEVEL = 1
EIGHT_BIT_MODES = ("RGB", "RGBA", "L", "LA", "P")  # converted to RGB as they are (alpha dropped)


def encode_images(frames: np.ndarray, label: Callable[[int], str]) -> pa.Array:
    """(N, H, W, 3) uint8 frames as a column of PNG structs; ``label(row)`` names the frame in errors."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise DatasetError(f"{label(0)}: images must be (N, H, W, 3) uint8, got {frames.dtype} {frames.shape}")
    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG", compress_level=COMPRESS_LEVEL)
        encoded.append(buffer.getvalue())
    return pa.StructArray.from_arrays(
        [pa.array(encoded, pa.binary()), pa.nulls(len(encoded), pa.string())], fields=list(IMAGE_TYPE)
    )


def decode_images(
    column: pa.ChunkedArray | pa.Array, shape: tuple[int, int, int], label: Callable[[int], str]
) -> np.ndarray:
    """(N, H, W, 3) uint8 frames from a column of PNG structs; a frame without embedded bytes (a
    ``path`` to a file outside the dataset), of another size or not decodable is an error naming it."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_struct(column.type) or column.type.get_field_index("bytes") < 0:
        raise DatasetError(f"{label(0)}: an image column must hold {{bytes, path}} structs, got {column.type}")
    images = np.empty((len(column), *shape), dtype=np.uint8)
    for row, data in enumerate(column.field("bytes").to_pylist()):
        if data is None:
            raise DatasetError(
                f"{label(row)}: the image has no embedded bytes (a path outside the dataset is not read)"
            )
        try:
            with Image.open(io.BytesIO(data)) as image:
                mode = image.mode
                frame = np.asarray(image.convert("RGB")) if mode in EIGHT_BIT_MODES else None
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise DatasetError(f"{label(row)}: not a readable image ({error})") from error
        if frame is None:  # convert("RGB") would clip 16-bit and float pixels
            raise DatasetError(f"{label(row)}: a {mode} image; protege reads 8-bit images")
        if frame.shape != shape:
            raise DatasetError(f"{label(row)}: the image is {list(frame.shape)}, the feature says {list(shape)}")
        images[row] = frame
    return images
