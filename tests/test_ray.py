"""``--ray``: a local Ray cluster on 127.0.0.1 with 2 CPUs runs the bench matrix's cells and an
evaluation's seed shards, and writes what a local run writes."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from protege.bench.matrix import Arm, Matrix, run_matrix
from protege.cli import main
from protege.cluster import Fanout
from protege.config import CollectConfig, EvalConfig, RayOptions, TrainConfig
from protege.demos.collect import collect
from protege.evaluate.evaluate import evaluate
from protege.policies.mlp import MLPConfig
from protege.train.trainer import train

RAY = Path(sys.executable).parent / "ray"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Ray head on 127.0.0.1 with 2 CPUs, as a lab's cluster would be joined: by its address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a private test cluster: no token (a lab's cluster keeps its own), no usage report
    settings = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)  # the driver (this process) joins the same way
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    temp = tmp_path_factory.mktemp("ray")
    subprocess.run(
        [*start, "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=env,
        check=True,
        capture_output=True,
    )
    yield f"127.0.0.1:{port}"
    subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key)
        else:
            os.environ[key] = value


def rows(path: Path, drop: tuple[str, ...] = ()) -> list[dict]:
    """episodes.csv without its timing column (wall time differs from run to run) and ``drop``."""
    with path.open(newline="") as f:
        return [{k: v for k, v in row.items() if k not in ("wall_time_s", *drop)} for row in csv.DictReader(f)]


def matrix_rows(out: Path, seed: int) -> list[dict]:
    """A bench seed's evaluation rows, less the checkpoint paths (two folders are compared)."""
    return rows(out / "toy-fork" / f"seed{seed}" / "eval" / "episodes.csv", drop=("checkpoint",))


def test_eval_shards_on_ray_give_the_rows_of_a_local_eval(cluster: str, tmp_path: Path):
    """25 seeds in waves of 10 over 2 workers (the last wave partial): the same rows, seed for seed."""
    data = tmp_path / "data"
    collect(CollectConfig(task="toy/fork", episodes=6, out=data, progress=False))
    run = train(TrainConfig(dataset=data, policy=MLPConfig(), out=tmp_path / "mlp", steps=50, eval_every=0))
    options = dict(checkpoints=(run,), episodes=25, num_envs=10, progress=False)
    evaluate(EvalConfig(**options, out=tmp_path / "local"))
    evaluate(EvalConfig(**options, out=tmp_path / "ray", ray=cluster, ray_workers=2))
    local, sharded = rows(tmp_path / "local" / "episodes.csv"), rows(tmp_path / "ray" / "episodes.csv")
    assert len(local) == 25 and sharded == local
    summaries = [json.loads((tmp_path / f / "summary.json").read_text())["policies"]["mlp"] for f in ("local", "ray")]
    assert summaries[1]["policy_calls_per_step"] == summaries[0]["policy_calls_per_step"]


def test_bench_cells_on_ray_write_the_local_summary_and_are_not_run_twice(cluster: str, tmp_path: Path):
    matrix = dict(
        tasks=("toy/fork",),
        arms={"mlp": Arm("mlp"), "gaussian": Arm("gaussian")},
        num_seeds=2,
        episodes=6,
        steps=30,
        batch_size=32,
        eval_episodes=8,
        progress=False,
    )
    local = run_matrix(Matrix(**matrix, out=tmp_path / "local"))
    with Fanout(RayOptions(ray=cluster)) as fan:
        remote = run_matrix(Matrix(**matrix, out=tmp_path / "ray"), fan)
    for name in matrix["arms"]:
        a, b = local["tasks"]["toy/fork"][name], remote["tasks"]["toy/fork"][name]
        for key in ("per_seed", "pooled_wilson95", "mean_return", "t95_over_seeds"):
            assert b[key] == a[key], (name, key)
    for seed in range(2):
        assert matrix_rows(tmp_path / "ray", seed) == matrix_rows(tmp_path / "local", seed)

    # a finished cell is not run again: only the removed run, and its seed's evaluation (stale now), are redone
    kept = tmp_path / "ray" / "toy-fork" / "seed0" / "mlp" / "metrics.jsonl"
    stamp = kept.stat().st_mtime_ns
    redo = tmp_path / "ray" / "toy-fork" / "seed1"
    subprocess.run(["rm", "-r", str(redo / "gaussian")], check=True)
    evaluated = (redo / "eval" / "summary.json").stat().st_mtime_ns
    main(
        [
            "bench",
            "--suite",
            "policies",
            "--tasks",
            "toy/fork",
            "--policies",
            "mlp",
            "gaussian",
            "--num-seeds",
            "2",
            "--episodes",
            "6",
            "--steps",
            "30",
            "--batch-size",
            "32",
            "--eval-episodes",
            "8",
            "--train-evals",
            "0",
            "--videos",
            "0",
            "--seed",
            "0",
            "--out",
            str(tmp_path / "ray"),
            "--no-progress",
            "--ray",
            cluster,
        ]
    )
    assert kept.stat().st_mtime_ns == stamp
    assert (redo / "gaussian" / "checkpoints" / "latest.json").exists()
    assert (redo / "eval" / "summary.json").stat().st_mtime_ns != evaluated
    assert matrix_rows(tmp_path / "ray", 1) == matrix_rows(tmp_path / "local", 1)


def test_bare_ray_means_a_local_cluster_and_improve_refuses_it(tmp_path: Path):
    from protege.cli import _bare_ray

    assert _bare_ray(["--ray"]) == ["--ray=local"]
    assert _bare_ray(["--ray", "--steps", "5"]) == ["--ray=local", "--steps", "5"]
    assert _bare_ray(["--ray", "10.0.0.1:6379"]) == ["--ray", "10.0.0.1:6379"]
    assert _bare_ray(["--ray", "runs/a", "runs/b"]) == ["--ray=local", "runs/a", "runs/b"]  # folders stay folders
    with pytest.raises(SystemExit, match="--suite improve runs here"):
        main(["bench", "--suite", "improve", "--ray", "--out", str(tmp_path / "b")])


def test_a_cell_counts_as_trained_only_at_its_last_step(tmp_path: Path):
    """An intermediate checkpoint (a killed cell) is resumed, not evaluated as if finished; a fitted
    family's only checkpoint is at step 0."""
    from protege.bench.matrix import _trained

    (tmp_path / "checkpoints").mkdir()
    assert not _trained(tmp_path, 30)
    for step, done in ((10, False), (30, True), (0, True)):
        (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps({"step": step, "dir": "x"}))
        assert _trained(tmp_path, 30) == done
