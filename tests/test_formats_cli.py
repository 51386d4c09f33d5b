"""`protege import` / `protege export`, format detection, named subsets through to training, and
state-only training on a video dataset without decoding it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")
pytest.importorskip("minari")

from protege.cli import main  # noqa: E402
from protege.data.store import STATE, EpisodeStore  # noqa: E402
from protege.extras import MissingExtraError  # noqa: E402
from protege.formats import FORMATS, Format, detect_format, read_dataset, write_dataset  # noqa: E402
from protege.policies.storage import load_policy  # noqa: E402

IMAGE = "observation.images.front"


def demo_store(episodes: int = 12, image: bool = False) -> EpisodeStore:
    rng = np.random.default_rng(0)
    lengths = rng.integers(8, 15, episodes)
    n = int(lengths.sum())
    obs = {STATE: rng.normal(size=(n, 4)).astype(np.float32)}
    if image:
        obs[IMAGE] = np.repeat((np.arange(n) % 200).astype(np.uint8)[:, None, None, None], 32 * 32 * 3).reshape(
            n, 32, 32, 3
        )
    return EpisodeStore(
        obs=obs,
        action=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={"success": rng.random(episodes) < 0.7, "return": rng.random(episodes)},
        reward=rng.random(n).astype(np.float32),
        task="toy/reach",
        subsets={"train": np.arange(0, 9), "valid": np.arange(9, 12), "better": np.array([0, 3, 5])},
    )


def assert_same(a: EpisodeStore, b: EpisodeStore) -> None:
    assert a.obs.keys() == b.obs.keys()
    for key in a.obs:
        np.testing.assert_array_equal(a.obs[key], b.obs[key])
    np.testing.assert_array_equal(a.action, b.action)
    np.testing.assert_array_equal(a.episode_ends, b.episode_ends)
    assert {k: v.tolist() for k, v in a.subsets.items()} == {k: v.tolist() for k, v in b.subsets.items()}


@pytest.fixture
def hdf5(tmp_path: Path) -> Path:
    return write_dataset(demo_store(), tmp_path / "demo.hdf5", "robomimic")


def test_import_detects_robomimic_and_keeps_subsets(hdf5: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert detect_format(hdf5) == "robomimic"
    main(["import", str(hdf5), str(tmp_path / "imported"), "--no-progress"])
    printed = capsys.readouterr().out
    assert "wrote 12 episodes" in printed and "frames/s" in printed
    assert detect_format(tmp_path / "imported") == "lerobot"
    assert_same(read_dataset(tmp_path / "imported"), demo_store())
    main(["inspect", str(tmp_path / "imported")])
    assert "subsets   better (3 episodes), train (9 episodes), valid (3 episodes)" in capsys.readouterr().out


def test_export_round_trips_through_every_writable_format(tmp_path: Path) -> None:
    write_dataset(demo_store(), tmp_path / "data", video=False)
    for fmt, dest in (
        ("robomimic", tmp_path / "out.hdf5"),
        ("minari", tmp_path / "minari" / "demo-v0"),
        ("lerobot", tmp_path / "lr"),
    ):
        main(["export", str(tmp_path / "data"), str(dest), "--format", fmt, "--no-progress"])
        assert detect_format(dest) == fmt
        assert_same(read_dataset(dest), demo_store())
    with pytest.raises(ValueError, match="zarr format is read-only here; write one of: lerobot, robomimic, minari"):
        write_dataset(demo_store(), tmp_path / "x.zarr", "zarr")
    with pytest.raises(
        KeyError, match="unknown dataset format 'hdf6'; known formats: lerobot, robomimic, minari, zarr"
    ):
        read_dataset(tmp_path / "data", "hdf6")


def test_training_on_a_named_subset(hdf5: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--subset better` trains on exactly those episodes, straight from the robomimic file."""
    main(
        [
            "train",
            str(hdf5),
            "--subset",
            "better",
            "--val-fraction",
            "0",
            "--out",
            str(tmp_path / "knn"),
            "--eval-every",
            "0",
            "--no-progress",
            "policy:knn",
        ]
    )
    store = demo_store()
    assert len(load_policy(tmp_path / "knn").memory_keys) == store.episode_lengths[[0, 3, 5]].sum()
    with pytest.raises(SystemExit) as err:
        main(["train", str(hdf5), "--subset", "best", "--out", str(tmp_path / "x"), "--no-progress", "policy:mlp"])
    assert "no episode subset 'best'; its subsets: better, train, valid" in str(err.value)


def test_state_only_training_never_decodes_videos(tmp_path: Path) -> None:
    store = demo_store(image=True)
    write_dataset(store, tmp_path / "video", "lerobot")
    assert (tmp_path / "video" / "videos").is_dir()
    np.testing.assert_allclose(read_dataset(tmp_path / "video").obs[IMAGE], store.obs[IMAGE], atol=8)  # lossy, decoded
    shutil.rmtree(tmp_path / "video" / "videos")  # a decode would fail now
    main(
        [
            "train",
            str(tmp_path / "video"),
            "--steps",
            "5",
            "--batch-size",
            "16",
            "--out",
            str(tmp_path / "run"),
            "--eval-every",
            "0",
            "--no-progress",
            "policy:mlp",
        ]
    )
    assert load_policy(tmp_path / "run").spec.obs_shapes == {STATE: (4,)}
    main(["import", str(tmp_path / "video"), str(tmp_path / "state-only"), "--no-images", "--no-progress"])
    assert set(read_dataset(tmp_path / "state-only").obs) == {STATE}


def test_a_missing_library_names_the_extra() -> None:
    fmt = Format("protege.formats.robomimic", ("a_library_that_is_not_installed",))
    with pytest.raises(
        MissingExtraError, match=r"the robomimic format needs the 'formats' extra: pip install 'protege\[formats\]'"
    ):
        fmt.load("robomimic")
    assert set(FORMATS) == {"lerobot", "robomimic", "minari", "zarr"}


def test_import_of_a_bad_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.hdf5"
    write_dataset(demo_store(), bad, "robomimic")
    bad.write_bytes(bad.read_bytes()[:2000])  # truncated
    with pytest.raises(SystemExit) as err:
        main(["import", str(bad), str(tmp_path / "out"), "--format", "robomimic", "--no-progress"])
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SystemExit) as err:
        main(["import", str(tmp_path / "nothing-here"), str(tmp_path / "out"), "--no-progress"])
    assert "no such dataset folder or file" in str(err.value)
