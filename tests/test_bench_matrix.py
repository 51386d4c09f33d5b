"""Matrix arms that change a policy or training setting (ablations) train with it and say so."""

import json
from pathlib import Path

from protege.bench.matrix import Arm, Matrix, run_matrix


def test_arm_settings_reach_the_run_and_the_summary(tmp_path: Path) -> None:
    arms = {
        "mlp": Arm("mlp"),
        "mlp-tuned": Arm("mlp", settings=(("hidden_dim", 16),), training=(("lr", 0.01), ("steps", 7))),
    }
    matrix = Matrix(
        tasks=("toy/fork",),
        arms=arms,
        num_seeds=1,
        episodes=6,
        steps=5,
        batch_size=16,
        eval_episodes=4,
        out=tmp_path,
        device="cpu",
        progress=False,
    )
    results = run_matrix(matrix)
    tuned = json.loads((tmp_path / "toy-fork" / "seed0" / "mlp-tuned" / "config.json").read_text())
    plain = json.loads((tmp_path / "toy-fork" / "seed0" / "mlp" / "config.json").read_text())
    assert (tuned["lr"], tuned["steps"], tuned["policy"]["hidden_dim"]) == (0.01, 7, 16)
    assert (plain["steps"], plain["batch_size"]) == (5, 16) and plain["lr"] != 0.01
    assert results["arms"]["mlp-tuned"]["training"] == {"lr": 0.01, "steps": 7}
    assert results["arms"]["mlp-tuned"]["settings"] == {"hidden_dim": 16} and "training" not in results["arms"]["mlp"]


def test_a_bench_resumes_with_other_videos_and_from_an_older_config(tmp_path: Path) -> None:
    """Settings that do not change results (videos, training-time evaluations) may change on resume,
    and a bench_config.json written before a setting existed reads it as its default."""
    from protege.bench.suites import _config_json, _read_config
    from protege.config import BenchConfig

    saved = _config_json(BenchConfig(steps=7))
    del saved["baseline"]  # an older protege did not have it
    (tmp_path / "bench_config.json").write_text(json.dumps({**saved, "videos": 0, "out": "x"}))
    assert _read_config(tmp_path / "bench_config.json") == _config_json(BenchConfig(steps=7, videos=5, train_evals=0))
    assert _read_config(tmp_path / "bench_config.json") != _config_json(BenchConfig(steps=8))
