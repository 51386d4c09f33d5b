"""What was written before a change keeps working: run folders, checkpoints and old option names.

``tests/legacy/`` holds a toy/fork dataset and two run folders (mlp, and bet, a family whose
padded-step default changed with ``mask_padding``) written by protege at commit a34bafc, stopped
at step 20 of 30; ``expected.safetensors`` holds that code's prediction of the EMA policy for
fixed inputs and its weights at step 30 (see tests/legacy/README.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from protege import load_policy
from protege.cli import main

LEGACY = Path(__file__).parent / "legacy"
RUNS = ("run-mlp", "run-bet")
#: Float kernels differ between CPUs (the bet run differs in the last bit on an AMD EPYC from the
#: machine that wrote it): a changed default or a lost optimizer state moves values by far more.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
#: Ten Adam steps later such a difference grows to ~1e-5 (Adam divides by a near-zero second moment
#: where gradients are tiny); a lost optimizer or RNG state moves weights by ~lr (1e-3) per step.
RESUME_TOLERANCE = {"rtol": 1e-4, "atol": 5e-5}


@pytest.mark.parametrize("run", RUNS)
def test_a_checkpoint_written_before_loads_and_predicts_the_same(run: str) -> None:
    expected = load_file(LEGACY / run / "expected.safetensors")
    policy = load_policy(LEGACY / run)
    obs = {k.removeprefix("obs."): v for k, v in expected.items() if k.startswith("obs.")}
    torch.testing.assert_close(policy.predict(obs, noise=expected.get("noise")), expected["prediction"], **TOLERANCE)


@pytest.mark.parametrize("run", RUNS)
def test_a_run_written_before_resumes_to_the_same_weights(
    run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(LEGACY / "data", tmp_path / "data")
    shutil.copytree(LEGACY / run, tmp_path / run, ignore=shutil.ignore_patterns("expected.safetensors"))
    monkeypatch.chdir(tmp_path)  # the run's config names data/ and its folder relative to where it ran
    main(["train", "--config", f"{run}/config.json", "--resume", "--no-progress"])
    expected = load_file(LEGACY / run / "expected.safetensors")
    final = tmp_path / run / "checkpoints" / "step-0000030"
    for kind in ("model", "ema"):
        weights = load_file(final / f"{kind}.safetensors")
        want = {k.removeprefix(f"step30.{kind}."): v for k, v in expected.items() if k.startswith(f"step30.{kind}.")}
        assert weights.keys() == want.keys()
        for key, value in want.items():
            torch.testing.assert_close(
                weights[key], value, **RESUME_TOLERANCE, msg=f"{run} {kind} {key} differs after resuming"
            )


def test_renamed_options_still_work_with_a_deprecation_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(LEGACY / "data", tmp_path / "data")
    with pytest.raises(SystemExit) as err:  # the old spelling reaches --subset: this dataset has none
        main(
            [
                "train",
                str(tmp_path / "data"),
                "--episodes",
                "train",
                "--out",
                str(tmp_path / "x"),
                "--no-progress",
                "policy:mlp",
            ]
        )
    assert "no episode subset 'train'" in str(err.value)
    assert "--episodes is deprecated and will be removed in 0.2; use --subset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--seeds=0", "--suite", "policies", "--tasks", "toy/fork", "--no-progress"])
    assert "--seeds is deprecated and will be removed in 0.2; use --num-seeds" in capsys.readouterr().err
