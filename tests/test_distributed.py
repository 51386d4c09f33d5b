"""Data-parallel training (``protege train --nproc N``): two gloo processes on the CPU train what
one process trains, and a run killed in one rank resumes as if never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from protege.config import CollectConfig, TrainConfig
from protege.curation.curate import CurationConfig
from protege.data.windows import WindowSampler
from protege.demos.collect import collect
from protege.formats import read_dataset
from protege.policies.diffusion import DiffusionConfig
from protege.policies.mlp import MLPConfig
from protege.train.distributed import Ranks, _without_nproc
from protege.train.trainer import train

OPTIONS = ["--batch-size", "32", "--log-every", "10", "--eval-every", "0", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "data"
    collect(CollectConfig(task="toy/fork", episodes=8, out=out, progress=False))
    return out


def protege(*args: str, tag: str = "") -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PROTEGE_TEST_TAG=tag)
    return subprocess.Popen([sys.executable, "-m", "protege", *args], env=env, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "loss" in line]


def test_two_processes_train_what_one_does(data: Path, tmp_path: Path):
    """Same seed and global batch: the same windows, split over the ranks, so an mlp (no noise in its
    loss) logs the same loss and gradient norm at every step, up to float summation order."""
    one = train(
        TrainConfig(
            dataset=data, policy=MLPConfig(), out=tmp_path / "one", steps=30, batch_size=32, log_every=10, eval_every=0
        )
    )
    two = tmp_path / "two"
    finished(protege("train", str(data), "policy:mlp", "--steps", "30", "--out", str(two), "--nproc", "2", *OPTIONS))
    single, parallel = rows(one), rows(two)
    assert [r["step"] for r in parallel] == [10, 20, 30]
    for a, b in zip(single, parallel):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    assert json.loads((two / "config.json").read_text())["nproc"] == 2
    assert json.loads((one / "config.json").read_text())["nproc"] == 1


def _rank_pid(tag: str, rank: int) -> int | None:
    """The pid of the training process of ``rank`` started with PROTEGE_TEST_TAG=tag."""
    for proc in Path("/proc").iterdir():
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"PROTEGE_TEST_TAG={tag}".encode() in env and f"RANK={rank}".encode() in env:
            return int(proc.name)
    return None


def _latest_step(run: Path) -> int:
    try:
        return json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_run_killed_in_one_rank_resumes_as_if_never_stopped(data: Path, tmp_path: Path):
    """Diffusion draws noise on every rank: the checkpoint holds every rank's generator, so the
    resumed run logs exactly what an uninterrupted one logs."""
    args = ["train", str(data), "policy:diffusion", "--steps", "300", "--save-every", "50", "--nproc", "2", *OPTIONS]
    finished(protege(*args, "--out", str(tmp_path / "whole")))
    cut, tag = tmp_path / "cut", uuid.uuid4().hex
    process = protege(*args, "--out", str(cut), tag=tag)
    deadline = time.time() + 120
    while _latest_step(cut) < 50 and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    pid = _rank_pid(tag, 1)
    assert pid is not None and _latest_step(cut) < 300, "the run ended before a rank could be killed"
    os.kill(pid, signal.SIGKILL)
    process.communicate(timeout=120)
    assert process.returncode != 0  # torchrun stops the other rank too
    assert _latest_step(cut) < 300
    finished(protege(*args, "--out", str(cut), "--resume"))
    whole, resumed = rows(tmp_path / "whole"), rows(cut)
    assert [r["step"] for r in resumed] == [r["step"] for r in whole] == list(range(10, 301, 10))
    for a, b in zip(whole, resumed):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6), b["step"]


def test_each_rank_gathers_its_share_of_one_drawn_batch(data: Path):
    """The shares of every rank, in rank order, are the batch one process draws."""
    sampler = WindowSampler(read_dataset(data), 2, 8)
    whole = sampler.sample(12, torch.Generator().manual_seed(3))
    shares = [sampler.sample(12, torch.Generator().manual_seed(3), Ranks(r, 3).share(12)) for r in range(3)]
    for key, value in whole.items():
        assert torch.equal(torch.cat([s[key] for s in shares]), value)


def test_what_data_parallel_cannot_do_exactly_is_refused_up_front():
    with pytest.raises(ValueError, match="global batch and must split evenly over 2"):
        Ranks(0, 2).check(33, ())
    with pytest.raises(ValueError, match="median-of-means runs in one process only"):
        Ranks(0, 2).check(32, ("median-of-means",))
    Ranks(0, 1).check(33, ("median-of-means", "iw-sft"))  # one process does all of it
    with pytest.raises(ValueError, match="--nproc must be >= 1"):
        train(TrainConfig(dataset=Path("absent"), policy=DiffusionConfig(), nproc=0, curation=CurationConfig()))


def test_ranks_keep_their_own_noise_streams():
    """Rank 0 keeps the single-process stream; another rank is seeded apart, and finds its own state in a
    checkpoint's merged states (or none, in a run saved by fewer processes)."""
    torch.manual_seed(5)
    Ranks(0, 2).seed_noise(5)
    zero = torch.rand(4)
    Ranks(1, 2).seed_noise(5)
    one = torch.rand(4)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(4), zero) and not torch.equal(one, zero)
    merged = {"torch": torch.get_rng_state(), "sampler": torch.Generator().get_state(), "torch.rank1": zero}
    assert torch.equal(Ranks(1, 2).own_rng(merged)["torch"], zero)
    assert "torch" not in Ranks(2, 3).own_rng(merged)  # saved by 2 processes, resumed by 3
    assert _without_nproc(["train", "d", "--nproc", "2", "--nproc=3", "--steps", "5"]) == ["train", "d", "--steps", "5"]
