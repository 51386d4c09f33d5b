"""`protege report`: numbers recomputed from episodes.csv, aggregates equal to rliable's, an offline page."""

import csv
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from protege.bench.matrix import Arm, Matrix, run_matrix
from protege.cli import main
from protege.evaluate.stats import interval_over_seeds, wilson_interval
from protege.report.aggregate import improvement_interval, iqm, iqm_interval, probability_of_improvement
from protege.report.build import write_report
from protege.report.gather import gather
from protege.report.results import across_tasks, cells, paired


@pytest.fixture(scope="module")
def matrix_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) policies matrix: 2 toy tasks x 2 families x 2 training seeds, 6 episodes each."""
    out = tmp_path_factory.mktemp("matrix")
    run_matrix(
        Matrix(
            tasks=("toy/fork", "toy/reach"),
            arms={"mlp": Arm("mlp"), "gaussian": Arm("gaussian")},
            num_seeds=2,
            episodes=6,
            steps=6,
            batch_size=16,
            eval_episodes=6,
            out=out,
            device="cpu",
            progress=False,
            baseline="mlp",
            videos=1,
            train_evals=2,
        )
    )
    return out


def _episodes(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.rglob("eval/episodes.csv")):
        seed = int(path.parent.parent.name.removeprefix("seed"))
        with path.open(newline="") as f:
            rows += [{**r, "train_seed": seed} for r in csv.DictReader(f)]
    return rows


def test_cells_recompute_episodes_csv(matrix_folder: Path) -> None:
    rows = _episodes(matrix_folder)
    table = cells(gather(matrix_folder))
    assert sorted(table) == ["toy/fork", "toy/reach"] and sorted(table["toy/fork"]) == ["gaussian", "mlp"]
    for task, policies in table.items():
        for name, cell in policies.items():
            mine = [r for r in rows if r["task"] == task and r["policy"] == name]
            per_seed = [np.mean([r["success"] == "True" for r in mine if r["train_seed"] == s]) for s in (0, 1)]
            s = cell.summary()
            assert s["episodes"] == len(mine) == 12 and s["training_seeds"] == 2
            assert s["per_seed"] == pytest.approx(per_seed)
            assert s["success_t95_over_seeds"] == pytest.approx(list(interval_over_seeds(per_seed)))
            ok = sum(r["success"] == "True" for r in mine)
            assert s["success_wilson95"] == pytest.approx(list(wilson_interval(ok, len(mine))))
            assert s["mean_return"] == pytest.approx(np.mean([float(r["return"]) for r in mine]))


def test_paired_uses_shared_seeds_only(matrix_folder: Path) -> None:
    table = cells(gather(matrix_folder))
    a, b = table["toy/fork"]["gaussian"], table["toy/fork"]["mlp"]
    result = paired(a, b)
    assert result["episodes"] == 12 and result["training_seeds"] == 2
    a_only = sum(a.episodes[k]["success"] and not b.episodes[k]["success"] for k in a.episodes)
    assert result["mcnemar"]["a_only"] == a_only
    diffs = np.subtract(a.per_seed_success(), b.per_seed_success())
    assert result["difference"] == pytest.approx(diffs.mean())  # a minus b, the mean over training seeds
    assert result["t95_over_seeds"] == pytest.approx(list(interval_over_seeds(list(diffs), clip=False)))
    b.episodes = {k: v for k, v in b.episodes.items() if k[0] == 0}  # the baseline ran one seed only
    assert paired(a, b)["episodes"] == 6 and paired(a, b)["t95_over_seeds"] is None


def test_aggregates_equal_rliable() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rliable import library as rly
        from rliable import metrics
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 11, (4, 5)) / 10, rng.integers(0, 11, (3, 5)) / 10
    assert iqm(x) == pytest.approx(metrics.aggregate_iqm(x), abs=1e-12)
    assert probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-12)
    state = np.random.RandomState(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, theirs = rly.get_interval_estimates(
            {"x": x}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=2000, random_state=state
        )
        _, theirs_poi = rly.get_interval_estimates(
            {"xy": (x, y)}, metrics.probability_of_improvement, reps=600, random_state=state
        )
    assert iqm_interval(x)["ci95"] == pytest.approx(theirs["x"][:, 0], abs=0.03)
    assert improvement_interval(x, y)["ci95"] == pytest.approx(np.ravel(theirs_poi["xy"]), abs=0.04)


def test_aggregate_is_stratified_by_task() -> None:
    """A task where every run scores the same keeps its score in every resample: the interval of a
    constant matrix is a point, and swapping runs between tasks would show."""
    constant = np.tile([[0.2, 0.9]], (5, 1))
    assert iqm_interval(constant)["ci95"] == pytest.approx([0.55, 0.55])
    assert improvement_interval(constant, constant)["ci95"] == pytest.approx([0.5, 0.5])


def test_across_tasks_needs_matching_runs(matrix_folder: Path) -> None:
    table = cells(gather(matrix_folder))
    agg = across_tasks(table, "mlp")
    assert agg["tasks"] == ["toy/fork", "toy/reach"] and set(agg["iqm"]) == {"gaussian", "mlp"}
    assert set(agg["improvement"]) == {"gaussian"}
    scores = np.array([cell.per_seed_success() for cell in (table["toy/fork"]["mlp"], table["toy/reach"]["mlp"])]).T
    assert agg["iqm"]["mlp"]["iqm"] == pytest.approx(iqm(scores))
    del table["toy/reach"]["gaussian"]  # gaussian no longer on every task: left out, not mixed in
    assert set(across_tasks(table, "mlp")["iqm"]) == {"mlp"}


def test_report_page_is_offline_and_complete(matrix_folder: Path, capsys: pytest.CaptureFixture) -> None:
    main(["report", str(matrix_folder), "--baseline", "gaussian"])
    page = (matrix_folder / "report" / "index.html").read_text()
    assert f"report: {matrix_folder / 'report' / 'index.html'}" in capsys.readouterr().out
    for anchor in ("results", "aggregate", "training", "costs", "data", "provenance"):
        assert f'id="{anchor}"' in page, anchor
    assert "vs gaussian" in page and "IQM" in page and "toy/reach" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must not load anything from a network"
    assert page.count("<img ") >= 4


def test_report_refuses_unknown_baseline_and_empty_folders(matrix_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--baseline 'nope' is none of the policies"):
        write_report(matrix_folder, out=tmp_path / "r", baseline="nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no evaluation"):
        write_report(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such run"):
        write_report(tmp_path / "missing")


def test_a_bad_episodes_csv_is_named(matrix_folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "eval"
    bad.mkdir()
    (bad / "summary.json").write_text('{"task": "toy/fork", "policies": {}}')
    (bad / "episodes.csv").write_text("task,policy,seed,success\ntoy/fork,mlp,notanumber,True\n")
    with pytest.raises(ValueError, match=r"episodes.csv' row 2"):
        write_report(bad)


VIDEO_SOURCES = "Array.from(document.querySelectorAll('video'), v => ({src: v.getAttribute('src')}))"


def _recomputed(rows: list[dict], task: str, policy: str, baseline: str) -> dict:
    """Success over training seeds, its t-interval and the McNemar p against the baseline, from the CSV rows alone."""
    from scipy import stats

    mine = {
        (r["train_seed"], r["seed"]): r["success"] == "True" for r in rows if (r["task"], r["policy"]) == (task, policy)
    }
    per_seed = [np.mean([ok for (t, _), ok in mine.items() if t == s]) for s in sorted({t for t, _ in mine})]
    mean, half = np.mean(per_seed), stats.t.ppf(0.975, len(per_seed) - 1) * np.std(per_seed, ddof=1) / np.sqrt(2)
    out = {"success": mean, "ci": (max(mean - half, 0.0), min(mean + half, 1.0))}
    if policy != baseline:
        base = {
            (r["train_seed"], r["seed"]): r["success"] == "True"
            for r in rows
            if (r["task"], r["policy"]) == (task, baseline)
        }
        b = sum(mine[k] and not base[k] for k in mine)
        c = sum(base[k] and not mine[k] for k in mine)
        out["p"] = min(1.0, 2 * stats.binom.cdf(min(b, c), b + c, 0.5)) if b + c else 1.0
        base_rates = [np.mean([ok for (t, _), ok in base.items() if t == s]) for s in sorted({t for t, _ in base})]
        out["difference"] = float(np.mean(per_seed) - np.mean(base_rates))
    return out


def test_report_in_a_browser(matrix_folder: Path, open_page, tmp_path: Path) -> None:
    """Chromium opens the page offline with no errors; the table's numbers are those recomputed from
    episodes.csv; every plot loads and every rollout video plays."""
    out = write_report(matrix_folder, out=tmp_path / "report")
    page = open_page(out / "index.html")
    page.assert_clean()  # no console or page errors, no network request, every <img> loaded, every <video> plays
    header, *body = page.table("#results", header=True)
    col = {name: header.index(name) for name in ("task", "policy", "success", "95% CI", "vs mlp", "McNemar p")}
    rows = _episodes(matrix_folder)
    assert len(body) == 4
    for row in body:
        task, policy = row[col["task"]], row[col["policy"]]
        expected = _recomputed(rows, task, policy, "mlp")
        assert float(row[col["success"]]) == pytest.approx(expected["success"], abs=5e-4)
        lo, hi = (float(x) for x in row[col["95% CI"]].strip("[]").split(","))
        assert (lo, hi) == pytest.approx(expected["ci"], abs=5e-4)
        if "p" in expected:
            assert float(row[col["McNemar p"]]) == pytest.approx(expected["p"], rel=1e-2)
            assert float(row[col["vs mlp"]]) == pytest.approx(expected["difference"], abs=5e-4)
        else:
            assert row[col["vs mlp"]] == "(baseline)"
    images = page.images()
    assert len(images) >= 4 and all(image.natural_width > 0 for image in images)
    videos = page.videos()
    assert len(videos) >= 4 and all(video.plays and video.video_width == 128 for video in videos)
    assert {v["src"].split("-", 1)[1] for v in page.evaluate(VIDEO_SOURCES)} <= {
        p.name for p in matrix_folder.rglob("videos/*.webm")
    }
    page.screenshot(tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_a_run_folder_reports_its_training(matrix_folder: Path, tmp_path: Path) -> None:
    out = write_report(matrix_folder / "toy-fork" / "seed0" / "mlp", out=tmp_path / "run")
    page = (out / "index.html").read_text()
    assert 'id="training"' in page and "No evaluation found" in page and "<h3>toy/fork</h3><figure><img" in page


def test_a_sampling_steps_result_reports_success_against_steps(tmp_path: Path) -> None:
    result = Path(__file__).parents[1] / "benchmarks" / "results" / "sampling-steps-cpu.json"
    page = (write_report(result, out=tmp_path / "steps") / "index.html").read_text()
    assert 'id="costs"' in page and "success against sampling steps" in page


def test_many_videos_are_made_when_their_group_opens(
    matrix_folder: Path, open_page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past AUTOPLAY_VIDEOS a report holds no player until a task x policy group is opened (hundreds
    of players stall a page); opened, its videos play."""
    import protege.report.build as build

    monkeypatch.setattr(build, "AUTOPLAY_VIDEOS", 1)
    page = open_page(write_report(matrix_folder, out=tmp_path / "many") / "index.html")
    page.assert_clean()
    assert page.videos() == [] and page.evaluate("document.querySelectorAll('details.videos').length") == 4
    page.click("details.videos summary")
    page.page.wait_for_selector("details.videos video")  # the toggle event runs after the click
    videos = page.videos()
    assert videos and all(video.plays for video in videos)


