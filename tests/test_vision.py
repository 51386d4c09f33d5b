"""Policies that see: camera encoders, image normalization, uint8 windows, toy pictures, every family from pixels."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import latest_step_dir, state_dicts_equal
from test_policies import SMALL, VARIANTS

from protege.cli import main
from protege.data.normalize import IMAGE_STAT_FRAMES, Normalizer
from protege.data.store import IMAGE, PROPRIO, STATE, EpisodeStore
from protege.data.windows import WindowSampler
from protege.policies import FeatureSpec, make_policy
from protege.policies.nets.vision import ImageEncoder, center_crop, random_crop
from protege.policies.storage import load_policy, save_policy
from protege.tasks import make_task, task_for
from protege.tasks.toy import POINT

VIDEO_FIXTURE = Path(__file__).parent / "fixtures" / "lerobot" / "video-v3"
FRAME = (16, 20, 3)


@pytest.fixture(scope="module")
def image_store() -> EpisodeStore:
    """Three short episodes with a camera (random frames whose brightness follows the action) and a state."""
    rng = np.random.default_rng(0)
    lengths = [12, 9, 15]
    n = sum(lengths)
    action = rng.uniform(-2, 3, size=(n, 2)).astype(np.float32)
    frames = rng.integers(0, 200, size=(n, *FRAME), dtype=np.uint8)
    frames[..., 0] = np.clip(40 * (action[:, :1, None] + 2), 0, 255).astype(np.uint8)
    return EpisodeStore(
        obs={IMAGE: frames, STATE: rng.normal(size=(n, 5)).astype(np.float32)},
        action=action,
        episode_ends=np.cumsum(lengths),
    )


@pytest.mark.parametrize("backbone,dim", [("small", 64), ("resnet18", 64), ("pixels", 192)])
@pytest.mark.parametrize("shape", [(96, 96, 3), (48, 64, 3)])
def test_encoder_shapes(backbone, dim, shape):
    encoder = ImageEncoder(shape, backbone, crop=0.875, keypoints=32)
    assert encoder.crop == (round(shape[0] * 0.875), round(shape[1] * 0.875))
    frames = torch.randint(0, 256, (5, *shape), dtype=torch.uint8)
    for mode in (True, False):
        assert encoder.train(mode)(frames).shape == (5, dim) == (5, encoder.out_dim)
    with pytest.raises(ValueError, match=r"frames must have shape \(B, "):
        encoder(frames[:, :-1])


def test_encoder_is_deterministic_under_a_seed():
    frames = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)

    def run() -> torch.Tensor:
        torch.manual_seed(3)
        encoder = ImageEncoder((32, 32, 3), "small").train()
        return encoder(frames)  # weights and random crops both from the seed

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)


def test_random_crops_are_windows_of_their_own_frame():
    frames = torch.randint(0, 256, (6, 12, 10, 3), dtype=torch.uint8)
    crops = random_crop(frames, (8, 7), torch.Generator().manual_seed(0))
    assert crops.shape == (6, 8, 7, 3)
    offsets = set()
    for frame, crop in zip(frames, crops):
        found = [(t, x) for t in range(5) for x in range(4) if torch.equal(frame[t : t + 8, x : x + 7], crop)]
        assert found, "a crop is not a window of its frame"
        offsets.add(found[0])
    assert len(offsets) > 1  # each frame draws its own window
    torch.testing.assert_close(center_crop(frames, (8, 6)), frames[:, 2:10, 2:8])


def test_augmentation_is_off_in_eval_mode():
    torch.manual_seed(0)
    encoder = ImageEncoder((24, 24, 3), "small", crop=0.75)
    frames = torch.randint(0, 256, (8, 24, 24, 3), dtype=torch.uint8)
    train_a, train_b = encoder.train()(frames), encoder(frames)
    assert not torch.equal(train_a, train_b)  # random crops
    eval_a, eval_b = encoder.eval()(frames), encoder(frames)
    torch.testing.assert_close(eval_a, eval_b, rtol=0, atol=0)
    centred = ImageEncoder((18, 18, 3), "small", crop=1.0)  # the same weights on the centre crop by hand
    centred.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(eval_a, centred.eval()(frames[:, 3:21, 3:21]))


def test_image_normalizer_is_per_channel_on_the_unit_range():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(50, 6, 7, 3), dtype=np.uint8)
    frames[..., 2] = 200  # a constant channel gets scale 1
    normalizer = Normalizer({IMAGE: (3,)}, {IMAGE: "image"})
    normalizer.fit({IMAGE: frames})
    x = frames.reshape(-1, 3) / 255.0
    offset, scale = normalizer._stats(IMAGE)
    np.testing.assert_allclose(offset.numpy(), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(scale.numpy()[:2], x.std(0)[:2], rtol=1e-5)
    assert scale[2] == 1.0
    many = rng.integers(0, 256, size=(IMAGE_STAT_FRAMES * 3, 2, 2, 3), dtype=np.uint8)
    normalizer.fit({IMAGE: many})  # fitted on evenly spaced frames only
    picked = many[np.unique(np.linspace(0, len(many) - 1, IMAGE_STAT_FRAMES).astype(int))].reshape(-1, 3) / 255.0
    np.testing.assert_allclose(normalizer._stats(IMAGE)[0].numpy(), picked.mean(0), rtol=1e-6)
    np.testing.assert_allclose(normalizer._stats(IMAGE)[1].numpy(), picked.std(0), rtol=1e-6)


def test_windows_keep_frames_uint8(image_store):
    sampler = WindowSampler(image_store, n_obs=2, horizon=4)
    batch = sampler.gather(torch.arange(5))
    assert batch[IMAGE].dtype == torch.uint8 and batch[IMAGE].shape == (5, 2, *FRAME)
    assert batch[STATE].dtype == torch.float32
    assert np.shares_memory(sampler.obs[IMAGE].numpy(), image_store.obs[IMAGE])  # no copy of the frames on the CPU


def build(variant: str, store: EpisodeStore, tmp_path: Path):
    torch.manual_seed(0)
    spec = FeatureSpec.from_store(store, (IMAGE, STATE))
    config = replace(SMALL[variant](), obs_keys=(IMAGE, STATE))
    if variant == "distilled":  # the teacher must see what the student sees
        teacher = make_policy(replace(SMALL["flow"](), obs_keys=(IMAGE, STATE)), spec)
        teacher.fit(store)
        config = replace(config, teacher=str(save_policy(teacher, tmp_path / "teacher")))
    policy = make_policy(config, spec)
    policy.fit(store)
    return policy, WindowSampler(store, config.n_obs, config.horizon)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_family_learns_from_images(variant, image_store, tmp_path):
    policy, sampler = build(variant, image_store, tmp_path)
    assert policy.spec.image_keys == [IMAGE]
    batch = sampler.gather(torch.arange(7))
    loss = policy.loss(batch)
    assert loss.shape == (7,) and torch.isfinite(loss).all()
    camera = list(policy.cameras.values())[0]
    if camera.net is not None:  # a learned encoder trains with the policy
        loss.mean().backward()
        grads = [p.grad for p in camera.parameters()]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    else:
        assert policy.config.vision == "pixels" and not list(camera.parameters())
    policy.eval()
    obs = {k: v for k, v in sampler.gather(torch.arange(3)).items() if k.startswith("observation.")}
    noise = policy.sample_noise(3, torch.Generator().manual_seed(0))
    chunk = policy.predict(obs, noise=noise)
    assert chunk.shape == (3, policy.config.horizon, 2) and torch.isfinite(chunk).all()
    loaded = load_policy(save_policy(policy, tmp_path / "saved"))
    assert torch.equal(loaded.predict(obs, noise=noise), chunk)  # image stats and encoder travel with it
    assert loaded.normalizer._stats(IMAGE)[0].shape == (3,)


def test_retrieval_finds_a_training_frame_by_its_picture(image_store):
    """The knn memory is embedded as queries are (centre crops), though fit runs in training mode."""
    config = replace(SMALL["knn"](), obs_keys=(IMAGE,))
    policy = make_policy(config, FeatureSpec.from_store(image_store, (IMAGE,)))
    policy.fit(image_store)  # in training mode, as the trainer fits it
    sampler = WindowSampler(image_store, config.n_obs, config.horizon)
    batch = sampler.gather(torch.arange(0, 30, 3))
    chunk = policy.eval().predict({IMAGE: batch[IMAGE]})
    torch.testing.assert_close(chunk, batch["action"])


def test_a_student_learns_the_teachers_view_of_the_frames(image_store, tmp_path):
    """The distilled student's targets come from the teacher's own (trained) encoders, not its own."""
    policy, sampler = build("distilled", image_store, tmp_path)
    policy._cache = None  # every window a miss: fresh teacher samples
    batch = sampler.gather(torch.arange(5))
    cond = policy.encode_obs(batch)
    torch.manual_seed(4)
    z, target = policy.targets(batch, cond)
    teacher = policy.teacher
    expected = teacher.predict_normalized(teacher.encode_obs({k: batch[k] for k in (IMAGE, STATE)}), z)
    torch.testing.assert_close(target, expected)


def test_an_actor_built_around_a_policy_sees_as_it_does(image_store):
    spec = FeatureSpec.from_store(image_store, (IMAGE, STATE))
    torch.manual_seed(0)
    source = make_policy(replace(SMALL["mlp"](), obs_keys=(IMAGE, STATE)), spec)
    source.fit(image_store)
    torch.manual_seed(1)
    actor = make_policy(replace(SMALL["mlp"](), obs_keys=(IMAGE, STATE), **source.vision_settings()), spec)
    actor.adopt_encoding(source)
    for key, value in source.cameras.state_dict().items():
        assert torch.equal(actor.cameras.state_dict()[key], value), key
    for key, value in source.normalizer.state_dict().items():
        assert torch.equal(actor.normalizer.state_dict()[key], value), key


def test_retrieval_families_refuse_a_learned_encoder():
    for name in ("knn", "mcnn"):
        with pytest.raises(ValueError, match="use vision 'pixels'"):
            replace(SMALL[name](), vision="small")


def test_a_camera_key_must_hold_rgb_frames(image_store):
    gray = replace(image_store, obs={**image_store.obs, IMAGE: image_store.obs[IMAGE].astype(np.float32)})
    with pytest.raises(ValueError, match=r"'observation.image' .* a camera key holds RGB frames, \(H, W, 3\) uint8"):
        FeatureSpec.from_store(gray, (IMAGE,))


def test_toy_tasks_draw_their_scene_as_an_image():
    task = make_task("toy/reach", pixels=True, image_size=32)
    assert task.spec.obs_shapes == {STATE: (4,), IMAGE: (32, 32, 3), PROPRIO: (2,)}
    env = task.make_env(3)
    obs, _ = env.reset(seed=[0, 1, 2])
    again, _ = task.make_env(3).reset(seed=[0, 1, 2])
    np.testing.assert_array_equal(obs[IMAGE], again[IMAGE])
    assert obs[IMAGE].shape == (3, 32, 32, 3) and obs[IMAGE].dtype == np.uint8
    for picture, state in zip(obs[IMAGE], obs[STATE]):  # the point is drawn where the state says
        row, col = np.unravel_index(np.abs(picture.astype(int) - POINT).sum(-1).argmin(), picture.shape[:2])
        assert abs(col - (state[0] + 1) * 15.5) <= 1.0 and abs(row - (1 - state[1]) * 15.5) <= 1.0
    np.testing.assert_array_equal(obs[PROPRIO], obs[STATE][:, :2])
    moved, *_ = env.step(np.ones((3, 2), dtype=np.float32))
    assert not np.array_equal(moved[IMAGE], obs[IMAGE])
    assert STATE in make_task("toy/reach").make_env(1).reset(seed=[0])[0]
    assert IMAGE not in make_task("toy/reach").spec.obs_shapes


def test_task_for_adds_the_camera_a_policy_reads():
    assert IMAGE in task_for("toy/fork", {IMAGE: (40, 40, 3), STATE: (4,)}, {STATE: (4,)}).spec.obs_shapes
    assert IMAGE not in task_for("toy/fork", {STATE: (4,)}).spec.obs_shapes
    with pytest.raises(ValueError, match="one square camera image"):
        task_for("toy/fork", {IMAGE: (40, 40, 3)}, {IMAGE: (32, 32, 3)})


def test_a_lerobot_video_dataset_trains_for_a_few_steps(tmp_path):
    out = tmp_path / "run"
    keys = ["observation.images.front", "observation.state"]
    main(
        ["train", str(VIDEO_FIXTURE), "--steps", "3", "--batch-size", "8", "--eval-every", "0", "--out", str(out)]
        + ["--no-progress", "policy:diffusion", "--policy.obs-keys", *keys, "--policy.num-inference-steps", "2"]
    )
    policy = load_policy(out)
    assert policy.spec.obs_shapes["observation.images.front"] == (48, 64, 3)
    frames = torch.zeros((2, policy.config.n_obs, 48, 64, 3), dtype=torch.uint8)
    chunk = policy.predict({keys[0]: frames, keys[1]: torch.zeros((2, policy.config.n_obs, 4))})
    assert chunk.shape == (2, policy.config.horizon, 2) and torch.isfinite(chunk).all()


def test_pixel_training_repeats_bit_for_bit_at_a_fixed_thread_count(tmp_path):
    """Random crops and bf16 autocast included; (the thread count changes float reduction order, so
    runs are compared at one: measured, 1 and 2 threads part in the 7th digit by step 8, state or pixels)."""
    keys = ["observation.images.front", "observation.state"]

    def run(name: str, seed: int) -> Path:
        main(
            ["train", str(VIDEO_FIXTURE), "--steps", "4", "--batch-size", "8", "--eval-every", "0", "--seed"]
            + [str(seed), "--out", str(tmp_path / name), "--no-progress", "--device", "cpu", "policy:diffusion"]
            + ["--policy.obs-keys", *keys, "--policy.vision-bf16"]
        )
        return latest_step_dir(tmp_path / name) / "model.safetensors"

    first = run("a", 0)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["torch_threads"] == torch.get_num_threads()
    assert state_dicts_equal(first, run("b", 0))
    assert not state_dicts_equal(first, run("c", 1))  # so the equality above means something


@pytest.mark.slow
def test_a_pixel_policy_learns_toy_reach_from_rendered_frames(tmp_path):
    """From the 48 px picture alone (no state), a few hundred steps reach the goal (measured: 50/50)."""
    data, run = tmp_path / "reach", tmp_path / "run"
    main(["collect", "toy/reach", "--episodes", "200", "--pixels", "--image-size", "48", "--out", str(data)])
    main(
        ["train", str(data), "--steps", "300", "--eval-every", "0", "--out", str(run), "--no-progress", "--device"]
        + ["cpu", "policy:mlp", "--policy.obs-keys", IMAGE]
    )
    main(["eval", str(run), "--episodes", "50", "--out", str(tmp_path / "eval"), "--no-progress", "--device", "cpu"])
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["policies"]["mlp"]["success_rate"] >= 0.8, summary


def test_mujoco_envs_that_draw_run_a_bounded_number_at_a_time():
    """Each MuJoCo renderer holds its own GL context (~160-240 MB): a pixel collection of 100 envs was
    killed for memory, so envs that draw run at most MUJOCO_DRAWING_ENVS at a time; without cameras,
    as many as asked."""
    pytest.importorskip("metaworld")
    from protege.runner import wave_size
    from protege.tasks.sim import MUJOCO_DRAWING_ENVS

    pixels, state = make_task("metaworld/push", pixels=True), make_task("metaworld/push")
    assert wave_size(pixels, 100, 40) == MUJOCO_DRAWING_ENVS
    assert wave_size(state, 100, 40) == 40 and wave_size(state, 100, 40, render=True) == MUJOCO_DRAWING_ENVS
    assert wave_size(make_task("toy/fork", pixels=True), 100, 40) == 40  # drawn with numpy: no renderer
    with pytest.raises(ValueError, match="--num-envs must be >= 1"):
        wave_size(state, 0, 40)
