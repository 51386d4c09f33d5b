"""Fetch specifics (the task contract is in test_tasks.py): upright pixels."""

import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")

from protege.tasks.fetch import TASKS  # noqa: E402
from protege.tasks.sim import IMAGE  # noqa: E402


def test_pixels_are_upright_frames_of_the_table():
    task = TASKS["fetch/push"](pixels=True)
    env = task.make_env(2)
    try:
        obs, _ = env.reset(seed=[0, 1])
        image = obs[IMAGE]
        assert image.shape == (2, 96, 96, 3) and image.dtype == np.uint8
        assert not np.array_equal(image[0], image[1])  # each env renders its own scene
        pixels = image.astype(int)
        background = (pixels[..., 1] - pixels[..., 0] > 60) & (pixels[..., 1] - pixels[..., 2] > 40)  # green sky
        grey = np.ptp(pixels, axis=-1) < 10  # table and floor
        assert (background[:, :10].mean() > 0.8) and (grey[:, -10:].mean() > 0.5)  # sky on top, table below
        assert (pixels.std(axis=(1, 2, 3)) > 20).all()
    finally:
        env.close()