def test_two_evaluations_of_one_policy_are_kept_apart(matrix_folder: Path, tmp_path: Path) -> None:
    """Two copies of one evaluation under a folder (two benches side by side) are not mixed: the
    second's policies carry its folder in their name."""
    import shutil

    for name in ("a", "b"):
        shutil.copytree(matrix_folder / "toy-fork" / "seed0" / "eval", tmp_path / name / "eval")
    table = cells(gather(tmp_path))
    assert sorted(table["toy/fork"]) == ["gaussian", "gaussian (b/eval)", "mlp", "mlp (b/eval)"]
    assert table["toy/fork"]["mlp"].episodes == table["toy/fork"]["mlp (b/eval)"].episodes


def test_an_eval_folder_finds_its_runs_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`protege eval runs/a runs/b` records relative checkpoint paths; reported from another folder,
    the eval still finds both runs (their training seeds and curves), and the two runs, trained once
    each with different seeds, are paired on the evaluation seeds."""
    main(["collect", "toy/fork", "--episodes", "8", "--num-envs", "8", "--out", "data", "--no-progress"])
    for name, seed in (("a", "0"), ("b", "1")):
        main(
            [
                "train",
                "data",
                "--steps",
                "4",
                "--batch-size",
                "16",
                "--eval-every",
                "2",
                "--eval-episodes",
                "2",
                "--seed",
                seed,
                "--out",
                f"runs/{name}",
                "--no-progress",
                "policy:mlp",
                "--policy.hidden-dim",
                "16",
            ]
        )
    main(["eval", "runs/a", "runs/b", "--episodes", "4", "--num-envs", "4", "--no-progress"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    g = gather(tmp_path / "runs" / "a" / "eval")
    ev = g.evaluations[0]
    assert {label: ev.train_seed(label) for label in ev.runs} == {"mlp": 0, "mlp:b": 1}
    table = cells(g)
    assert paired(table["toy/fork"]["mlp:b"], table["toy/fork"]["mlp"])["episodes"] == 4
    page = (write_report(tmp_path / "runs" / "a" / "eval", out=tmp_path / "rep") / "index.html").read_text()
    assert 'id="training"' in page and "runs/b/config.json" in page


def test_names_with_dollars_are_drawn_as_text() -> None:
    """Names with "$...$" (mathtext to matplotlib, which fails on some) are drawn as plain text."""
    from protege.report import plots

    named = {"arm$\\bad$": (0.5, 0.4, 0.6)}
    assert plots.success_bars({"t$a$sk": named}, {"arm$\\bad$": "#123456"}).startswith("data:image/svg+xml")
    assert plots.interval_panel(named, ["#123456"], "IQM", None).startswith("data:image/svg+xml")
