"""Curation: each filter and weighting on tiny hand-built datasets whose right answer is known,
median-of-means' bounded influence, and curation + policy integration in the trainer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from protege.cli import main
from protege.config import TrainConfig
from protege.curation.curate import Curation, CurationConfig
from protege.curation.filters import success_only, top_k
from protege.curation.importance import REFERENCE_FILE
from protege.curation.robust import median_of_means
from protege.curation.weights import (
    advantage_weights,
    awr_weights,
    iw_sft_weights,
    normalize_weights,
    quality_scores,
    returns_to_go,
)
from protege.data.store import STATE, EpisodeStore
from protege.data.windows import SAMPLE_WEIGHT, WindowSampler
from protege.formats import read_dataset
from protege.policies.mlp import MLPConfig
from protege.policies.storage import load_policy


def store_of(
    lengths: list[int],
    success: list[bool],
    returns: list[float],
    actions: np.ndarray | None = None,
    reward: np.ndarray | None = None,
) -> EpisodeStore:
    n = sum(lengths)
    rng = np.random.default_rng(0)
    return EpisodeStore(
        obs={STATE: rng.normal(size=(n, 3)).astype(np.float32)},
        action=np.zeros((n, 2), np.float32) if actions is None else actions,
        episode_ends=np.cumsum(lengths),
        reward=reward,
        episodes={"success": np.array(success), "return": np.array(returns, dtype=float)},
    )


def test_success_only_and_top_k_masks() -> None:
    store = store_of([2, 3, 2, 4], [True, False, True, False], [1.0, 5.0, 3.0, 3.0])
    assert success_only(store).tolist() == [True, False, True, False]
    assert top_k(store, 25).tolist() == [False, True, False, False]
    assert top_k(store, 50).tolist() == [False, True, True, False]  # tie at 3.0: the shorter episode
    assert top_k(store, 60).tolist() == [False, True, True, True]  # ceil(2.4) = 3
    ties = store_of([4, 2, 2, 3], [True] * 4, [1.0] * 4)
    assert top_k(ties, 50).tolist() == [False, True, True, False]  # equal returns: shorter, then earlier
    with pytest.raises(ValueError, match="none of the 1 episodes succeeded"):
        success_only(store_of([2], [False], [0.0]))
    with pytest.raises(ValueError, match="top-k-percent"):
        top_k(store, 0)


def test_curate_composes_filters_and_names_unknown_methods() -> None:
    store = store_of([2, 3, 2, 4], [True, False, True, True], [1.0, 5.0, 3.0, 0.0])
    both = Curation(CurationConfig(methods=("success-only", "top-k"), top_k_percent=50), store)
    assert both.keep.tolist() == [False, False, True, False] and both.weights is None
    assert both.kept_rows.tolist() == [False] * 5 + [True] * 2 + [False] * 4
    assert both.fit_store().num_episodes == 1
    iw = Curation(CurationConfig(methods=("iw-sft",)), store)  # iw-sft filters on success by default
    assert iw.keep.tolist() == [True, False, True, True]
    assert iw.fit_store() is store  # its warm-up is BC on all data
    with pytest.raises(ValueError, match="unknown curation method.*bogus.*choose from"):
        Curation(CurationConfig(methods=("bogus",)), store)


def test_returns_to_go_by_hand() -> None:
    reward = np.array([1, 1, 1, 0, 2], dtype=np.float32)
    got = returns_to_go(reward, np.array([3, 5]), discount=0.5)
    np.testing.assert_allclose(got, [1.75, 1.5, 1.0, 1.0, 2.0])


def test_advantage_weights_by_hand() -> None:
    returns, values = np.array([0.0, 2.0, 5.0, 5.0]), np.array([1.0, 1.0, 5.0, 5.0])
    # advantages -1, 1, 0, 0 with std sqrt(0.5): standardized -1.414, 1.414, 0, 0
    a = np.array([-1, 1, 0, 0]) / np.sqrt(0.5)
    np.testing.assert_allclose(advantage_weights(returns, values, beta=2.0, max_weight=20), np.exp(a / 2))
    np.testing.assert_allclose(
        advantage_weights(returns, values, beta=0.1, max_weight=3.0), [np.exp(-a[1] / 0.1), 3, 1, 1]
    )
    with pytest.raises(ValueError, match="beta > 0"):
        advantage_weights(returns, values, beta=0, max_weight=1)


def test_awr_prefers_the_better_action_from_the_same_states() -> None:
    """Two operators from the same starts: the one whose episodes earn more gets the larger weights."""
    lengths = [5] * 8
    good = np.tile(np.repeat([True, False], 5), 4)
    store = store_of(lengths, [True, False] * 4, [5.0, 0.0] * 4, reward=good.astype(np.float32))
    store.obs[STATE][:] = np.repeat(np.arange(5, dtype=np.float32)[None], 8, 0).reshape(-1, 1).repeat(3, 1)
    w = awr_weights(store, beta=1.0, max_weight=20.0, discount=0.99, value_steps=300, seed=0)
    assert w[good].min() > 1.0 > w[~good].max()
    with pytest.raises(ValueError, match="needs per-step rewards"):
        awr_weights(store_of([2], [True], [1.0]), 1.0, 20.0, 0.99, 10, 0)


def test_iw_sft_weights_by_hand() -> None:
    index = np.array([0, 0, 1, 2])
    logq, logref = np.array([0.2, 0.4, -0.5, 10.0]), np.zeros(4)
    got = iw_sft_weights(index, logq, logref, temperature=1.0, max_weight=16.0)
    np.testing.assert_allclose(got, [np.exp(0.3), np.exp(0.3), np.exp(-0.5), 16.0])
    np.testing.assert_allclose(
        iw_sft_weights(index, logq, logref, temperature=2.0, max_weight=16.0)[:3],
        [np.exp(0.6), np.exp(0.6), np.exp(-1.0)],
    )


def test_quality_scores_return_times_smoothness() -> None:
    smooth = np.zeros((4, 2), np.float32)
    jumpy = np.tile(np.array([[5, -5], [-5, 5]], np.float32), (2, 1))
    store = store_of(
        [4, 4, 4, 4],
        [False, True, True, True],
        [0.0, 1.0, 1.0, 0.5],
        actions=np.concatenate([smooth, smooth + 0.1, jumpy, smooth]),
    )
    scores = quality_scores(store)
    assert scores[0] == 0.0  # the lowest return
    assert scores[1] == pytest.approx(1.0)  # best return, smooth (median roughness is 0: return only)
    assert scores[3] == pytest.approx(0.5)
    assert scores[2] == pytest.approx(1.0)  # with every other episode smooth, there is no scale to judge by
    rough = np.concatenate([smooth + np.linspace(0, 1, 4, dtype=np.float32)[:, None]] * 3 + [jumpy])
    store = store_of([4, 4, 4, 4], [True] * 4, [1.0] * 4, actions=rough)
    scores = quality_scores(store)
    assert scores[:3] == pytest.approx([np.exp(-1)] * 3) and scores[3] < 0.01


def test_normalize_weights_mean_one_over_kept() -> None:
    w = normalize_weights(np.array([1.0, 3.0, 100.0, 0.0]), np.array([True, True, False, True]))
    np.testing.assert_allclose(w, [0.75, 2.25, 0.0, 0.0])
    with pytest.raises(ValueError, match="zero on every kept sample"):
        normalize_weights(np.zeros(3), np.ones(3, bool))


def test_median_of_means_bounds_an_outlier_block() -> None:
    clean = torch.linspace(0.0, 1.0, 64)
    blocks = 8
    clean_means = torch.stack([b.mean() for b in torch.tensor_split(clean, blocks)])
    for outlier in (1e3, 1e9, -1e9):
        poisoned = clean.clone().requires_grad_(True)
        values = poisoned.detach().clone()
        values[8:16] = outlier  # one whole block replaced
        poisoned = values.clone().requires_grad_(True)
        robust = median_of_means(poisoned, blocks)
        assert clean_means.min() <= robust <= clean_means.max()  # bounded, whatever the outlier
        robust.backward()
        assert poisoned.grad[8:16].abs().sum() == 0  # the outlier block pulls on nothing
        assert abs(float(poisoned.detach().mean())) > abs(outlier) / 10  # while the mean follows it
    assert median_of_means(torch.tensor([1.0, 2.0, 3.0, 10.0]), 4) == 2.5
    assert median_of_means(torch.tensor([1.0, 3.0, 2.0]), 1) == 2.0
    with pytest.raises(ValueError, match="mom-blocks"):
        median_of_means(torch.ones(4), 5)


def test_curation_reduce_weights_then_reduces() -> None:
    store = store_of([2, 2], [True, True], [1.0, 1.0])
    losses, weights = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.0, 1.0, 1.0, 2.0])
    uniform = Curation(CurationConfig(), store)
    assert uniform.reduce(losses, {}) == 2.5
    assert uniform.reduce(losses, {SAMPLE_WEIGHT: weights}) == pytest.approx(13 / 4)
    robust = Curation(CurationConfig(methods=("median-of-means",), mom_blocks=2), store)
    robust.start(WindowSampler(store, 1, 1), batch_size=4, total_steps=1, run_dir=Path("."))
    assert robust.reduce(losses, {SAMPLE_WEIGHT: weights}) == pytest.approx((1.0 + 5.5) / 2)


def test_sampler_draws_only_kept_samples_with_their_weights() -> None:
    store = store_of([3, 3, 3], [True, False, True], [1.0, 0.0, 1.0])
    sampler = WindowSampler(store, n_obs=1, horizon=2)
    kept = np.repeat([True, False, True], 3)
    sampler.restrict(kept, np.arange(9, dtype=np.float32))
    batch = sampler.sample(500, torch.Generator().manual_seed(0))
    rows = {int(x) for x in batch[SAMPLE_WEIGHT]}
    assert rows == {0, 1, 2, 6, 7, 8}  # the weight of sample i is i: only kept samples, each with its own
    np.testing.assert_array_equal(batch[STATE][:, 0].numpy(), store.obs[STATE][batch[SAMPLE_WEIGHT].long().numpy()])


# ---- integration: curation x policy families through the trainer -----------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("curation") / "fork-mix"
    main(
        [
            "collect",
            "toy/fork",
            "--episodes",
            "30",
            "--out",
            str(out),
            "--no-progress",
            "--mixture",
            "expert=0.4",
            "random=0.4",
            "corrupted=0.2",
        ]
    )
    return out


def train_args(data: Path, out: Path, methods: list[str], policy: str = "mlp", steps: int = 40) -> list[str]:
    return [
        "train",
        str(data),
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--batch-size",
        "32",
        "--eval-every",
        "0",
        "--save-every",
        "20",
        "--log-every",
        "10",
        "--device",
        "cpu",
        "--no-progress",
        "--curation.methods",
        *methods,
        "--curation.value-steps",
        "50",
        "--curation.iw-every",
        "5",
        "--curation.iw-warmup",
        "0.5",
        f"policy:{policy}",
    ]


@pytest.mark.parametrize("policy", ["mlp", "diffusion", "flow", "gmm"])
@pytest.mark.parametrize("methods", [["success-only"], ["top-k", "median-of-means"], ["quality"], ["awr"], ["iw-sft"]])
def test_every_curation_trains_every_family(mixed: Path, tmp_path: Path, policy: str, methods: list[str]) -> None:
    run = tmp_path / "run"
    main(train_args(mixed, run, methods, policy, steps=20))
    losses = [json.loads(line).get("loss") for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x) for x in losses if x is not None)
    saved = TrainConfig.from_json(json.loads((run / "config.json").read_text()))
    assert saved.curation.methods == tuple(methods)
    assert (run / REFERENCE_FILE).exists() == ("iw-sft" in methods)


def test_filters_decide_what_the_policy_is_fitted_on(mixed: Path, tmp_path: Path) -> None:
    """Knn's memory is exactly the frames it was fitted on: with success-only, the successful
    training episodes' frames and nothing else."""
    main(train_args(mixed, tmp_path / "knn", ["success-only"], policy="knn"))
    policy = load_policy(tmp_path / "knn")
    train_store, _ = read_dataset(mixed).split(0.1, 0)
    kept = train_store.episodes["success"]
    assert 0 < kept.sum() < train_store.num_episodes
    assert len(policy.memory_keys) == train_store.episode_lengths[kept].sum()


