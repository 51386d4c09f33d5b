"""robomimic HDF5 reading and writing: files laid out as robomimic's own scripts write them load
(demo order, masks, states), round trips are bit-exact, unread datasets are never touched, writes
are atomic, and every malformed file fails with one DatasetError naming the file, demo and key."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

h5py = pytest.importorskip("h5py")

from store_checks import assert_bit_equal, assert_stores_equal  # noqa: E402

from protege.data.store import DatasetError, EpisodeStore  # noqa: E402
from protege.formats import robomimic  # noqa: E402
from protege.formats.robomimic import looks_like_robomimic, read_robomimic, write_robomimic  # noqa: E402

#: robomimic's Lift env_args as dataset_states_to_obs.py writes them (env.serialize(), indent=4).
LIFT_ENV_ARGS = {
    "env_name": "Lift",
    "env_version": "1.4.1",
    "type": 1,
    "env_kwargs": {
        "has_renderer": False,
        "has_offscreen_renderer": True,
        "ignore_done": True,
        "use_object_obs": True,
        "use_camera_obs": True,
        "control_freq": 20,
        "controller_configs": {"type": "OSC_POSE", "input_max": 1, "input_min": -1},
        "robots": ["Panda"],
        "camera_depths": False,
        "camera_heights": 8,
        "camera_widths": 8,
        "reward_shaping": False,
        "camera_names": ["agentview"],
    },
}
LOW_DIM = {"robot0_eef_pos": 3, "robot0_gripper_qpos": 2, "object": 10}
IMAGE_SHAPE = (8, 8, 3)
STATE_DIM = 32
MASKS = {"train": [0, 1, 2, 3, 5, 6, 7, 8, 9, 10], "valid": [4, 11], "20_percent": [10, 1, 7]}


def lift_values(demo: int, steps: int) -> dict[str, np.ndarray]:
    """Deterministic per-demo data: actions[:, 0] is the demo number, actions[:, 1] the step."""
    rng = np.random.default_rng(demo)
    t = np.arange(steps, dtype=np.float64)
    actions = np.column_stack([np.full(steps, demo, np.float64), t, rng.uniform(-1, 1, (steps, 5))])
    return {
        "actions": actions,
        "states": rng.normal(size=(steps, STATE_DIM)),
        "rewards": (t == steps - 1).astype(np.float64),
        "obs": {
            **{key: rng.normal(size=(steps, dim)) for key, dim in LOW_DIM.items()},
            "agentview_image": rng.integers(0, 256, (steps, *IMAGE_SHAPE), dtype=np.uint8),
        },
    }


def write_robomimic_like(path: Path, lengths: list[int]) -> dict[int, dict]:
    """A robomimic file written with h5py exactly as dataset_states_to_obs.py and split_train_val.py
    lay it out (demos created in numeric order, images gzip-compressed, dones at the last step,
    masks as fixed-length bytes in the order given); returns each demo's values."""
    values = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for demo, steps in enumerate(lengths):
            v = values[demo] = lift_values(demo, steps)
            ep = data.create_group(f"demo_{demo}")
            ep.create_dataset("actions", data=v["actions"])
            ep.create_dataset("states", data=v["states"])
            ep.create_dataset("rewards", data=v["rewards"])
            ep.create_dataset("dones", data=(np.arange(steps) == steps - 1).astype(int))
            for key, obs in v["obs"].items():
                following = np.concatenate([obs[1:], obs[-1:]])
                compression = "gzip" if key.endswith("_image") else None
                ep.create_dataset(f"obs/{key}", data=obs, compression=compression)
                ep.create_dataset(f"next_obs/{key}", data=following, compression=compression)
            ep.attrs["model_file"] = "<mujoco model='base'></mujoco>"
            ep.attrs["num_samples"] = steps
        data.attrs["total"] = sum(lengths)
        data.attrs["env_args"] = json.dumps(LIFT_ENV_ARGS, indent=4)
        for name, demos in MASKS.items():
            f[f"mask/{name}"] = np.array([f"demo_{d}" for d in demos if d < len(lengths)], dtype="S")
    return values


