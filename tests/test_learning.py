"""The honest test: the default benchmark, trained here, shows diffusion solving toy/fork far above MLP."""

import csv

import numpy as np
import pytest

from protege.bench.suites import bench
from protege.config import BenchConfig
from protege.evaluate.stats import mcnemar_exact


@pytest.mark.slow
def test_default_bench_diffusion_solves_fork_and_mlp_does_not(tmp_path):
    report = bench(BenchConfig(out=tmp_path / "bench", device="cpu", progress=False))
    mlp, diffusion = report["policies"]["mlp"], report["policies"]["diffusion"]
    assert diffusion["success_rate"] >= 0.8, report
    assert mlp["success_rate"] <= 0.3, report
    assert diffusion["success_ci95"][0] > mlp["success_ci95"][1]  # intervals do not overlap
    # the printed paired test is recomputed from the saved per-episode rows
    with open(tmp_path / "bench" / "eval" / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    by_policy = {
        name: {int(r["seed"]): r["success"] == "True" for r in rows if r["policy"] == name}
        for name in ("mlp", "diffusion")
    }
    assert by_policy["mlp"].keys() == by_policy["diffusion"].keys()  # same seeds: a paired design
    seeds = sorted(by_policy["mlp"])
    paired = mcnemar_exact(
        np.array([by_policy["mlp"][s] for s in seeds]), np.array([by_policy["diffusion"][s] for s in seeds])
    )
    assert paired["p_value"] == pytest.approx(report["paired"][0]["p_value"])
    assert paired["p_value"] < 1e-6
