"""Families bet, knn, mcnn: their small contract configs, what each promises, and that they solve toy/fork."""

from dataclasses import replace

import numpy as np
import pytest
import test_policies as contract
import torch

from protege.config import EVAL_SEED, CollectConfig, EvalConfig, TrainConfig
from protege.data.windows import WindowSampler
from protege.demos.collect import collect
from protege.evaluate.actor import PolicyActor
from protege.evaluate.evaluate import evaluate
from protege.formats import read_dataset
from protege.policies import FeatureSpec
from protege.policies.bet import BETConfig, BETPolicy
from protege.policies.knn import KNNConfig, KNNPolicy
from protege.policies.mcnn import MCNNConfig, MCNNPolicy
from protege.policies.nets import memory
from protege.runner import rollout
from protege.tasks import make_task
from protege.train.trainer import train

SMALL = contract.SMALL
store = contract.store  # the contract's fixture: a small random dataset


def fitted(variant, store):
    torch.manual_seed(0)
    config = SMALL[variant]()
    policy = {"bet": BETPolicy, "knn": KNNPolicy, "mcnn": MCNNPolicy}[config.name](
        config, FeatureSpec.from_store(store)
    )
    policy.fit(store)
    return policy.eval(), WindowSampler(store, config.n_obs, config.horizon)


def observations(batch):
    return {k: v for k, v in batch.items() if k.startswith("observation.")}


def test_nearest_is_exact_across_blocks(monkeypatch):
    monkeypatch.setattr(memory, "QUERY_BLOCK", 7)
    monkeypatch.setattr(memory, "KEY_BLOCK", 5)
    keys = torch.randn(53, 4, generator=torch.Generator().manual_seed(0))
    queries = torch.cat([keys[:10], torch.randn(20, 4, generator=torch.Generator().manual_seed(1))])
    dist, idx = memory.nearest(queries, keys, k=3)
    exact = torch.cdist(queries, keys, compute_mode="donot_use_mm_for_euclid_dist").topk(3, largest=False)
    assert torch.equal(idx, exact.indices)
    torch.testing.assert_close(dist, exact.values)
    assert torch.equal(dist[:10, 0], torch.zeros(10))  # a stored key is at distance exactly 0 from itself


def test_kmeans_finds_separated_clusters_and_follows_its_seed():
    means = torch.tensor([[-5.0, 0.0], [5.0, 0.0], [0.0, 8.0]])
    points = means.repeat_interleave(100, 0) + 0.1 * torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    centers = memory.kmeans(points, 3, seed=0)
    order = memory.nearest(means, centers)[1][:, 0]
    torch.testing.assert_close(centers[order], points.view(3, 100, 2).mean(1))
    assert torch.equal(memory.kmeans(points, 3, seed=0), centers)
    with pytest.raises(ValueError, match="at least k=400"):
        memory.kmeans(points, 400)


def test_bet_bins_are_seeded_and_bin_plus_offset_is_the_chunk(store):
    policy, sampler = fitted("bet", store)
    again, _ = fitted("bet", store)
    assert torch.equal(policy.bins, again.bins)
    other = BETPolicy(replace(policy.config, kmeans_seed=1), policy.spec)
    other.fit(store)
    assert not torch.equal(policy.bins, other.bins)
    chunks = policy.normalized_action(sampler.gather(torch.arange(len(sampler))))
    bin_index, offsets = policy.bin_targets(chunks)
    assert torch.equal(bin_index, torch.cdist(chunks.flatten(1), policy.bins).argmin(1))
    torch.testing.assert_close(policy.bins[bin_index].view_as(chunks) + offsets, chunks)
    assert len(bin_index.unique()) == policy.config.num_bins  # every bin holds training chunks


def test_bet_predicts_the_drawn_bin_plus_its_offset(store):
    policy, sampler = fitted("bet", store)
    features = policy.encode_obs(sampler.gather(torch.arange(5)))
    with torch.no_grad():
        policy.head.bias[: policy.config.num_bins] = torch.arange(policy.config.num_bins) * 100.0  # last bin certain
        logits, offsets = policy._forward(features)
        chunk = policy.predict_normalized(features, torch.rand(5))
    torch.testing.assert_close(chunk, policy.bins[-1].view_as(chunk[0]) + offsets[:, -1])


def test_knn_replays_the_stored_chunk_at_a_training_frame(store):
    policy, sampler = fitted("knn", store)
    batch = sampler.gather(torch.arange(len(sampler)))
    torch.testing.assert_close(policy.predict(observations(batch)), batch["action"], rtol=0, atol=1e-5)
    assert not any(True for _ in policy.parameters())
    loss = policy.loss(batch)  # leave-one-out: a training frame is not scored against itself
    assert not loss.requires_grad and (loss > 0).all()
    fresh = KNNPolicy(policy.config, policy.spec)  # an unfitted policy takes a memory of any size
    fresh.load_state_dict(policy.state_dict(), strict=True)
    assert torch.equal(fresh.memory_keys, policy.memory_keys)


def test_mcnn_returns_the_memory_at_a_memory_and_stays_within_bound(store):
    policy, _ = fitted("mcnn", store)
    with torch.no_grad():
        policy.net[-1].bias.fill_(50.0)  # saturate tanh: the largest deviation the network can ask for
        at_memory = policy.predict_normalized(policy.memory_keys, None)
        near = policy.memory_keys + 0.01 * torch.randn_like(policy.memory_keys)
        queries = torch.cat([near, 100 * torch.randn(20, policy.memory_keys.shape[1])])
        anchor = policy.memory_chunks[memory.nearest(queries, policy.memory_keys)[1][:, 0]]
        deviation = (policy.predict_normalized(queries, None) - anchor).abs()
    assert torch.equal(at_memory, policy.memory_chunks)
    assert (deviation <= policy.config.bound + 1e-6).all()
    assert (deviation[-20:] > 0.99 * policy.config.bound).all()  # far away it can use the whole bound
    assert (deviation[:8] < deviation[-20:].min()).all()  # near a memory it is held closer


@pytest.fixture(scope="module")
def fork_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("fork") / "data"
    collect(CollectConfig(task="toy/fork", episodes=200, out=out, progress=False))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("config", [BETConfig(embed_dim=64), MCNNConfig()], ids=["bet", "mcnn"])
def test_trained_family_solves_fork(config, fork_data, tmp_path):
    """3000 steps, where mlp averages the modes and fails (~0.15); an undertrained mlp (~1000 steps)
    still gets round the disc by luck, so a smaller budget would prove nothing."""
    run = train(
        TrainConfig(
            dataset=fork_data,
            policy=config,
            out=tmp_path / config.name,
            steps=3000,
            eval_every=0,
            save_every=3000,
            device="cpu",
            progress=False,
        )
    )
    report = evaluate(EvalConfig(checkpoints=(run,), task="toy/fork", episodes=50, device="cpu", progress=False))
    assert report["policies"][config.name]["success_rate"] >= 0.7, report


@pytest.mark.slow
def test_knn_solves_fork(fork_data):
    store = read_dataset(fork_data)
    policy = KNNPolicy(KNNConfig(), FeatureSpec.from_store(store))
    policy.fit(store)
    result = rollout(make_task("toy/fork"), PolicyActor(policy.eval()), EVAL_SEED + np.arange(50), progress=False)
    assert result.success.mean() >= 0.7
