"""Checkpoint selection: the best k by training-time closed-loop success are kept beside the newest,
and evaluation names the rule that picked the checkpoint it ran."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from protege.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("best")
    main(["collect", "toy/reach", "--episodes", "10", "--num-envs", "10", "--out", str(work / "data"), "--no-progress"])
    main(
        ["train", str(work / "data"), "--steps", "60", "--eval-every", "10", "--eval-episodes", "5"]
        + ["--save-every", "60", "--keep-best", "2", "--batch-size", "32", "--out", str(work / "run"), "--no-progress"]
        + ["policy:mlp", "--policy.hidden-dim", "16", "--policy.depth", "1"]
    )
    return work / "run"


def test_the_best_k_are_kept_beside_the_newest(run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluated = sorted(((r["success"], r["step"]) for r in rows if "success" in r), reverse=True)
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert [(e["success"], e["step"]) for e in best] == evaluated[:2]
    on_disk = {p.name for p in (run / "checkpoints").glob("step-*")}
    assert on_disk == {e["dir"] for e in best} | {"step-0000050", "step-0000060"}


def test_eval_names_the_rule_that_picked_the_checkpoint(run: Path, tmp_path: Path) -> None:
    best = json.loads((run / "checkpoints" / "best.json").read_text())[0]
    for rule, step in (("final", 60), ("best", best["step"])):
        out = tmp_path / rule
        main(["eval", str(run), "--checkpoint", rule, "--episodes", "4", "--out", str(out), "--no-progress"])
        selection = json.loads((out / "summary.json").read_text())["policies"]["mlp"]["checkpoint"]
        assert selection["rule"] == rule and selection["step"] == step
        with (out / "episodes.csv").open(newline="") as f:
            assert {Path(row["checkpoint"]).name for row in csv.DictReader(f)} == {f"step-{step:07d}"}
    assert selection["of"] == 2 and selection["success"] == best["success"]


def test_keep_best_needs_closed_loop_evaluation(run: Path, tmp_path: Path) -> None:
    data = run.parent / "data"
    with pytest.raises(SystemExit, match="--keep-best must be >= 0 and ranks closed-loop evaluations"):
        main(["train", str(data), "--eval-every", "0", "--keep-best", "1", "--out", str(tmp_path / "x"), "policy:mlp"])
    final_only = tmp_path / "final-only"
    main(
        ["train", str(data), "--steps", "5", "--eval-every", "0", "--out", str(final_only), "--no-progress"]
        + ["policy:mlp", "--policy.hidden-dim", "16", "--policy.depth", "1"]
    )
    with pytest.raises(SystemExit, match="kept no best checkpoints; train it with --keep-best K"):
        main(["eval", str(final_only), "--checkpoint", "best", "--no-progress"])
