"""Contract tests, parametrized over every registered policy family (and denoiser variant)."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from protege.data.store import EpisodeStore
from protege.data.windows import WindowSampler
from protege.policies import POLICIES, FeatureSpec, make_policy, policy_class
from protege.policies.diffusion import DiffusionConfig
from protege.policies.storage import load_policy, save_policy
from protege.train.checkpoint import save_checkpoint

SMALL = {
    "mlp": lambda: policy_class("mlp").config_class(n_obs=2, horizon=4, n_action_steps=2, hidden_dim=32, depth=2),
    "diffusion": lambda: DiffusionConfig(
        n_obs=2, horizon=8, n_action_steps=4, hidden_dim=32, depth=2, num_inference_steps=5, timestep_spacing="leading"
    ),
    "diffusion-trailing": lambda: DiffusionConfig(
        n_obs=2, horizon=8, n_action_steps=4, hidden_dim=32, depth=2, num_inference_steps=2, timestep_spacing="trailing"
    ),
    "diffusion-unet": lambda: DiffusionConfig(
        n_obs=2,
        horizon=8,
        n_action_steps=4,
        denoiser="unet",
        unet_dims=(8, 16),
        num_inference_steps=3,
        timestep_spacing="leading",
    ),
    "gaussian": lambda: policy_class("gaussian").config_class(
        n_obs=2, horizon=4, n_action_steps=2, hidden_dim=32, depth=2
    ),
    "gmm": lambda: policy_class("gmm").config_class(
        n_obs=2, horizon=4, n_action_steps=2, hidden_dim=32, depth=2, num_modes=3
    ),
    "gmm-mode": lambda: policy_class("gmm").config_class(
        n_obs=2, horizon=4, n_action_steps=2, hidden_dim=32, depth=2, num_modes=3, sample=False
    ),
    "flow": lambda: policy_class("flow").config_class(
        n_obs=2, horizon=8, n_action_steps=4, hidden_dim=32, depth=2, num_inference_steps=4, variance_hidden_dim=16
    ),
    "flow-adaptive": lambda: policy_class("flow").config_class(
        n_obs=2, horizon=8, n_action_steps=4, hidden_dim=32, depth=2, adaptive=True, max_steps=4, variance_hidden_dim=16
    ),
    "flow-transformer": lambda: policy_class("flow").config_class(
        n_obs=2,
        horizon=8,
        n_action_steps=4,
        denoiser="transformer",
        transformer_dim=16,
        transformer_depth=2,
        transformer_heads=2,
        num_inference_steps=3,
        variance_hidden_dim=16,
    ),
    "mip": lambda: policy_class("mip").config_class(n_obs=2, horizon=8, n_action_steps=4, hidden_dim=32, depth=2),
    "mip-noise": lambda: policy_class("mip").config_class(
        n_obs=2, horizon=8, n_action_steps=4, hidden_dim=32, depth=2, inference_noise=0.1
    ),
    "diffusion-transformer": lambda: DiffusionConfig(
        n_obs=2,
        horizon=8,
        n_action_steps=4,
        denoiser="transformer",
        timestep_spacing="leading",
        transformer_dim=16,
        transformer_depth=2,
        transformer_heads=2,
        num_inference_steps=3,
    ),
    "bet": lambda: policy_class("bet").config_class(
        n_obs=2, horizon=4, n_action_steps=2, num_bins=8, n_layers=1, n_heads=2, embed_dim=16
    ),
    "knn": lambda: policy_class("knn").config_class(n_obs=2, horizon=4, n_action_steps=2),
    "knn-distance": lambda: policy_class("knn").config_class(
        n_obs=2, horizon=4, n_action_steps=2, k=3, weighting="distance"
    ),
    "mcnn": lambda: policy_class("mcnn").config_class(
        n_obs=2, horizon=4, n_action_steps=2, num_memories=8, hidden_dim=32, depth=2
    ),
    # a one-step student of an untrained flow teacher, saved in the test's working folder
    "distilled": lambda: policy_class("distilled").config_class(
        n_obs=2,
        horizon=8,
        n_action_steps=4,
        hidden_dim=32,
        depth=2,
        teacher=str(
            save_policy(
                make_policy(SMALL["flow"](), FeatureSpec({"observation.state": (5,), "observation.extra": (3,)}, 2)),
                "teacher",
            )
        ),
    ),
}
assert set(POLICIES) <= set(SMALL), f"add a small config for every registered policy: {set(POLICIES) - set(SMALL)}"
VARIANTS = sorted(SMALL)


@pytest.fixture(scope="module")
def store():
    rng = np.random.default_rng(0)
    lengths = [12, 9, 15]
    n = sum(lengths)
    return EpisodeStore(
        obs={
            "observation.state": rng.normal(size=(n, 5)).astype(np.float32),
            "observation.extra": rng.normal(size=(n, 3)).astype(np.float32),
        },
        action=rng.uniform(-2, 3, size=(n, 2)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
    )


def build(variant, store):
    torch.manual_seed(0)
    config = SMALL[variant]()
    policy = make_policy(config, FeatureSpec.from_store(store))
    policy.fit(store)
    return policy, WindowSampler(store, config.n_obs, config.horizon)


@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_is_per_sample_and_differentiable(variant, store):
    policy, sampler = build(variant, store)
    batch = sampler.gather(torch.arange(7))
    loss = policy.loss(batch)
    assert loss.shape == (7,) and torch.isfinite(loss).all() and (loss >= 0).all()
    if not any(p.requires_grad for p in policy.parameters()):  # nonparametric (knn): nothing to train
        assert not loss.requires_grad
        return
    loss.mean().backward()
    assert all(p.grad is not None for p in policy.parameters() if p.requires_grad)


@pytest.mark.parametrize("variant", VARIANTS)
def test_predict_shapes_and_fixed_noise_determinism(variant, store):
    policy, sampler = build(variant, store)
    policy.eval()
    batch = sampler.gather(torch.arange(6))
    obs = {k: v for k, v in batch.items() if k.startswith("observation.")}
    noise = policy.sample_noise(6, torch.Generator().manual_seed(1))
    a = policy.predict(obs, noise=noise)
    b = policy.predict(obs, noise=noise)
    assert a.shape == (6, policy.config.horizon, 2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    if noise is not None:  # generative: the noise argument steers the sample
        other = policy.predict(obs, noise=policy.sample_noise(6, torch.Generator().manual_seed(2)))
        assert not torch.equal(a, other)


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_load_is_exact(variant, store, tmp_path):
    policy, sampler = build(variant, store)
    optimizer = torch.optim.AdamW([{"params": list(policy.parameters())}])  # a param group may be empty (knn)
    loss = policy.loss(sampler.gather(torch.arange(4))).mean()
    if loss.requires_grad:
        loss.backward()
        optimizer.step()
    meta = {"policy": {"name": policy.config.name, **vars(policy.config)}, "spec": policy.spec.to_json(), "task": ""}
    save_checkpoint(tmp_path, 1, policy, None, meta, optimizer, {"torch": torch.get_rng_state()})
    loaded = load_policy(tmp_path)
    saved = load_file(tmp_path / "checkpoints" / "step-0000001" / "model.safetensors")
    assert set(saved) == set(policy.state_dict())
    assert any(k.startswith("normalizer.") for k in saved)  # stats travel with the weights
    for key, value in policy.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    policy.eval()
    obs = {k: v for k, v in sampler.gather(torch.arange(3)).items() if k.startswith("observation.")}
    noise = policy.sample_noise(3, torch.Generator().manual_seed(0))
    assert torch.equal(policy.predict(obs, noise=noise), loaded.predict(obs, noise=noise))


@pytest.mark.parametrize("variant", VARIANTS)
def test_bad_shapes_are_named(variant, store):
    policy, sampler = build(variant, store)
    batch = sampler.gather(torch.arange(3))
    wrong_action = dict(batch, action=torch.zeros(3, policy.config.horizon, 3))
    with pytest.raises(ValueError, match="dimension 3 but the policy expects 2"):
        policy.loss(wrong_action)
    with pytest.raises(ValueError, match="'observation.state' must have shape"):
        policy.predict({**batch, "observation.state": torch.zeros(3, policy.config.n_obs, 4)})
    with pytest.raises(KeyError, match="missing 'observation.extra'"):
        policy.predict({"observation.state": batch["observation.state"]})


def test_config_validation():
    with pytest.raises(ValueError, match="n_action_steps"):
        DiffusionConfig(horizon=4, n_action_steps=5)
    with pytest.raises(ValueError, match="num_inference_steps"):
        DiffusionConfig(num_train_timesteps=10, num_inference_steps=20)
    with pytest.raises(ValueError, match="timestep_spacing must be 'leading' or 'trailing', got 'linspace'"):
        DiffusionConfig(timestep_spacing="linspace")
    with pytest.raises(ValueError, match="divisible by 4"):
        make_policy(
            DiffusionConfig(horizon=6, n_action_steps=2, denoiser="unet", unet_dims=(8, 16, 32)),
            FeatureSpec({"observation.state": (2,)}, 2),
        )


def test_ddim_timestep_spacing():
    """Trailing spacing starts every schedule at the noisiest training step; leading never does."""
    spec = FeatureSpec({"observation.state": (2,)}, 2)

    def steps(n: int, spacing: str) -> list[int]:
        return make_policy(DiffusionConfig(num_inference_steps=n, timestep_spacing=spacing), spec).timesteps()

    assert steps(10, "leading") == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0] and steps(1, "leading") == [0]
    assert steps(10, "trailing") == [99, 89, 79, 69, 59, 49, 39, 29, 19, 9] and steps(1, "trailing") == [99]
    assert steps(3, "trailing") == [99, 66, 32]
    for n in range(1, 101):
        trailing = steps(n, "trailing")
        assert (
            trailing[0] == 99
            and len(set(trailing)) == n
            and trailing == sorted(trailing, reverse=True)
            and trailing[-1] >= 0
        )


def test_unknown_policy_lists_known_ones():
    with pytest.raises(KeyError, match="unknown policy 'nope'.*diffusion.*mlp"):
        policy_class("nope")


@pytest.mark.parametrize("variant", VARIANTS)
def test_mask_padding_is_one_switch_for_every_family(variant, store):
    """Every family reads the base's ``mask_padding``: it changes the loss of windows that reach past
    an episode's end, and only theirs."""
    policy, sampler = build(variant, store)
    batch = sampler.gather(torch.arange(len(sampler)))
    padded = batch["action_is_pad"].any(dim=1)
    assert padded.any() and (~padded).any()

    def loss(mask: bool) -> torch.Tensor:
        policy.config.mask_padding = mask
        torch.manual_seed(0)
        with torch.no_grad():
            return policy.loss(batch)

    masked, fitted = loss(True), loss(False)
    torch.testing.assert_close(masked[~padded], fitted[~padded], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(masked[padded], fitted[padded]), "the family ignores mask_padding"


def test_gmm_masked_loss_is_the_marginal_likelihood_of_the_kept_steps(store):
    """A diagonal Gaussian's marginal over the real steps is the density with the padded dims dropped."""
    policy, sampler = build("gaussian", store)
    batch = sampler.gather(torch.arange(len(sampler)))
    row = int(torch.nonzero(batch["action_is_pad"].any(dim=1))[0])
    one = {k: v[row : row + 1] for k, v in batch.items()}
    means, std, _ = policy._mixture(policy.encode_obs(one))
    kept = (~one["action_is_pad"][0]).repeat_interleave(policy.spec.action_dim)
    target = policy.normalized_action(one).flatten(1)[0]
    normal = torch.distributions.Normal(means[0, 0, kept], std[0, 0, kept])
    nll = -(normal.log_prob(target[kept]).sum() + 0.5 * torch.log(torch.tensor(2 * torch.pi)) * kept.sum())
    expected = nll / kept.sum() - torch.log(torch.tensor(policy.config.min_std))
    torch.testing.assert_close(policy.loss(one)[0], expected)


def test_obs_noise_perturbs_state_only_while_training(store):
    config = policy_class("mlp").config_class(obs_noise=0.1)
    policy = make_policy(config, FeatureSpec.from_store(store))
    policy.fit(store)
    obs = WindowSampler(store, config.n_obs, config.horizon).sample(8, torch.Generator().manual_seed(0))
    clean = policy.eval().encode_obs(obs)
    assert torch.equal(clean, policy.encode_obs(obs))
    noisy = policy.train().encode_obs(obs)
    assert 0.05 < (noisy - clean).std().item() < 0.2
    with pytest.raises(ValueError, match="obs_noise must be >= 0"):
        policy_class("mlp").config_class(obs_noise=-0.1)


@pytest.mark.parametrize("family", ["knn", "mcnn"])
def test_memory_families_refuse_obs_noise(family):
    with pytest.raises(ValueError, match=f"{family} embeds its memories once, when fitted: obs_noise must be 0"):
        policy_class(family).config_class(obs_noise=0.05)
