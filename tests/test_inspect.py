"""`protege inspect`: the summary counts each source's episodes right and the report names every feature."""

from __future__ import annotations

import json

import numpy as np

from protege.curation.describe import describe, format_description
from protege.data.store import EpisodeStore


def two_source_store() -> EpisodeStore:
    lengths = [4, 6, 2, 3, 5]
    n = sum(lengths)
    return EpisodeStore(
        obs={"observation.state": np.zeros((n, 3), np.float32), "observation.grid": np.zeros((n, 2, 2), np.float32)},
        action=np.zeros((n, 2), np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={
            "success": np.array([True, True, True, False, False]),
            "return": np.array([1.0, 3.0, 1.0, 0.0, -4.0]),
            "source": np.array(["expert", "expert", "noisy", "noisy", "noisy"], dtype=object),
        },
        reward=np.zeros(n, np.float32),
        fps=20,
        task="stack blocks",
    )


def test_describe_counts_per_source() -> None:
    desc = describe(two_source_store())
    assert json.loads(json.dumps(desc)) == desc
    assert (desc["episodes"], desc["frames"], desc["fps"], desc["task"]) == (5, 20, 20, "stack blocks")
    quality = {"mean_smoothness": 0.0, "mean_divergence": 0.0}  # constant actions
    assert desc["sources"] == {
        "expert": {"episodes": 2, "success_rate": 1.0, "mean_return": 2.0, "mean_length": 5.0, **quality},
        "noisy": {"episodes": 3, "success_rate": 1 / 3, "mean_return": -1.0, "mean_length": 10 / 3, **quality},
    }
    assert desc["per_episode"]["source"] == ["expert", "expert", "noisy", "noisy", "noisy"]
    assert desc["features"] == [
        {"name": "observation.state", "shape": [3], "dtype": "float32"},
        {"name": "observation.grid", "shape": [2, 2], "dtype": "float32"},
        {"name": "action", "shape": [2], "dtype": "float32"},
        {"name": "next.reward", "shape": [], "dtype": "float32"},
    ]


def test_format_description_names_every_feature_and_source() -> None:
    text = format_description(describe(two_source_store()))
    for name in ("observation.state", "observation.grid", "action", "next.reward", "expert", "noisy", "stack blocks"):
        assert name in text
    assert "33.3%" in text
