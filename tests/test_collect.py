"""`protege collect`: DART and epsilon exploration record the expert's labels, follow the seeds,
filter successes, store pixels as uint8, and a missing simulator is a one-line error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from protege.cli import main
from protege.config import CollectConfig
from protege.data.store import STATE, EpisodeStore
from protege.demos.collect import collect
from protege.demos.demonstrators import ActionNoise
from protege.formats import read_dataset
from protege.tasks import make_task


def run(tmp_path: Path, name: str, **options) -> EpisodeStore:
    cfg = CollectConfig(task=options.pop("task", "toy/reach"), out=tmp_path / name, progress=False, **options)
    return collect(cfg)[1]


def test_dart_records_the_experts_label_not_the_executed_action(tmp_path: Path) -> None:
    clean = run(tmp_path, "clean", episodes=20)
    noisy = run(tmp_path, "noisy", episodes=20, noise=0.5)
    expert = make_task("toy/reach").make_expert()  # stateless: its action is a function of the state
    np.testing.assert_allclose(noisy.action, expert.act({STATE: noisy.obs[STATE]}), atol=1e-6)
    # the executed actions were perturbed: the visited states leave the clean trajectories
    assert not np.array_equal(noisy.episode_lengths, clean.episode_lengths) or not np.allclose(
        noisy.obs[STATE], clean.obs[STATE]
    )
    assert set(noisy.episodes["source"]) == {"expert-dart0.5"}
    np.testing.assert_array_equal(noisy.obs[STATE][noisy.episode_starts], clean.obs[STATE][clean.episode_starts])


def test_noise_follows_the_seed_whatever_the_batch(tmp_path: Path) -> None:
    a = run(tmp_path, "a", episodes=15, noise=0.3, epsilon=0.2, num_envs=15)
    b = run(tmp_path, "b", episodes=15, noise=0.3, epsilon=0.2, num_envs=4)
    np.testing.assert_array_equal(a.action, b.action)
    np.testing.assert_array_equal(a.obs[STATE], b.obs[STATE])
    c = run(tmp_path, "c", episodes=15, noise=0.3, epsilon=0.2, seed=1000)
    assert not np.array_equal(a.obs[STATE][a.episode_starts], c.obs[STATE][c.episode_starts])


def test_noise_bursts_leave_clean_stretches_between_them() -> None:
    spec = make_task("toy/reach").spec
    centre = np.tile((spec.action_low + spec.action_high) / 2, (4, 1)).astype(np.float32)
    noise = ActionNoise(spec, noise=0.1, burst=3, gap=5)
    noise.reset(np.arange(4))
    noisy = np.array([(noise(centre) != centre).any(axis=1) for _ in range(3000)])  # (steps, episodes)
    for row in noisy.T:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        runs = (edges[1::2] - edges[::2])[: -1 if row[-1] else None]  # the last burst may be cut off
        assert len(runs) > 100 and (runs % 3 == 0).all()  # whole bursts (one may follow another at once)
    assert noisy.mean() == pytest.approx(3 / (3 + 4), abs=0.03)  # bursts of 3, clean stretches of 5 - 1 on average
    with pytest.raises(ValueError, match="--noise-gap >= 1"):
        ActionNoise(spec, noise=0.1, burst=3, gap=0)


def test_epsilon_failures_are_kept_or_dropped(tmp_path: Path) -> None:
    mixed = run(tmp_path, "mixed", task="toy/fork", episodes=40, epsilon=0.4)
    assert 0 < mixed.episodes["success"].sum() < 40  # random actions make the expert fail sometimes
    assert set(mixed.episodes["source"]) == {"expert-eps0.4"}
    kept = run(tmp_path, "kept", task="toy/fork", episodes=40, epsilon=0.4, success_only=True)
    assert kept.episodes["success"].all() and kept.num_episodes == mixed.episodes["success"].sum()
    np.testing.assert_array_equal(kept.episodes["seed"], mixed.episodes["seed"][mixed.episodes["success"]])


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"noise": -0.1}, "need noise >= 0 and 0 <= epsilon <= 1"),
        ({"epsilon": 1.5}, "need noise >= 0 and 0 <= epsilon <= 1"),
        ({"noise-burst": 4}, "--noise-burst 4 shapes DART noise in time; give it --noise too"),
    ],
)
def test_bad_exploration_settings_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: dict, message: str
) -> None:
    flag, value = next(iter(bad.items()))
    with pytest.raises(SystemExit) as err:
        main(
            [
                "collect",
                "toy/reach",
                "--episodes",
                "2",
                f"--{flag}",
                str(value),
                "--out",
                str(tmp_path / "x"),
                "--no-progress",
            ]
        )
    assert message in str(err.value.code)


def test_missing_simulator_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "metaworld", None)  # import metaworld now raises ImportError
    with pytest.raises(SystemExit) as err:
        main(["collect", "metaworld/reach", "--episodes", "2", "--out", str(tmp_path / "mw"), "--no-progress"])
    message = str(err.value.code)
    assert "pip install 'protege[metaworld]'" in message and "\n" not in message
    assert not (tmp_path / "mw").exists()


def test_toy_tasks_record_their_drawn_scene(tmp_path: Path) -> None:
    out = tmp_path / "px"
    main(
        [
            "collect",
            "toy/reach",
            "--episodes",
            "3",
            "--pixels",
            "--image-size",
            "24",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    store = read_dataset(out)
    assert store.obs["observation.image"].shape == (len(store.action), 24, 24, 3)
    assert store.obs["observation.image"].dtype == np.uint8


def test_pixel_datasets_keep_uint8_images(tmp_path: Path) -> None:
    pytest.importorskip("gymnasium_robotics")
    out, store = collect(
        CollectConfig(
            task="pointmaze/umaze", episodes=2, pixels=True, image_size=32, out=tmp_path / "px", progress=False
        )
    )
    loaded = read_dataset(out)
    images = loaded.obs["observation.image"]
    assert images.dtype == np.uint8 and images.shape == (store.num_frames, 32, 32, 3)
    np.testing.assert_array_equal(images, store.obs["observation.image"])
    assert images.std() > 0
