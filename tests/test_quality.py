"""Data-quality metrics on hand-built episodes whose values are known exactly, and `protege inspect`
reporting them for a mixed-quality dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from protege.cli import main
from protege.curation.describe import describe, format_description
from protege.curation.metrics import episode_metrics, quality_report, state_coverage
from protege.data.store import STATE, EpisodeStore


def store_of(
    actions: list,
    starts: list | None = None,
    sources: list[str] | None = None,
    success: list[bool] | None = None,
    returns: list[float] | None = None,
) -> EpisodeStore:
    """One episode per action list; each episode's states stay at its start (default: the origin)."""
    actions = [np.asarray(a, dtype=np.float32).reshape(len(a), -1) for a in actions]
    starts = starts or [[0.0, 0.0]] * len(actions)
    states = np.concatenate([np.repeat(np.asarray([s], np.float32), len(a), axis=0) for s, a in zip(starts, actions)])
    episodes = {"source": np.array(sources or ["expert"] * len(actions), dtype=object)}
    if success is not None:
        episodes |= {"success": np.array(success), "return": np.array(returns)}
    return EpisodeStore(
        obs={STATE: states},
        action=np.concatenate(actions),
        episode_ends=np.cumsum([len(a) for a in actions]),
        episodes=episodes,
    )


def cloud(points: np.ndarray) -> EpisodeStore:
    """One episode visiting ``points`` (N, 2) as its states."""
    return EpisodeStore(
        obs={STATE: points.astype(np.float32)},
        action=np.zeros((len(points), 1), np.float32),
        episode_ends=[len(points)],
    )


def test_smoothness_of_steady_alternating_and_one_step_episodes() -> None:
    steady = [[0.3, -0.2]] * 5
    assert episode_metrics(store_of([steady]))["smoothness"].tolist() == [0.0]
    alternating = [[1, -1], [-1, 1]] * 3
    # pooled IQR is 2 in both dimensions, so every alternating jump (+-2, -+2) scales to length sqrt(2)
    metrics = episode_metrics(store_of([alternating, [[1, -1]]]))
    np.testing.assert_allclose(metrics["smoothness"], [np.sqrt(2), 0.0])
    np.testing.assert_array_equal(metrics["length"], [6, 1])


def test_divergence_between_episodes_that_start_alike() -> None:
    ramp = np.arange(10.0)
    far = [[5.0, 5.0], [5.0, 5.1]]
    same = episode_metrics(store_of([ramp, np.r_[ramp, 3, 3], ramp, ramp], starts=[[0, 0], [0, 0.1], *far]))
    np.testing.assert_allclose(same["divergence"], 0.0, atol=1e-12)  # actions beyond the first 10 do not count
    # the pair differs by 2 at every step; the pooled actions {0..9, 2..11} have IQR 8 - 3 = 5
    shifted = episode_metrics(store_of([ramp, ramp + 2], starts=[[0, 0], [0, 0]]))
    np.testing.assert_allclose(shifted["divergence"], [2 / 5, 2 / 5])


def test_short_episodes_repeat_their_last_action() -> None:
    metrics = episode_metrics(store_of([[0, 0, 1], [0, 0] + [1] * 8]))
    np.testing.assert_allclose(metrics["divergence"], [0.0, 0.0])
    assert np.isfinite(metrics["smoothness"]).all()


def test_coverage_of_one_cell_a_line_and_a_lattice() -> None:
    # a 10 x 10 lattice whose axes, u (wider) and v, are the principal components of (x, y)
    u, v = np.meshgrid(2.0 * np.arange(10), np.arange(10.0))
    lattice = np.stack([u.ravel() + v.ravel(), u.ravel() - v.ravel()], axis=1) / np.sqrt(2)
    assert state_coverage(cloud(lattice)) == pytest.approx(1.0)
    assert state_coverage(cloud(lattice), bins=20) == pytest.approx(100 / 400)
    line = lattice[v.ravel() == 0]
    assert state_coverage(cloud(line)) == pytest.approx(10 / 100)
    assert state_coverage(cloud(np.ones((50, 2)))) == pytest.approx(1 / 100)


def test_per_source_summary() -> None:
    store = store_of(
        [[[0.0]] * 4, [[0.0]] * 2, [[1.0], [-1.0]]],
        starts=[[0, 0], [0, 0], [9, 9]],
        sources=["expert", "expert", "noisy"],
        success=[True, False, True],
        returns=[1.0, 0.0, 3.0],
    )
    report = quality_report(store)
    assert json.loads(json.dumps(report)) == report
    # pooled actions {0 x 6, 1, -1}: IQR 0, so actions keep their units; the noisy episode's nearest
    # start is episode 0 (a tie, the first wins), its actions padded to (1, -1 x 9) are 1 away at each step
    assert report["sources"] == {
        "expert": {
            "episodes": 2,
            "success_rate": 0.5,
            "mean_return": 0.5,
            "mean_length": 3.0,
            "mean_smoothness": 0.0,
            "mean_divergence": 0.0,
        },
        "noisy": {
            "episodes": 1,
            "success_rate": 1.0,
            "mean_return": 3.0,
            "mean_length": 2.0,
            "mean_smoothness": 2.0,
            "mean_divergence": 1.0,
        },
    }
    assert report["per_episode"]["index"] == [0, 1, 2]
    assert report["per_episode"]["source"] == ["expert", "expert", "noisy"]
    assert report["per_episode"]["length"] == [4, 2, 2]


def test_image_only_datasets_report_null_instead_of_crashing() -> None:
    store = EpisodeStore(
        obs={"observation.image": np.zeros((6, 4, 4, 3), np.uint8)},
        action=np.zeros((6, 2), np.float32),
        episode_ends=[3, 6],
    )
    desc = describe(store)
    assert json.loads(json.dumps(desc)) == desc
    assert desc["per_episode"]["divergence"] == [None, None]
    assert desc["coverage"]["occupied_fraction"] is None and "images only" in desc["coverage"]["note"]
    assert "images only" in format_description(desc)
    with pytest.raises(ValueError, match="state coverage needs a flat float observation"):
        state_coverage(store)


def test_inspect_prints_the_metrics_and_writes_them_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mixed"
    main(
        [
            "collect",
            "toy/reach",
            "--episodes",
            "12",
            "--mixture",
            "expert=0.5",
            "corrupted=0.25",
            "sluggish=0.25",
            "--out",
            str(data),
            "--no-progress",
        ]
    )
    capsys.readouterr()
    main(["inspect", str(data), "--json", str(tmp_path / "report.json")])
    out = capsys.readouterr().out
    for text in (
        "smoothness",
        "divergence",
        "mean return",
        "coverage",
        "principal components",
        "corrupted",
        "sluggish0.7",
    ):
        assert text in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["per_episode"]["smoothness"]) == 12
    sources = report["sources"]
    assert sources["corrupted"]["success_rate"] == sources["expert"]["success_rate"]  # success cannot see corruption
    assert sources["corrupted"]["mean_smoothness"] > 5 * sources["expert"]["mean_smoothness"]
    assert 0 < report["coverage"]["occupied_fraction"] <= 1