def test_iw_sft_run_resumes_bit_identically(mixed: Path, tmp_path: Path) -> None:
    full, cut = tmp_path / "full", tmp_path / "cut"
    main(train_args(mixed, full, ["iw-sft", "awr"]))
    shutil.copytree(full, cut)
    shutil.rmtree(cut / "checkpoints" / "step-0000040")
    (cut / "checkpoints" / "latest.json").write_text(json.dumps({"step": 20, "dir": "step-0000020"}))
    (cut / REFERENCE_FILE).unlink()  # saved at the warm-up's end (step 20): the resumed run makes it again
    main([*train_args(mixed, cut, ["iw-sft", "awr"]), "--resume"])
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = (
            load_file(full / "checkpoints" / "step-0000040" / name),
            load_file(cut / "checkpoints" / "step-0000040" / name),
        )
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_config_round_trip_and_cli_error(mixed: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = TrainConfig(
        dataset=mixed, policy=MLPConfig(), curation=CurationConfig(methods=("awr", "median-of-means"), awr_beta=0.5)
    )
    assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json(), default=str))) == cfg
    with pytest.raises(SystemExit, match="unknown curation method"):
        main(train_args(mixed, tmp_path / "bad", ["filtered"]))


def test_bench_curation_suite_pairs_every_curation_with_uniform(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "curation"
    main(
        [
            "bench",
            "--suite",
            "curation",
            "--tasks",
            "toy/reach",
            "--curations",
            "uniform",
            "success-only",
            "awr+median-of-means",
            "--mixture",
            "expert=0.5",
            "random=0.5",
            "--num-seeds",
            "2",
            "--episodes",
            "20",
            "--steps",
            "20",
            "--batch-size",
            "32",
            "--eval-episodes",
            "10",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    arms = summary["tasks"]["toy/reach"]
    assert list(arms) == ["uniform", "success-only", "awr+median-of-means"] and summary["baseline"] == "uniform"
    assert "vs_baseline" not in arms["uniform"]
    for name in ("success-only", "awr+median-of-means"):
        vs = arms[name]["vs_baseline"]
        assert vs["difference"] == pytest.approx(arms[name]["mean_success"] - arms["uniform"]["mean_success"])
        assert vs["t95_over_seeds"][0] <= vs["difference"] <= vs["t95_over_seeds"][1]
        assert 0 <= vs["mcnemar"]["p_value"] <= 1 and f"| `toy/reach` | {name} |" in printed
    sources = set(read_dataset(out / "toy-reach" / "data").episodes["source"])
    assert sources == {"expert", "random0.5"}
    run = json.loads((out / "toy-reach" / "seed1" / "awr+median-of-means" / "config.json").read_text())
    assert run["curation"]["methods"] == ["awr", "median-of-means"]
