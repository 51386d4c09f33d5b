"""Actions that are absolute targets for an observed coordinate are learned as offsets from it."""

import numpy as np
import pytest
import torch

from protege.data.normalize import tracked_coordinates
from protege.data.store import ACTION, EpisodeStore
from protege.data.windows import WindowSampler
from protege.policies import FeatureSpec, make_policy, policy_class
from protege.policies.storage import load_policy, policy_config_from_json, save_policy


def position_store(seed: int = 0, lengths: tuple[int, ...] = (300, 250, 400)) -> EpisodeStore:
    """A point agent sent to absolute targets near itself (a PushT-like action), with a distractor."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    agent = 250 + np.cumsum(rng.normal(scale=10.0, size=(n, 2)), axis=0)  # a random walk
    other = rng.uniform(0, 500, size=(n, 3))
    action = agent + rng.normal(scale=3.0, size=(n, 2))
    return EpisodeStore(
        obs={"observation.state": np.concatenate([other[:, :1], agent, other[:, 1:]], 1).astype(np.float32)},
        action=action.astype(np.float32),
        episode_ends=np.cumsum(lengths),
    )


def test_position_targets_are_tracked_and_velocities_are_not():
    rng = np.random.default_rng(1)
    state = rng.uniform(-1, 1, size=(500, 4))
    targets = state[:, [2, 0]] + rng.normal(scale=0.05, size=(500, 2))
    assert tracked_coordinates(targets, state).tolist() == [2, 0]
    velocities = rng.uniform(-1, 1, size=(500, 2))
    assert tracked_coordinates(velocities, state).tolist() == [-1, -1]
    mixed = np.column_stack([targets[:, 0], velocities[:, 0]])
    assert tracked_coordinates(mixed, state).tolist() == [2, -1]
    assert tracked_coordinates(targets, np.zeros((500, 0))).tolist() == [-1, -1]


def test_policy_learns_offsets_from_the_current_frame():
    store = position_store()
    policy = make_policy(
        policy_class("mlp").config_class(n_obs=2, horizon=3, n_action_steps=1), FeatureSpec.from_store(store)
    )
    policy.fit(store)
    assert policy.action_reference.tolist() == [1, 2]
    batch = WindowSampler(store, 2, 3).gather(torch.arange(10))
    origin = batch["observation.state"][:, -1, 1:3].unsqueeze(1)
    expected = policy.normalizer.normalize(ACTION, batch[ACTION] - origin)
    torch.testing.assert_close(policy.normalized_action(batch), expected)
    # the offsets span about +-3 sigma of the walk and the 3 px noise, not the walk's whole range
    half_range = (store.action.max(0) - store.action.min(0)) / 2
    assert (policy.normalizer.action__scale.numpy() < half_range / 2).all()


def test_retrieval_replays_the_recorded_absolute_actions():
    """Knn stores normalized offsets and adds the current position back: exact demo actions."""
    store = position_store()
    policy = make_policy(
        policy_class("knn").config_class(n_obs=1, horizon=2, n_action_steps=1), FeatureSpec.from_store(store)
    )
    policy.fit(store)
    batch = WindowSampler(store, 1, 2).gather(torch.arange(20))
    pred = policy.predict({"observation.state": batch["observation.state"]})
    torch.testing.assert_close(pred, batch[ACTION], atol=1e-3, rtol=0)


def test_off_learns_raw_actions_and_has_no_reference(tmp_path):
    store = position_store()
    config = policy_class("mlp").config_class(relative_actions="off")
    policy = make_policy(config, FeatureSpec.from_store(store))
    policy.fit(store)
    assert not hasattr(policy, "action_reference")
    half_range = (store.action.max(0) - store.action.min(0)) / 2  # min-max of the recorded actions
    np.testing.assert_allclose(policy.normalizer.action__scale.numpy(), half_range, rtol=1e-5)
    with pytest.raises(ValueError, match="relative_actions"):
        policy_class("mlp").config_class(relative_actions="yes")


def test_reference_is_saved_with_the_policy(tmp_path):
    store = position_store()
    policy = make_policy(policy_class("mlp").config_class(), FeatureSpec.from_store(store))
    policy.fit(store)
    loaded = load_policy(save_policy(policy, tmp_path / "p"))
    assert loaded.action_reference.tolist() == [1, 2]
    obs = {"observation.state": torch.as_tensor(store.obs["observation.state"][:4]).unsqueeze(1)}
    torch.testing.assert_close(loaded.predict(obs), policy.predict(obs))


def test_checkpoints_written_before_the_setting_learned_raw_actions():
    assert policy_config_from_json({"name": "diffusion"}).relative_actions == "off"


def test_velocity_actions_are_learned_exactly_as_before():
    """Tasks whose actions track no coordinate (toy, Meta-World, Fetch, PointMaze: velocities and
    deltas) train and predict the same with ``auto`` as with ``off``."""
    rng = np.random.default_rng(2)
    lengths = (20, 30)
    store = EpisodeStore(
        obs={"observation.state": rng.uniform(-1, 1, size=(50, 4)).astype(np.float32)},
        action=rng.uniform(-1, 1, size=(50, 2)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
    )
    spec = FeatureSpec.from_store(store)
    predictions = []
    for setting in ("auto", "off"):
        torch.manual_seed(0)
        policy = make_policy(policy_class("diffusion").config_class(relative_actions=setting, hidden_dim=32), spec)
        policy.fit(store)
        batch = WindowSampler(store, 2, 16).gather(torch.arange(8))
        obs = {"observation.state": batch["observation.state"]}
        noise = policy.sample_noise(8, torch.Generator().manual_seed(0))
        assert getattr(policy, "action_reference", torch.full((2,), -1)).tolist() == [-1, -1]
        predictions.append((policy.normalized_action(batch), policy.predict(obs, noise)))
    for a, b in zip(*predictions, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
