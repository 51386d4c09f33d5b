"""Bad input, damaged files and kills, run through the CLI as a user meets them (issue 14).

Each case builds a damaged dataset, checkpoint or command line from a small toy/fork dataset and an
mlp run, runs one ``protege`` command in a subprocess and gives a verdict:

- good: the command refused with one line naming what the case expects (the file, key, episode or
  flag), or, where the damage leaves the data correct, read it correctly;
- poor: it refused in one line that does not name what the case expects;
- silent: it exited 0 on damaged input (a wrong read or a wrong result);
- crash: a Python traceback;
- hang: it ran past the timeout.

``python benchmarks/probe.py --out benchmarks/results/probe.json`` prints the table and writes JSON
(about 3 minutes on 2 cores). Not in CI: the corruption tests in tests/test_corruption.py keep the
same cases from coming back.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TIMEOUT_S = 120
QUIET = ["--no-progress"]


@dataclass
class Case:
    name: str
    kind: str  # dataset / checkpoint / cli / kill
    prepare: Callable[[Path], list[str]]  # builds the damaged input under a fresh folder, returns the command
    expect: tuple[str, ...] = ()  # words the one-line error must contain (any of them); () = must succeed
    check: Callable[[Path, subprocess.CompletedProcess], bool] | None = None  # for cases that must succeed


def protege(*args: str) -> list[str]:
    return [sys.executable, "-m", "protege.cli", *args]


def run(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess | None, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start
    return done, time.perf_counter() - start


def verdict(case: Case, done: subprocess.CompletedProcess | None, folder: Path) -> tuple[str, str]:
    if done is None:
        return "hang", f"no answer in {TIMEOUT_S} s"
    err = done.stderr.strip()
    last = err.splitlines()[-1] if err else ""
    if "Traceback (most recent call last)" in err:
        return "crash", last
    if not case.expect:
        ok = done.returncode == 0 and (case.check is None or case.check(folder, done))
        return ("good" if ok else "silent" if done.returncode == 0 else "poor"), last or "read correctly"
    if done.returncode == 0:
        return "silent", "exit 0"
    lines = [line for line in err.splitlines() if line.startswith("protege ")]
    message = lines[-1] if lines else last
    named = any(word in message for word in case.expect)
    return ("good" if named and len(lines) == 1 else "poor"), message


# ---------------------------------------------------------------------------------------- inputs


def base(root: Path) -> tuple[Path, Path]:
    """A 6-episode toy/fork dataset and a 20-step mlp run on it, made once."""
    data, run_dir = root / "data", root / "run"
    if not data.exists():
        subprocess.run(
            protege("collect", "toy/fork", "--episodes", "6", "--out", str(data), *QUIET), env=ENV, check=True
        )
    if not run_dir.exists():
        subprocess.run(
            protege(*train_mlp(data, run_dir, steps=20)),
            env=ENV,
            check=True,
            capture_output=True,
        )
    return data, run_dir


def train_mlp(data: Path, run_dir: Path, steps: int) -> list[str]:
    """`protege train` arguments for a short mlp run without evaluation."""
    return ["train", str(data), "policy:mlp", "--steps", str(steps), "--eval-every", "0", "--val-fraction", "0",
            "--out", str(run_dir), "--device", "cpu", *QUIET]  # fmt: skip


def copy_data(root: Path, folder: Path) -> Path:
    target = folder / "data"
    shutil.copytree(root / "data", target)
    return target


def copy_run(root: Path, folder: Path) -> tuple[Path, Path]:
    target = folder / "run"
    shutil.copytree(root / "run", target)
    step = json.loads((target / "checkpoints" / "latest.json").read_text())["dir"]
    return target, target / "checkpoints" / step


def edit_parquet(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def episodes_file(data: Path) -> Path:
    return next((data / "meta" / "episodes").rglob("*.parquet"))


def data_file(data: Path) -> Path:
    return next((data / "data").rglob("*.parquet"))


def set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, values)


def inspect(data: Path) -> list[str]:
    return protege("inspect", str(data))


def lerobot_case(change: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        data = copy_data(ROOT, folder)
        change(data)
        return inspect(data)

    return prepare


def success_strings(data: Path) -> None:
    edit_parquet(
        episodes_file(data), lambda t: set_column(t, "success", pa.array(["False", "yes"] * (t.num_rows // 2)))
    )


def success_two(data: Path) -> None:
    edit_parquet(episodes_file(data), lambda t: set_column(t, "success", pa.array([2] * t.num_rows, pa.int64())))


def seed_float(data: Path) -> None:
    edit_parquet(episodes_file(data), lambda t: set_column(t, "seed", pa.array([3.7] * t.num_rows)))


def duplicate_index(data: Path) -> None:
    def change(t: pa.Table) -> pa.Table:
        index = t.column("index").to_numpy().copy()
        index[5] = index[4]
        return set_column(t, "index", pa.array(index))

    edit_parquet(data_file(data), change)


def moved_boundary(data: Path) -> None:
    """Episode 0 ends 3 frames later in the ranges and episode_index alike; frame_index says otherwise."""
    episodes = pq.read_table(episodes_file(data))
    end0 = episodes.column("dataset_to_index")[0].as_py()
    to = episodes.column("dataset_to_index").to_numpy().copy()
    frm = episodes.column("dataset_from_index").to_numpy().copy()
    to[0] += 3
    frm[1] += 3
    episodes = set_column(set_column(episodes, "dataset_to_index", pa.array(to)), "dataset_from_index", pa.array(frm))
    pq.write_table(episodes, episodes_file(data))

    def change(t: pa.Table) -> pa.Table:
        ep = t.column("episode_index").to_numpy().copy()
        ep[end0 : end0 + 3] = 0
        return set_column(t, "episode_index", pa.array(ep))

    edit_parquet(data_file(data), change)


def info_edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(data: Path) -> None:
        path = data / "meta" / "info.json"
        info = json.loads(path.read_text())
        change(info)
        path.write_text(json.dumps(info))

    return apply


def fps_doubled(info: dict) -> None:
    info["fps"] = info["fps"] * 2


def unknown_dtype(info: dict) -> None:
    info["features"]["observation.state"]["dtype"] = "float33"


def truncate(path_of: Callable[[Path], Path], keep: float = 0.5) -> Callable[[Path], None]:
    def apply(data: Path) -> None:
        path = path_of(data)
        raw = path.read_bytes()
        path.write_bytes(raw[: int(len(raw) * keep)])

    return apply


def nan_action(data: Path) -> None:
    def change(t: pa.Table) -> pa.Table:
        rows = t.column("action").to_pylist()
        rows[3][0] = float("nan")
        return set_column(t, "action", pa.array(rows, t.schema.field("action").type))

    edit_parquet(data_file(data), change)


def export_case(fmt: str, name: str, damage: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        target = folder / name
        subprocess.run(
            protege("export", str(ROOT / "data"), str(target), "--format", fmt, *QUIET),
            env=ENV,
            check=True,
            capture_output=True,
        )
        damage(target)
        return inspect(target)

    return prepare


def h5_edit(change: Callable) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        import h5py

        with h5py.File(path if path.is_file() else path / "data" / "main_data.hdf5", "r+") as file:
            change(file)

    return apply


def robomimic_success_yes(file) -> None:
    file["data/demo_0"].attrs["success"] = "yes"


def robomimic_no_actions(file) -> None:
    del file["data/demo_1/actions"]


def minari_extra_episode(file) -> None:
    file.copy("episode_0", f"episode_{len([k for k in file if k.startswith('episode_')])}")


def zarr_case(damage: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        import zarr

        root = folder / "buffer.zarr"
        group = zarr.open_group(str(root), mode="w", zarr_format=2)
        group.create_array("data/action", data=np.random.rand(40, 2).astype(np.float32), chunks=(10, 2))
        group.create_array("data/state", data=np.random.rand(40, 5).astype(np.float32), chunks=(10, 5))
        group.create_array("meta/episode_ends", data=np.array([20, 40]), chunks=(2,))
        return inspect(damage(root))

    return prepare


def zarr_missing_chunk(root: Path) -> Path:
    (root / "data" / "action" / "2.0").unlink()
    return root


def zarr_ends_decreasing(root: Path) -> Path:
    import zarr

    zarr.open_array(str(root / "meta" / "episode_ends"), mode="r+")[:] = [30, 20]
    return root


def zarr_truncated_zip(root: Path) -> Path:
    archive = Path(shutil.make_archive(str(root.parent / "buffer.zarr"), "zip", root))
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2])
    return archive


def special(path: str) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        if path == "fifo":
            os.mkfifo(folder / "fifo")
            return inspect(folder / "fifo")
        return inspect(Path(path))

    return prepare


def checkpoint_case(damage: Callable[[Path, Path], None], command: str = "eval") -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        run_dir, step = copy_run(ROOT, folder)
        damage(run_dir, step)
        if command == "resume":
            return protege(*train_mlp(ROOT / "data", run_dir, steps=30), "--resume")
        return protege(
            "eval", str(run_dir), "--episodes", "2", "--num-envs", "2", "--out", str(folder / "eval"), *QUIET
        )

    return prepare


def weights_file(step: Path) -> Path:
    return step / "model.safetensors"


def rewrite_weights(step: Path, change: Callable[[dict], dict]) -> None:
    from safetensors.torch import load_file, save_file

    for name in ("model.safetensors", "ema.safetensors"):
        if (step / name).exists():
            save_file(change(load_file(step / name)), step / name)


def weights_int32(run_dir: Path, step: Path) -> None:
    import torch

    rewrite_weights(step, lambda w: {k: v.to(torch.int32) if v.is_floating_point() else v for k, v in w.items()})


def weights_nan(run_dir: Path, step: Path) -> None:
    rewrite_weights(
        step,
        lambda w: {k: v * float("nan") if "normalizer" not in k and v.is_floating_point() else v for k, v in w.items()},
    )


def stats_nan(run_dir: Path, step: Path) -> None:
    rewrite_weights(
        step,
        lambda w: {k: v * float("nan") if "normalizer" in k and v.is_floating_point() else v for k, v in w.items()},
    )


def weights_shape(run_dir: Path, step: Path) -> None:
    rewrite_weights(
        step,
        lambda w: {k: v[..., :-1].contiguous() if v.ndim == 2 and "normalizer" not in k else v for k, v in w.items()},
    )


def raw_damage(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    def apply(run_dir: Path, step: Path) -> None:
        for file in (step / name, step / name.replace("model", "ema")):
            if file.exists():
                file.write_bytes(change(file.read_bytes()))

    return apply


def latest_outside(run_dir: Path, step: Path) -> None:
    outside = run_dir.parent / "elsewhere"
    shutil.copytree(step, outside)
    (run_dir / "checkpoints" / "latest.json").write_text(json.dumps({"step": 20, "dir": "../../elsewhere"}))


def latest_broken(run_dir: Path, step: Path) -> None:
    (run_dir / "checkpoints" / "latest.json").write_text('{"step": 20, "dir": ')


def latest_no_dir(run_dir: Path, step: Path) -> None:
    (run_dir / "checkpoints" / "latest.json").write_text('{"step": 20}')


def config_edit(change: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def apply(run_dir: Path, step: Path) -> None:
        meta = json.loads((step / "config.json").read_text())
        change(meta)
        (step / "config.json").write_text(json.dumps(meta))

    return apply


def train_case(*args: str, with_task: bool = True) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        return protege(
            "train",
            str(ROOT / "data"),
            "policy:mlp",
            "--out",
            str(folder / "run"),
            "--device",
            "cpu",
            "--eval-every",
            "0",
            *args,
            *QUIET,
        )

    return prepare


def eval_case(*args: str) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        return protege("eval", str(ROOT / "run"), "--episodes", "2", "--out", str(folder / "eval"), *args, *QUIET)

    return prepare


def unwritable_out(folder: Path) -> list[str]:
    (folder / "file").write_text("x")
    return protege("eval", str(ROOT / "run"), "--episodes", "2", "--out", str(folder / "file" / "eval"), *QUIET)


def readonly_out(folder: Path) -> list[str]:
    """/sys refuses new files even to root (a read-only folder would not stop root)."""
    return protege("export", str(ROOT / "data"), "/sys/protege-probe/x.hdf5", "--format", "robomimic", *QUIET)


def existing_dest(folder: Path) -> list[str]:
    (folder / "dest").mkdir()
    return protege("import", str(ROOT / "data"), str(folder / "dest"), *QUIET)


def nothing_succeeded(folder: Path) -> list[str]:
    return protege(
        "collect",
        "toy/fork",
        "--episodes",
        "2",
        "--epsilon",
        "1.0",
        "--success-only",
        "--out",
        str(folder / "d"),
        *QUIET,
    )


def overwrite_kills(folder: Path) -> list[str]:
    """Kill ``protege import --overwrite`` at 12 moments; the destination must read back every time."""
    dest = folder / "dest"
    subprocess.run(protege("import", str(ROOT / "data"), str(dest), *QUIET), env=ENV, check=True, capture_output=True)
    for delay in np.linspace(1.0, 4.0, 12):
        process = subprocess.Popen(
            protege("import", str(ROOT / "data"), str(dest), "--overwrite", *QUIET),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    return inspect(dest)  # a later run cleans up or restores what the kills left


def no_leftovers(folder: Path, done: subprocess.CompletedProcess) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".dest.")] and "episodes" in done.stdout


ROOT = Path()
CASES = [
    # datasets
    Case("lerobot: success stored as strings", "dataset", lerobot_case(success_strings), ("success",)),
    Case("lerobot: success stored as 2", "dataset", lerobot_case(success_two), ("success",)),
    Case("lerobot: seed stored as 3.7", "dataset", lerobot_case(seed_float), ("seed",)),
    Case("lerobot: duplicate index values", "dataset", lerobot_case(duplicate_index), ("index",)),
    Case(
        "lerobot: episode boundary moved (frame_index disagrees)",
        "dataset",
        lerobot_case(moved_boundary),
        ("frame_index",),
    ),
    Case("lerobot: fps contradicts timestamps", "dataset", lerobot_case(info_edit(fps_doubled)), ("fps",)),
    Case("lerobot: unknown dtype in info.json", "dataset", lerobot_case(info_edit(unknown_dtype)), ("float33",)),
    Case("lerobot: truncated data parquet", "dataset", lerobot_case(truncate(data_file)), ("parquet",)),
    Case("lerobot: truncated episodes parquet", "dataset", lerobot_case(truncate(episodes_file)), ("parquet",)),
    Case(
        "lerobot: info.json not JSON",
        "dataset",
        lerobot_case(truncate(lambda d: d / "meta" / "info.json")),
        ("info.json",),
    ),
    Case(
        "lerobot: info.json missing",
        "dataset",
        lerobot_case(lambda d: (d / "meta" / "info.json").unlink()),
        ("info.json",),
    ),
    Case("lerobot: NaN action", "dataset", lerobot_case(nan_action), ("NaN",)),
    Case(
        "robomimic: success attribute 'yes'",
        "dataset",
        export_case("robomimic", "x.hdf5", h5_edit(robomimic_success_yes)),
        ("success",),
    ),
    Case(
        "robomimic: demo without actions",
        "dataset",
        export_case("robomimic", "x.hdf5", h5_edit(robomimic_no_actions)),
        ("actions",),
    ),
    Case(
        "robomimic: truncated HDF5",
        "dataset",
        export_case("robomimic", "x.hdf5", truncate(lambda p: p)),
        ("truncated",),
    ),
    Case(
        "minari: episode beyond total_episodes",
        "dataset",
        export_case("minari", "toy-v0", h5_edit(minari_extra_episode)),
        ("total_episodes",),
    ),
    Case(
        "minari: truncated main_data.hdf5",
        "dataset",
        export_case("minari", "toy-v0", truncate(lambda p: p / "data" / "main_data.hdf5")),
        ("truncated",),
    ),
    Case("zarr: missing chunk file", "dataset", zarr_case(zarr_missing_chunk), ("chunk",)),
    Case("zarr: episode_ends decreasing", "dataset", zarr_case(zarr_ends_decreasing), ("episode_ends",)),
    Case("zarr: truncated .zarr.zip", "dataset", zarr_case(zarr_truncated_zip), ("truncated",)),
    Case("inspect a FIFO", "dataset", special("fifo"), ("FIFO",)),
    Case("inspect /dev/zero", "dataset", special("/dev/zero"), ("/dev/zero",)),
    # checkpoints
    Case(
        "checkpoint: truncated model.safetensors",
        "checkpoint",
        checkpoint_case(raw_damage("model.safetensors", lambda b: b[: len(b) - 7])),
        ("safetensors",),
    ),
    Case(
        "checkpoint: empty model.safetensors",
        "checkpoint",
        checkpoint_case(raw_damage("model.safetensors", lambda b: b"")),
        ("safetensors",),
    ),
    Case(
        "checkpoint: bad safetensors header",
        "checkpoint",
        checkpoint_case(raw_damage("model.safetensors", lambda b: b[:8] + b"{x" + b[10:])),
        ("safetensors",),
    ),
    Case(
        "checkpoint: header size beyond the file",
        "checkpoint",
        checkpoint_case(raw_damage("model.safetensors", lambda b: struct.pack("<Q", 10**9) + b[8:])),
        ("safetensors",),
    ),
    Case(
        "checkpoint: a flipped byte in the weights",
        "checkpoint",
        checkpoint_case(raw_damage("model.safetensors", lambda b: b[:-9] + bytes([b[-9] ^ 0x40]) + b[-8:])),
        ("safetensors",),
    ),
    Case("checkpoint: weights stored as int32", "checkpoint", checkpoint_case(weights_int32), ("int32",)),
    Case("checkpoint: NaN weights", "checkpoint", checkpoint_case(weights_nan), ("NaN",)),
    Case("checkpoint: NaN normalizer stats", "checkpoint", checkpoint_case(stats_nan), ("NaN",)),
    Case("checkpoint: weights of another shape", "checkpoint", checkpoint_case(weights_shape), ("safetensors",)),
    Case(
        "checkpoint: latest.json leads outside the run", "checkpoint", checkpoint_case(latest_outside), ("latest.json",)
    ),
    Case("checkpoint: latest.json not JSON", "checkpoint", checkpoint_case(latest_broken), ("latest.json",)),
    Case("checkpoint: latest.json without dir", "checkpoint", checkpoint_case(latest_no_dir), ("latest.json",)),
    Case(
        "checkpoint: config.json without spec",
        "checkpoint",
        checkpoint_case(config_edit(lambda m: m.pop("spec"))),
        ("config.json",),
    ),
    Case(
        "checkpoint: unknown policy setting",
        "checkpoint",
        checkpoint_case(config_edit(lambda m: m["policy"].update(hiden=3))),
        ("hiden",),
    ),
    Case(
        "checkpoint: damaged train_state on --resume",
        "checkpoint",
        checkpoint_case(raw_damage("train_state.safetensors", lambda b: b[:20]), "resume"),
        ("train_state",),
    ),
    # command lines
    Case("train --steps 0", "cli", train_case("--steps", "0"), ("--steps",)),
    Case("train --steps -1", "cli", train_case("--steps", "-1"), ("--steps",)),
    Case("train --val-fraction -0.5", "cli", train_case("--val-fraction", "-0.5"), ("--val-fraction",)),
    Case(
        "train --eval-task unknown",
        "cli",
        train_case("--eval-task", "toy/forks", "--eval-every", "10"),
        ("--eval-task",),
    ),
    Case(
        "train --eval-task with other action width",
        "cli",
        train_case("--eval-task", "metaworld/push", "--eval-every", "10", "--steps", "20"),
        ("action",),
    ),
    Case(
        "train diverging (--lr 1e30)",
        "cli",
        train_case("--lr", "1e30", "--steps", "200", "--warmup-steps", "0", "--grad-clip", "0"),
        ("loss",),
    ),
    Case("eval --num-envs 0", "cli", eval_case("--num-envs", "0"), ("--num-envs",)),
    Case("eval --out under a file", "cli", unwritable_out, ("file",)),
    Case("export into a folder nobody may write", "cli", readonly_out, ("/sys/protege-probe",)),
    Case("import onto an existing folder", "cli", existing_dest, ("--overwrite",)),
    Case("collect --success-only, nothing succeeds", "cli", nothing_succeeded, ("succeeded",)),
    # kills
    Case("import --overwrite killed 12 times", "kill", overwrite_kills, (), no_leftovers),
]


def main() -> None:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the per-case results as JSON here")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ROOT = Path(tmp) / "base"
        base(ROOT)
        results = []
        for number, case in enumerate(c for c in CASES if args.only in c.name):
            folder = Path(tmp) / f"case{number}"
            folder.mkdir()
            command = case.prepare(folder)
            done, seconds = run(command, folder)
            outcome, message = verdict(case, done, folder)
            results.append(
                {
                    "case": case.name,
                    "kind": case.kind,
                    "verdict": outcome,
                    "message": message,
                    "seconds": round(seconds, 1),
                }
            )
            print(f"{outcome:7s} {case.name}: {message[:160]}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    counts = Counter(r["verdict"] for r in results)
    summary = {"cases": len(results), **{v: counts.get(v, 0) for v in ("good", "poor", "silent", "crash", "hang")}}
    print(json.dumps(summary))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"summary": summary, "cases": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