LENGTHS = [5, 3, 4, 6, 2, 5, 3, 4, 2, 3, 7, 4]  # 12 demos: demo_10 and demo_11 sort after demo_9


@pytest.fixture
def lift(tmp_path: Path) -> tuple[Path, dict[int, dict]]:
    path = tmp_path / "lift" / "image.hdf5"
    path.parent.mkdir()
    return path, write_robomimic_like(path, LENGTHS)


def make_store(lengths: list[int], *, reward: bool = True, images: bool = True, seed: int = 0) -> EpisodeStore:
    rng = np.random.default_rng(seed)
    n, e = sum(lengths), len(lengths)
    obs = {
        "observation.state": rng.normal(size=(n, 4)).astype(np.float32),
        "observation.object": rng.normal(size=(n, 6)).astype(np.float32),
    }
    if images:
        obs["observation.images.front"] = rng.integers(0, 256, (n, 6, 5, 3), dtype=np.uint8)
    obs["observation.sim_state"] = rng.normal(size=(n, 9)).astype(np.float32)  # read back after the obs keys
    return EpisodeStore(
        obs=obs,
        action=rng.normal(size=(n, 3)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={
            "success": rng.random(e) < 0.5,
            "return": rng.normal(size=e),
            "source": np.array([f"expert-dart{i % 3}" for i in range(e)], dtype=object),
            "seed": np.arange(e, dtype=np.int64) * 7,
        },
        reward=rng.normal(size=n).astype(np.float32) if reward else None,
        fps=15,
        task="metaworld/pick-place",
        subsets={"train": np.arange(0, e, 2), "valid": np.arange(1, e, 2), "empty": np.zeros(0, np.int64)},
    )


# ---------------------------------------------------------------------------- robomimic's own layout


def test_reads_robomimic_layout_in_numeric_demo_order(lift: tuple[Path, dict]) -> None:
    path, values = lift
    store = read_robomimic(path)
    assert store.task == "Lift" and store.fps == 20  # env_name and robosuite's control_freq
    assert list(store.obs) == [  # h5py's name order, then the simulator states
        "observation.images.agentview",
        "observation.object",
        "observation.robot0_eef_pos",
        "observation.robot0_gripper_qpos",
        "observation.sim_state",
    ]
    assert store.episode_lengths.tolist() == LENGTHS
    for demo, (start, end) in enumerate(zip(store.episode_starts, store.episode_ends)):
        v = values[demo]
        assert_bit_equal(store.action[start:end], v["actions"].astype(np.float32), f"demo_{demo} actions")
        assert_bit_equal(store.obs["observation.sim_state"][start:end], v["states"].astype(np.float32))
        assert_bit_equal(store.obs["observation.images.agentview"][start:end], v["obs"]["agentview_image"])
        assert_bit_equal(store.obs["observation.object"][start:end], v["obs"]["object"].astype(np.float32))
        assert_bit_equal(store.reward[start:end], v["rewards"].astype(np.float32))
    assert store.action[:, 0].tolist() == np.repeat(np.arange(12), LENGTHS).tolist()  # demo_10 after demo_9
    assert {name: ids.tolist() for name, ids in store.subsets.items()} == {
        name: sorted(ids) for name, ids in MASKS.items()
    }
    assert store.episodes["return"].tolist() == [1.0] * 12  # the sum of the rewards
    assert store.episodes["success"].tolist() == [False] * 12 and store.episodes["seed"].tolist() == [-1] * 12
    assert store.subset("20_percent").action[:, 0].tolist() == np.repeat([1, 7, 10], [3, 4, 7]).tolist()


def test_looks_like(lift: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = lift
    assert looks_like_robomimic(path)
    (tmp_path / "notes.hdf5").write_text("not hdf5")
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f.create_group("episode_0")
    assert not any(
        looks_like_robomimic(p)
        for p in [tmp_path / "notes.hdf5", tmp_path / "other.hdf5", tmp_path / "absent.hdf5", tmp_path]
    )


# -------------------------------------------------------------------------------------- laziness


def corrupt_image_chunks(path: Path) -> None:
    """Overwrite the compressed bytes of every agentview_image chunk in place, so reading it fails."""
    with h5py.File(path, "r") as f:
        spans = [
            (info.byte_offset, info.size)
            for demo in f["data"].values()
            for group in ("obs", "next_obs")
            for ds in [demo[f"{group}/agentview_image"]]
            for info in map(ds.id.get_chunk_info, range(ds.id.get_num_chunks()))
        ]
    raw = bytearray(path.read_bytes())
    for offset, size in spans:
        raw[offset : offset + size] = b"\xff" * size
    path.write_bytes(bytes(raw))


def test_image_data_not_asked_for_is_never_read(lift: tuple[Path, dict]) -> None:
    path, values = lift
    corrupt_image_chunks(path)
    state_only = read_robomimic(path, obs_keys=["observation.robot0_eef_pos"])
    assert list(state_only.obs) == ["observation.robot0_eef_pos"]
    assert_bit_equal(
        state_only.obs["observation.robot0_eef_pos"][:5], values[0]["obs"]["robot0_eef_pos"].astype(np.float32)
    )
    assert "observation.images.agentview" not in read_robomimic(path, images=False).obs
    with pytest.raises(DatasetError, match=r"image\.hdf5 demo_0: cannot read 'obs/agentview_image'"):
        read_robomimic(path)


def test_unknown_obs_key_names_the_file_and_its_keys(lift: tuple[Path, dict]) -> None:
    path, _ = lift
    with pytest.raises(
        DatasetError,
        match=r"image\.hdf5: no observation key\(s\) \['observation\.state'\]; its keys: .*observation\.robot0_eef_pos",
    ):
        read_robomimic(path, obs_keys=["observation.state"])


def test_obs_keys_order_and_sim_state(lift: tuple[Path, dict]) -> None:
    path, _ = lift
    store = read_robomimic(path, obs_keys=["observation.sim_state", "observation.object"], progress=True)
    assert list(store.obs) == ["observation.sim_state", "observation.object"]
    assert store.obs["observation.sim_state"].shape == (sum(LENGTHS), STATE_DIM)


# ------------------------------------------------------------------------------------- round trips


def test_round_trip_is_bit_exact_and_file_is_robomimic_shaped(tmp_path: Path) -> None:
    store = make_store([4, 1, 3, 5, 2, 2, 3, 1, 2, 4, 3, 2])
    path = write_robomimic(store, tmp_path / "out.hdf5", progress=True)
    assert_stores_equal(read_robomimic(path), store)
    with h5py.File(path, "r") as f:
        data = f["data"]
        assert data.attrs["total"] == store.num_frames
        assert json.loads(data.attrs["env_args"]) == {"env_name": "metaworld/pick-place", "type": 2, "env_kwargs": {}}
        demo = data["demo_10"]
        start, end = store.episode_starts[10], store.episode_ends[10]
        assert demo.attrs["num_samples"] == end - start
        assert demo["dones"][()].tolist() == [0, 0, 1]
        assert_bit_equal(demo["obs/front_image"][()], store.obs["observation.images.front"][start:end])
        following = store.obs["observation.state"][[*range(start + 1, end), end - 1]]
        assert_bit_equal(demo["next_obs/state"][()], following)
        assert "states" in demo and "next_obs/sim_state" not in demo and "obs/sim_state" not in demo
        assert demo["obs/front_image"].compression == "gzip"
        assert f["mask/valid"][()].tolist() == [b"demo_1", b"demo_3", b"demo_5", b"demo_7", b"demo_9", b"demo_11"]
        assert f["mask/empty"].shape == (0,)


def test_store_without_reward_or_sim_state(tmp_path: Path) -> None:
    store = make_store([3, 2], reward=False, images=False)
    del store.obs["observation.sim_state"]
    path = write_robomimic(store, tmp_path / "out.hdf5")
    assert_stores_equal(read_robomimic(path), store)
    with h5py.File(path, "r") as f:
        assert "states" not in f["data/demo_0"]
        assert f["data/demo_0/rewards"][()].tolist() == [0.0, 0.0, 0.0]  # zeros on disk, None on read


def test_robomimic_file_round_trips_through_protege(lift: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = lift
    store = read_robomimic(path)
    assert_stores_equal(read_robomimic(write_robomimic(store, tmp_path / "again.hdf5")), store)


KEY_NAMES = st.sampled_from(
    [
        "observation.state",
        "observation.eef",
        "observation.images.cam",
        "observation.images.wrist",
        "observation.sim_state",
        "observation.object_pos",
    ]
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(1, 5), min_size=1, max_size=12),
    keys=st.lists(KEY_NAMES, min_size=1, max_size=4, unique=True),
    dims=st.integers(1, 4),
    reward=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(
    tmp_path: Path, lengths: list[int], keys: list[str], dims: int, reward: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n, e = sum(lengths), len(lengths)

    def frames(key: str) -> np.ndarray:
        if key.startswith("observation.images."):
            return rng.integers(0, 256, (n, 3, dims + 1, 3), dtype=np.uint8)
        return rng.normal(size=(n, dims)).astype(np.float32)

    keys = sorted(keys, key=lambda key: key == "observation.sim_state")  # robomimic's 'states' reads back last
    store = EpisodeStore(
        obs={key: frames(key) for key in keys},
        action=rng.normal(size=(n, dims + 1)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={"success": rng.random(e) < 0.5, "seed": rng.integers(0, 100, e), "return": rng.normal(size=e)},
        reward=rng.normal(size=n).astype(np.float32) if reward else None,
        fps=int(rng.integers(1, 60)),
        task="toy/fork",
        subsets={"some": np.flatnonzero(rng.random(e) < 0.5)},
    )
    path = write_robomimic(store, tmp_path / f"prop-{seed}.hdf5", overwrite=True)
    assert_stores_equal(read_robomimic(path), store)


# ------------------------------------------------------------------------------------------ writing


def test_existing_destination_needs_overwrite(tmp_path: Path) -> None:
    store = make_store([2, 3])
    path = write_robomimic(store, tmp_path / "out.hdf5")
    with pytest.raises(FileExistsError, match="out.hdf5 already exists"):
        write_robomimic(store, path)
    smaller = store.select(np.array([1]))
    write_robomimic(smaller, path, overwrite=True)
    assert read_robomimic(path).num_episodes == 1
    with pytest.raises(FileExistsError, match="is a folder"):
        write_robomimic(store, tmp_path, overwrite=True)


def test_killed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = robomimic._write_demo

    def dies_on_third_demo(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        original(*args, **kwargs)

    monkeypatch.setattr(robomimic, "_write_demo", dies_on_third_demo)
    with pytest.raises(KeyboardInterrupt):
        write_robomimic(make_store([2, 2, 2, 2]), tmp_path / "out.hdf5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s.obs.update({"observation.foo_image": s.obs["observation.state"]}),
            "read back as 'observation.images.foo'",
        ),
        (lambda s: s.obs.update({"state": s.obs["observation.state"]}), "must be 'observation.<name>'"),
        (lambda s: s.obs.update({"observation.a/b": s.obs["observation.state"]}), "no '/'"),
        (lambda s: s.subsets.update({"a/b": np.array([0])}), "filter key"),
        (lambda s: s.episodes.update({"num_samples": np.zeros(2)}), "robomimic's demo attributes|one of"),
        (lambda s: setattr(s, "fps", 0), "fps must be a positive integer"),
    ],
)
def test_unwritable_stores_are_refused_before_writing(tmp_path: Path, change, message: str) -> None:
    store = make_store([2, 3])
    change(store)
    with pytest.raises(DatasetError, match=message):
        write_robomimic(store, tmp_path / "out.hdf5")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------- bad input


def edit(path: Path, change) -> None:
    with h5py.File(path, "r+") as f:
        change(f)


def replace(f: h5py.File, name: str, data) -> None:
    del f[name]
    f[name] = data


BAD_FILES = {
    "missing actions": (lambda f: f.__delitem__("data/demo_3/actions"), r"demo_3: no 'actions' dataset"),
    "missing obs key": (lambda f: f.__delitem__("data/demo_10/obs/object"), r"demo_10: no 'obs/object' dataset"),
    "obs length": (
        lambda f: replace(f, "data/demo_2/obs/robot0_eef_pos", np.zeros((3, 3))),
        r"demo_2: 'obs/robot0_eef_pos' has 3 steps but 'actions' has 4",
    ),
    "nan obs": (
        lambda f: f["data/demo_5/obs/object"].__setitem__((2, 1), np.nan),
        r"demo_5: 'obs/object' has NaN/inf values \(first at step 2\)",
    ),
    "inf action": (lambda f: f["data/demo_1/actions"].__setitem__((0, 3), np.inf), r"demo_1: 'actions' has NaN/inf"),
    "float32 overflow": (
        lambda f: f["data/demo_1/states"].__setitem__((1, 0), 1e300),
        r"demo_1: 'states' has NaN/inf values \(first at step 1\) or values beyond float32",
    ),
    "string obs": (
        lambda f: replace(f, "data/demo_0/obs/object", np.array(["a"] * 5, dtype=h5py.string_dtype())),
        r"demo_0: 'obs/object' has dtype object",
    ),
    "bytes actions": (
        lambda f: replace(f, "data/demo_4/actions", np.array([b"ab"] * 2)),
        r"demo_4: 'actions' has dtype \|S2",
    ),
    "frame shape": (
        lambda f: replace(f, "data/demo_6/obs/object", np.zeros((3, 11))),
        r"demo_6: 'obs/object' has frames of shape \(11,\)",
    ),
    "1-D actions": (
        lambda f: replace(f, "data/demo_7/actions", np.zeros(4)),
        r"demo_7: 'actions' must have 2 dimensions",
    ),
    "num_samples": (lambda f: f["data/demo_8"].attrs.__setitem__("num_samples", 9), r"demo_8: attribute num_samples=9"),
    "mask names missing demo": (
        lambda f: replace(f, "mask/valid", np.array([b"demo_4", b"demo_12"])),
        r"'mask/valid' names demo 'demo_12', which is not in data/",
    ),
    "mask not names": (
        lambda f: replace(f, "mask/valid", np.arange(3)),
        r"'mask/valid' must be a 1-D dataset of demo names",
    ),
    "env_args json": (
        lambda f: f["data"].attrs.__setitem__("env_args", "{'env_name': 'Lift'"),
        r"'env_args' is not valid JSON",
    ),
    "env_args name": (
        lambda f: f["data"].attrs.__setitem__("env_args", json.dumps({"type": 1})),
        r"'env_args' must be a JSON object with a string 'env_name'",
    ),
    "env_args missing": (lambda f: f["data"].attrs.__delitem__("env_args"), r"data has no 'env_args' attribute"),
    "control_freq": (
        lambda f: f["data"].attrs.__setitem__(
            "env_args", json.dumps({"env_name": "x", "env_kwargs": {"control_freq": 0.5}})
        ),
        r"must be a positive integer, got 0.5",
    ),
    "demo not a group": (
        lambda f: f["data"].create_dataset("demo_12", data=np.zeros(3)),
        r"'data/demo_12' is not a group",
    ),
    "not a demo": (lambda f: f["data"].create_group("extra"), r"'data/extra' is not named demo_<number>"),
    "raw robosuite": (lambda f: f.__delitem__("data/demo_0/obs"), r"demo_0: no 'obs' group; a raw robosuite file"),
    "no data": (lambda f: f.__delitem__("data"), r"no '/data' group"),
    "no rewards in one demo": (lambda f: f.__delitem__("data/demo_9/rewards"), r"demo_9: no 'rewards' dataset"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_fail_with_one_clear_error(lift: tuple[Path, dict], case: str) -> None:
    path, _ = lift
    change, message = BAD_FILES[case]
    edit(path, change)
    with pytest.raises(DatasetError, match=message) as error:
        read_robomimic(path)
    assert str(path) in str(error.value)


def test_truncated_and_missing_files(lift: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = lift
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"truncated\.hdf5: cannot open HDF5 file, it may be truncated or corrupt"):
        read_robomimic(truncated)
    with pytest.raises(DatasetError, match=r"absent\.hdf5: no such robomimic file"):
        read_robomimic(tmp_path / "absent.hdf5")


# -------------------------------------------------------------------------------- action scaling


def pusht_like_store(action: np.ndarray, lengths: list[int] | None = None) -> EpisodeStore:
    """A state-only store around ``action`` (N, A) float32, e.g. PushT's pixel targets in [40, 510]."""
    n = len(action)
    lengths = lengths or [n // 3, n // 3, n - 2 * (n // 3)]
    return EpisodeStore(
        obs={"observation.state": np.random.default_rng(1).normal(size=(n, 5)).astype(np.float32)},
        action=action,
        episode_ends=np.cumsum(lengths),
        fps=10,
        task="pusht",
    )


def file_actions(path: Path) -> tuple[np.ndarray, dict]:
    """Every demo's actions as robomimic reads them (h5py, demo order), and the data attributes."""
    with h5py.File(path, "r") as f:
        data = f["data"]
        demos = sorted(data, key=lambda name: int(name[5:]))
        return np.concatenate([data[demo]["actions"][()] for demo in demos]), dict(data.attrs)


def test_actions_outside_unit_range_are_scaled_into_it_and_read_back_exactly(tmp_path: Path) -> None:
    """Robomimic squashes actions to [-1, 1] and get_dataset_info.py refuses others: the file holds
    (raw - centre) / half-range per dimension, the store read back holds the raw units bit-exactly."""
    rng = np.random.default_rng(0)
    n = 300
    action = np.column_stack(
        [rng.uniform(40.03, 510.89, n), rng.uniform(-3, 0.5, n), np.full(n, 7.25)]  # the last one constant
    ).astype(np.float32)
    store = pusht_like_store(action)
    path = write_robomimic(store, tmp_path / "pusht.hdf5")
    written, attrs = file_actions(path)
    assert written.dtype == np.float64 and written.shape == action.shape
    assert written.min() >= -1 and written.max() <= 1
    assert written[:, :2].min(axis=0).tolist() == [-1.0, -1.0] and written[:, :2].max(axis=0).tolist() == [1.0, 1.0]
    assert (written[:, 2] == 0).all()
    low, high = action.min(axis=0).astype(np.float64), action.max(axis=0).astype(np.float64)
    assert_bit_equal(attrs["protege_action_center"], (low + high) / 2)
    assert_bit_equal(attrs["protege_action_half_range"], np.array([(high[0] - low[0]) / 2, (high[1] - low[1]) / 2, 1]))
    again = read_robomimic(path)
    assert_bit_equal(again.action, action)  # raw units, bit-exact
    assert_stores_equal(again, store)
    assert again.format_meta == {"robomimic": {"env_args": {"env_name": "pusht", "type": 2, "env_kwargs": {}}}}
    assert_stores_equal(read_robomimic(write_robomimic(again, tmp_path / "again.hdf5")), store)  # no double scaling


def test_actions_inside_unit_range_are_written_as_they_are(tmp_path: Path) -> None:
    """Robosuite's and robomimic's own actions lie in [-1, 1]: written unscaled, float32, no attributes."""
    action = np.random.default_rng(0).uniform(-1, 1, (40, 7)).astype(np.float32)
    action[0, 0], action[1, 1] = -1.0, 1.0  # the bounds themselves are inside
    path = write_robomimic(pusht_like_store(action), tmp_path / "lift.hdf5")
    written, attrs = file_actions(path)
    assert_bit_equal(written, action)
    assert not {"protege_action_center", "protege_action_half_range"} & set(attrs)
    assert_bit_equal(read_robomimic(path).action, action)


def test_dimensions_the_centred_scale_cannot_give_back_are_scaled_by_a_power_of_two(tmp_path: Path) -> None:
    """(raw - c) / h in float64 loses a -0.0 (it comes back +0.0) and a value far closer to zero
    than to the centre; such a dimension is scaled about zero by a power of two, exact for any float32."""
    rng = np.random.default_rng(3)
    action = np.column_stack([rng.uniform(40, 510, 20), rng.uniform(-100, 500, 20), rng.uniform(-5, 3, 20)])
    action = action.astype(np.float32)
    action[4, 1], action[5, 2] = 1e-30, -0.0
    center, half_range = robomimic.action_scale(action)
    assert center[0] == (np.float64(action[:, 0].min()) + action[:, 0].max()) / 2  # the centred scale
    assert center[1:].tolist() == [0.0, 0.0]  # never added on reading, so -0.0 stays -0.0
    assert half_range[1:].tolist() == [512.0, 8.0]  # the power of two at or above the largest magnitude
    path = write_robomimic(pusht_like_store(action, [20]), tmp_path / "edge.hdf5")
    written, _ = file_actions(path)
    assert np.abs(written).max() <= 1
    assert_bit_equal(read_robomimic(path).action, action)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offset=st.floats(-1e6, 1e6),
    width=st.floats(0, 1e6),
    dims=st.integers(1, 4),
    specials=st.lists(st.sampled_from([0.0, -0.0, 1e-30, -3e-12, 1.0, -1.0]), max_size=3),
    seed=st.integers(0, 2**16),
)
def test_scaled_actions_read_back_bit_exactly_property(
    tmp_path: Path, offset: float, width: float, dims: int, specials: list[float], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    action = (offset + width * rng.random((12, dims))).astype(np.float32)
    action[: len(specials), 0] = specials
    path = write_robomimic(pusht_like_store(action, [5, 7]), tmp_path / f"scale-{seed}.hdf5", overwrite=True)
    written, attrs = file_actions(path)
    assert np.abs(written).max() <= 1
    assert ("protege_action_center" in attrs) == bool(np.abs(action).max() > 1)
    assert_bit_equal(read_robomimic(path).action, action)


def scaled_file(tmp_path: Path) -> Path:
    action = np.random.default_rng(0).uniform(40, 510, (12, 2)).astype(np.float32)
    return write_robomimic(pusht_like_store(action), tmp_path / "scaled.hdf5")


BAD_SCALES = {
    "wrong shape": (
        lambda a: a.__setitem__("protege_action_center", np.zeros(3)),
        r"'protege_action_center' must be 2 finite numbers .* shape \(3,\)",
    ),
    "scalar": (
        lambda a: a.__setitem__("protege_action_half_range", 2.0),
        r"'protege_action_half_range' must be 2 finite numbers",
    ),
    "not finite": (
        lambda a: a.__setitem__("protege_action_half_range", np.array([1.0, np.nan])),
        r"'protege_action_half_range' must be 2 finite numbers",
    ),
    "text": (
        lambda a: a.__setitem__("protege_action_center", np.bytes_(b"[275, 275]")),
        r"'protege_action_center' must be 2 finite numbers",
    ),
    "zero half-range": (
        lambda a: a.__setitem__("protege_action_half_range", np.array([235.0, 0.0])),
        r"'protege_action_half_range' must be positive, got \[235.0, 0.0\]",
    ),
    "negative half-range": (
        lambda a: a.__setitem__("protege_action_half_range", np.array([-1.0, 1.0])),
        r"'protege_action_half_range' must be positive",
    ),
    "centre alone": (
        lambda a: a.__delitem__("protege_action_half_range"),
        r"'protege_action_center' without 'protege_action_half_range'",
    ),
    "half-range alone": (
        lambda a: a.__delitem__("protege_action_center"),
        r"'protege_action_half_range' without 'protege_action_center'",
    ),
    "beyond float32": (
        lambda a: a.__setitem__("protege_action_half_range", np.array([1e300, 1.0])),
        r"'actions' scaled back by data attributes .* beyond float32's range",
    ),
    "format_meta": (
        lambda a: a.__setitem__("protege_format_meta", np.bytes_(b'{"minari": 3}')),
        r"'protege_format_meta' must be a JSON object of objects",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SCALES))
def test_malformed_action_scale_is_refused(tmp_path: Path, case: str) -> None:
    path = scaled_file(tmp_path)
    change, message = BAD_SCALES[case]
    edit(path, lambda f: change(f["data"].attrs))
    with pytest.raises(DatasetError, match=message) as error:
        read_robomimic(path)
    assert str(error.value).startswith(f"{path}: ")


# -------------------------------------------------------------------------- env_args and format_meta


def test_env_args_survive_a_round_trip_through_protege(lift: tuple[Path, dict], tmp_path: Path) -> None:
    """Robosuite's env_kwargs (controller, cameras, control_freq) and env_version come back as
    robomimic wrote them, so robomimic can still build the rollout environment."""
    path, _ = lift
    store = read_robomimic(path)
    assert store.format_meta == {"robomimic": {"env_args": LIFT_ENV_ARGS}}
    again = write_robomimic(store, tmp_path / "again.hdf5")
    with h5py.File(again, "r") as f:
        assert json.loads(f["data"].attrs["env_args"]) == LIFT_ENV_ARGS
    renamed = read_robomimic(again)
    renamed.task = "toy/fork"  # another task: the Lift kwargs do not belong to it
    with h5py.File(write_robomimic(renamed, tmp_path / "renamed.hdf5"), "r") as f:
        assert json.loads(f["data"].attrs["env_args"]) == {"env_name": "toy/fork", "type": 2, "env_kwargs": {}}


def test_other_formats_metadata_rides_along(tmp_path: Path) -> None:
    store = make_store([2, 3])
    store.format_meta = {"minari": {"env_spec": {"id": "PointMaze-v3"}, "spaces": [1, 2]}}
    assert read_robomimic(write_robomimic(store, tmp_path / "out.hdf5")).format_meta == {
        **store.format_meta,
        "robomimic": {"env_args": {"env_name": "metaworld/pick-place", "type": 2, "env_kwargs": {}}},
    }
    store.format_meta = {"minari": {"space": np.zeros(2)}}
    with pytest.raises(DatasetError, match="format_meta must be JSON-able"):
        write_robomimic(store, tmp_path / "bad.hdf5")


def test_env_args_and_scaled_actions_survive_a_stop_in_protege_format(lift: tuple[Path, dict], tmp_path: Path) -> None:
    """Robomimic -> protege's LeRobot folder -> robomimic: the same env_args, the same actions."""
    from protege.formats import read_dataset, write_dataset

    path, _ = lift
    store = read_robomimic(path, images=False)
    folder = write_dataset(store, tmp_path / "lift-lerobot", "lerobot")
    back = write_robomimic(read_dataset(folder, "lerobot"), tmp_path / "back.hdf5")
    with h5py.File(back, "r") as f:
        assert json.loads(f["data"].attrs["env_args"]) == LIFT_ENV_ARGS
    assert_bit_equal(read_robomimic(back).action, store.action)


def test_observations_robomimic_cannot_fit_are_warned_of(tmp_path: Path) -> None:
    """Wide observations are warned of: robomimic trains on them as stored, and raw PushT states
    (0..512 px) kept its BC at the mean-action error (benchmarks/interop.py); they are written unchanged."""
    store = make_store([4, 5], images=False)
    store.obs["observation.state"] = store.obs["observation.state"] * 100 + 250
    with pytest.warns(UserWarning, match=r"'observation.state' in \[.*\]; robomimic trains on observations as stored"):
        path = write_robomimic(store, tmp_path / "wide.hdf5")
    assert_bit_equal(read_robomimic(path).obs["observation.state"], store.obs["observation.state"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_robomimic(make_store([4, 5], images=False), tmp_path / "narrow.hdf5")
