"""Rollout videos (`protege eval --videos N`): replayed episodes, WebM files, manifest, scene drawing.

A video holds the reset scene and then one picture per step, so it has length + 1 frames.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest

from protege.bench.suites import bench
from protege.cli import main
from protege.config import BenchConfig
from protege.runner import rollout
from protege.tasks import make_task
from protege.tasks.toy import GOAL, OBSTACLE, POINT, ForkTask

EVAL = ["--episodes", "12", "--num-envs", "12", "--device", "cpu", "--no-progress", "--execution", "ensemble"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A retrieval policy fitted on toy/fork demonstrations: with ensemble execution it averages the
    two modes now and then, so it both succeeds and fails within 12 episodes."""
    work = tmp_path_factory.mktemp("videos")
    main(["collect", "toy/fork", "--episodes", "20", "--num-envs", "20", "--out", str(work / "fork"), "--no-progress"])
    train = ["--eval-every", "0", "--device", "cpu", "--no-progress", "--out", str(work / "run"), "policy:knn"]
    main(["train", str(work / "fork"), *train])
    return work / "run"


def read_rows(out: Path) -> list[dict]:
    with (out / "episodes.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def decode(path: Path) -> tuple[np.ndarray, float]:
    """(T, H, W, 3) frames of a WebM file and its frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp9"
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        return frames, float(stream.average_rate)


@pytest.fixture(scope="module")
def evaluated(run: Path) -> Path:
    """The fixture policy's evaluation folder with one video per first success and failure."""
    out = run.parent / "eval"
    main(["eval", str(run), *EVAL, "--out", str(out), "--videos", "1"])
    return out


def test_eval_writes_one_video_per_first_success_and_failure(evaluated: Path) -> None:
    rows = read_rows(evaluated)
    outcomes = {int(r["seed"]): r["success"] == "True" for r in rows}
    assert set(outcomes.values()) == {True, False}, "the fixture policy should both succeed and fail"
    first = [next(s for s, ok in outcomes.items() if ok is want) for want in (True, False)]

    manifest = json.loads((evaluated / "videos" / "videos.json").read_text())["videos"]
    assert sorted(v["seed"] for v in manifest) == sorted(first)
    for video in manifest:
        row = next(r for r in rows if int(r["seed"]) == video["seed"])
        assert video["success"] == video["replay_success"] == outcomes[video["seed"]] and video["replay_matches"]
        assert video["file"] == f"knn-seed{video['seed']}-{'success' if video['success'] else 'failure'}.webm"
        assert video["length"] == int(row["length"]) and video["frames"] == video["length"] + 1
        frames, fps = decode(evaluated / "videos" / video["file"])
        assert frames.shape == (video["frames"], video["height"], video["width"], 3) == (video["frames"], 128, 128, 3)
        assert fps == video["fps"] == 10
    summary = json.loads((evaluated / "summary.json").read_text())
    assert [v["file"] for v in summary["videos"]] == [f"videos/{v['file']}" for v in manifest]


def test_eval_without_videos_draws_nothing_and_scores_the_same(
    run: Path, evaluated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_drawing(self, num_envs):
        raise AssertionError("an evaluation without videos rendered")

    monkeypatch.setattr(ForkTask, "make_render_env", no_drawing)
    main(["eval", str(run), *EVAL, "--out", str(tmp_path / "without")])
    assert not (tmp_path / "without" / "videos").exists()
    assert "videos" not in json.loads((tmp_path / "without" / "summary.json").read_text())
    timeless = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]  # noqa: E731
    assert timeless(read_rows(tmp_path / "without")) == timeless(read_rows(evaluated))


def test_videos_play_in_chromium(evaluated: Path, open_page) -> None:
    manifest = json.loads((evaluated / "videos" / "videos.json").read_text())["videos"]
    page = evaluated / "videos" / "page.html"
    page.write_text("".join(f'<video src="{v["file"]}"></video>' for v in manifest))
    checks = open_page(page).videos()
    assert len(checks) == len(manifest) and all(c.plays and c.video_width == 128 for c in checks), checks


def test_toy_scene_puts_the_point_where_the_state_says() -> None:
    env = make_task("toy/fork").make_render_env(2)
    obs, _ = env.reset(seed=[3, 4])
    obs, *_ = env.step(np.array([[1.0, 1.0], [-1.0, 1.0]], dtype=np.float32))  # move apart: two different scenes
    frames = env.render()
    assert frames.shape == (2, 128, 128, 3) and frames.dtype == np.uint8
    to_pixel = lambda x, y: (round((1 - y) / 2 * 127), round((x + 1) / 2 * 127))  # noqa: E731  (row, col), y up
    for frame, (x, y, goal_x, goal_y) in zip(frames, obs["observation.state"]):
        assert tuple(frame[to_pixel(x, y)]) == POINT
        assert tuple(frame[to_pixel(x, -y)]) != POINT  # upright: not mirrored
        assert tuple(frame[to_pixel(goal_x, goal_y)]) == GOAL
        assert tuple(frame[to_pixel(0.0, 0.0)]) == OBSTACLE  # the disc at the centre
    assert not np.array_equal(frames[0], frames[1])


def test_rollout_frames_cover_reset_and_every_step() -> None:
    task = make_task("toy/reach")
    plain = rollout(task, task.make_expert(), [0, 1, 2], num_envs=3, progress=False)
    drawn = rollout(task, task.make_expert(), [0, 1, 2], num_envs=3, progress=False, render=True)
    assert plain.frames is None and np.array_equal(plain.lengths, drawn.lengths)
    assert [len(f) for f in drawn.frames] == (drawn.lengths + 1).tolist()


def test_simulator_render_gives_its_own_frames() -> None:
    pytest.importorskip("gym_pusht")
    env = make_task("pusht").make_render_env(2)
    env.reset(seed=[0, 1])
    first = env.render()
    assert first.shape == (2, 96, 96, 3) and first.dtype == np.uint8 and not np.array_equal(first[0], first[1])
    env.step(np.array([[100.0, 100.0], [400.0, 400.0]], dtype=np.float32))
    assert not np.array_equal(env.render(), first)  # the agents moved
    env.close()


def test_bench_records_videos_in_its_evaluations(tmp_path: Path) -> None:
    """The default suite passes ``videos`` to its evaluation; a matrix records them for training seed 0 only."""
    tiny = {"policies": ("knn",), "episodes": 20, "eval_episodes": 6, "device": "cpu", "progress": False}
    bench(BenchConfig(**tiny, videos=1, out=tmp_path / "default"))
    summary = json.loads((tmp_path / "default" / "eval" / "summary.json").read_text())
    assert summary["videos"] and all((tmp_path / "default" / "eval" / v["file"]).is_file() for v in summary["videos"])

    matrix = tmp_path / "matrix"
    bench(BenchConfig(**tiny, suite="policies", tasks=("toy/fork",), num_seeds=2, out=matrix))  # videos: 2 by default
    assert (matrix / "toy-fork" / "seed0" / "eval" / "videos" / "videos.json").is_file()
    assert not (matrix / "toy-fork" / "seed1" / "eval" / "videos").exists()
