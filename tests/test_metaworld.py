"""Meta-World specifics: seeded placements, MT10 registered, upright pixel frames."""

import numpy as np
import pytest

pytest.importorskip("metaworld")

from protege.tasks import TASKS, make_task  # noqa: E402
from protege.tasks.metaworld import MT10  # noqa: E402


def test_mt10_is_registered():
    assert {f"metaworld/{name}" for name in MT10} <= set(TASKS)
    assert len(MT10) == 10


def test_placements_follow_the_seed():
    task = make_task("metaworld/pick-place")
    env = task.make_env(3)
    first, _ = env.reset(seed=[5, 6, 5])
    again, _ = env.reset(seed=[5, 6, 5])
    env.close()
    state = first["observation.state"]
    np.testing.assert_array_equal(state, again["observation.state"])
    np.testing.assert_array_equal(state[0], state[2])
    assert not np.allclose(state[0, 36:], state[1, 36:])  # another seed, another goal


def test_pixel_frames_are_upright_and_not_blank():
    task = make_task("metaworld/push", pixels=True, image_size=96)
    env = task.make_env(2)
    obs, _ = env.reset(seed=[0, 1])
    env.close()
    image = obs["observation.image"]
    assert image.shape == (2, 96, 96, 3) and image.dtype == np.uint8
    pixels = image[0].astype(int)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # a scene, not a blank frame
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    wood = (r > g + 15) & (g > b + 5) & (r > 80) & (r < 220)  # the brown table top
    assert wood.sum() > 500
    assert np.nonzero(wood)[0].mean() > 55  # the table is in the lower part of the frame
