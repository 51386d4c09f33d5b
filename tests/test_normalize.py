import numpy as np
import pytest
import torch

from protege.data.normalize import Normalizer


@pytest.mark.parametrize("mode", ["mean_std", "min_max"])
def test_round_trip_and_ranges(mode):
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(3.0, 5.0, size=(500, 4)).astype(np.float32)}
    data["x"][:, 2] = 7.0  # a constant dimension must not divide by zero
    norm = Normalizer({"x": (4,)}, {"x": mode})
    norm.fit(data)
    x = torch.as_tensor(data["x"])
    z = norm.normalize("x", x)
    assert torch.isfinite(z).all()
    torch.testing.assert_close(norm.unnormalize("x", z), x, atol=1e-4, rtol=1e-5)
    if mode == "min_max":
        assert z[:, [0, 1, 3]].min() >= -1 - 1e-5 and z[:, [0, 1, 3]].max() <= 1 + 1e-5
    else:
        torch.testing.assert_close(z[:, [0, 1, 3]].mean(0), torch.zeros(3), atol=1e-4, rtol=0)


def test_unknown_key_is_loud():
    norm = Normalizer({"x": (2,)}, {"x": "mean_std"})
    with pytest.raises(KeyError, match="no stats for 'y'"):
        norm.normalize("y", torch.zeros(1, 2))
    with pytest.raises(KeyError, match="data has no 'x'"):
        norm.fit({"y": np.zeros((3, 2))})


def test_stats_travel_in_the_state_dict_and_missing_stats_fail_to_load():
    norm = Normalizer({"observation.state": (3,)}, {"observation.state": "mean_std"})
    norm.fit({"observation.state": np.random.default_rng(1).normal(size=(50, 3))})
    state = norm.state_dict()
    fresh = Normalizer({"observation.state": (3,)}, {"observation.state": "mean_std"})
    fresh.load_state_dict(state)
    x = torch.randn(4, 3)
    torch.testing.assert_close(fresh.normalize("observation.state", x), norm.normalize("observation.state", x))
    with pytest.raises(RuntimeError, match="Missing key"):
        fresh.load_state_dict({k: v for k, v in state.items() if "scale" not in k})
