r"""protege's data as LeRobot, robomimic and Minari themselves see it: a pass/fail table per tool and direction.

    python benchmarks/interop.py [--build] [--label after] [--protege PYTHON] [--protege-src SRC]
        [--venvs ~/.cache/protege-interop] [--work /tmp/protege-interop] [--only lerobot robomimic minari]

    # the "before" table of issue 15: protege as it was, the main venv's python on an old checkout
    git worktree add /tmp/protege-before a4eb5d1
    python benchmarks/interop.py --label before --protege-src /tmp/protege-before/src

Not in CI (minutes, three extra virtual environments, ~12 GB). protege writes the datasets with
its own command line (``protege collect``, ``export``, ``import``, ``inspect``, ``train``), run by
``--protege`` (a python with protege installed; default: this one) with ``--protege-src`` put
first on its PYTHONPATH, so another checkout can be measured with the same interpreter. Each
other tool runs in its own venv under ``--venvs`` (``--build`` makes the missing ones) through its
own readers, writers and trainers: the workers in benchmarks/peers/interop_*.py, robomimic's
``scripts/get_dataset_info.py`` and ``scripts/split_train_val.py``, ``lerobot-train``. For the
other direction protege reads what the tool wrote or modified.

Every check catches its own error and becomes one row (tool, direction, check, the issue-15 finding
it tests, pass/fail, a short reason: the exception's first line or the measured value); a check
whose input a failed step should have made fails with that reason. Writes ``--out`` (default
benchmarks/results/interop-<label>.json) and the markdown table beside it (.md), and prints the
table. Nothing here imports protege: the protege under test is only ever run as a command.

The venvs (``--build`` runs exactly this; they take a few minutes each)::

    # LeRobot 0.4.4: tests/fixtures/regenerate.py's install_lerobot (torch 2.14.1 + torchvision 0.29.1,
    # lerobot --no-deps, then its other requirements), plus torchcodec for video decoding, which
    # needs the system's FFmpeg libraries (LeRobot's "pyav" fallback calls torchvision.io.VideoReader,
    # gone from torchvision 0.29):
    apt-get install -y --no-install-recommends libavutil-dev libavcodec-dev libavformat-dev \
        libavdevice-dev libavfilter-dev libswscale-dev libswresample-dev
    VENV/bin/pip install torchcodec
    # robomimic 0.3.0 imports torchvision at module level, and PyPI's torchvision does not load
    # beside torch 2.13.0+cpu (no torchvision::nms), so it gets LeRobot's torch pair:
    VENV/bin/pip install torch==2.14.1 torchvision==0.29.1 six h5py tqdm termcolor psutil imageio matplotlib
    VENV/bin/pip install --no-deps robomimic==0.3.0
    # Minari 0.5.4, with Gymnasium-Robotics so recover_environment() can make FetchPickAndPlace:
    VENV/bin/pip install "minari[hdf5]==0.5.4" pillow gymnasium-robotics==1.4.2 mujoco==3.3.0
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "peers"
SHARED = ROOT.parent / "shared" / "fixtures"
VENVS = Path.home() / ".cache" / "protege-interop"
TOOLS = ("robomimic", "lerobot", "minari")
CLI = "import sys; from protege.cli import main; sys.argv[0] = 'protege'; sys.exit(main())"
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
ROBOMIMIC = [
    ["torch==2.14.1", "torchvision==0.29.1", "six", "h5py", "tqdm", "termcolor", "psutil", "imageio", "matplotlib"],
    ["--no-deps", "robomimic==0.3.0"],
]
MINARI = [["minari[hdf5]==0.5.4", "pillow", "gymnasium-robotics==1.4.2", "mujoco==3.3.0"]]
FFMPEG = [
    "libavutil-dev",
    "libavcodec-dev",
    "libavformat-dev",
    "libavdevice-dev",
    "libavfilter-dev",
    "libswscale-dev",
    "libswresample-dev",
]
#: the import that proves a venv is usable
PROBES = {
    "robomimic": "import robomimic.scripts.train",
    "lerobot": "import lerobot.datasets.dataset_tools",
    "minari": "import minari, gymnasium_robotics",
}
#: words with which protege may name a missing episode column (issue 15, finding 5)
ABSENCE = re.compile(r"missing|absent|not recorded|not kept|not stored|no longer|lost|dropped|without", re.I)
EPISODE_COLUMNS = ("success", "source", "seed")
#: tiny ACT and diffusion for lerobot-train on a CPU (ACT's default backbone weights would be downloaded)
LEROBOT_POLICIES = {
    "act": [
        "--policy.pretrained_backbone_weights=null",
        "--policy.dim_model=64",
        "--policy.n_heads=2",
        "--policy.dim_feedforward=128",
        "--policy.n_encoder_layers=1",
        "--policy.chunk_size=10",
        "--policy.n_action_steps=10",
    ],
    "diffusion": [
        "--policy.down_dims=[32,64]",
        "--policy.diffusion_step_embed_dim=32",
        "--policy.horizon=16",
        "--policy.n_action_steps=8",
    ],
}


# ----------------------------------------------------------------------------------- rows


@dataclass
class Row:
    tool: str
    direction: str
    check: str
    finding: str  # the issue-15 finding it tests ("" for a plain or control check; "(guard)": passed already)
    ok: bool | None  # None: not run
    detail: str


class Missing(Exception):
    """A check's input was to be made by a step that failed."""


class StepError(Exception):
    """A command or a worker failed; the message is its error's first line."""


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def error_line(output: str) -> str:
    """The line that says what went wrong: protege's 'error:', an argument parser's complaint, the last
    exception line, else the last line (box-drawing frames stripped).
    """
    lines = [line.strip(" │╭╮╰╯─") for line in output.splitlines()]
    lines = [line for line in lines if line]
    patterns = (r"^\S+ \S*: ?error: ", r"^Unrecognized options: ", r"^[\w.]*(Error|Exception)\b.*:")
    for pattern in patterns:
        hits = [line for line in lines if re.search(pattern, line)]
        if hits:
            return hits[-1][:300]
    return lines[-1][:300] if lines else "(no output)"


class Table:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.done: dict[str, bool] = {}  # step name -> whether it succeeded

    def check(self, tool: str, direction: str, name: str, finding: str, run: Callable[[], tuple[bool, str]]) -> bool:
        start = time.perf_counter()
        try:
            ok, detail = run()
        except Missing as missing:
            ok, detail = False, f"needs {missing}, which failed"
        except Exception as error:  # noqa: BLE001 - each check records its own failure
            ok, detail = False, first_line(str(error)) or type(error).__name__
        row = Row(tool, direction, name, finding, bool(ok), detail)
        self.rows.append(row)
        self.done[name] = bool(ok)
        mark = "pass" if ok else "FAIL"
        print(f"[{time.perf_counter() - start:6.1f} s] {mark}  {tool} {direction}: {name}: {detail}", flush=True)
        return bool(ok)

    def not_run(self, tool: str, direction: str, name: str, finding: str, why: str) -> None:
        self.rows.append(Row(tool, direction, name, finding, None, f"not run: {why}"))
        print(f"           n/a   {tool} {direction}: {name}: not run: {why}", flush=True)

    def need(self, name: str) -> None:
        if not self.done.get(name):
            raise Missing(f"'{name}'")


# ------------------------------------------------------------------------------ commands


@dataclass
class Setup:
    protege_python: str
    protege_src: Path | None
    venvs: Path
    work: Path
    nice: int

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **THREADS, **extra}
        if self.protege_src is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.protege_src), env.get("PYTHONPATH")]))
        return env

    def python(self, tool: str) -> Path:
        return self.venvs / f"venv-{tool}" / "bin" / "python"

    def run(self, command: Sequence[str], timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
        niced = ["nice", "-n", str(self.nice), *map(str, command)]
        return subprocess.run(
            niced, capture_output=True, text=True, env=self.env(**env), timeout=timeout, cwd=self.work
        )

    def protege(self, *args: str | Path, env: dict[str, str] | None = None) -> str:
        """Run the protege under test; its stdout + stderr, or StepError with its error line."""
        done = self.run([self.protege_python, "-c", CLI, *map(str, args)], **(env or {}))
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise StepError(error_line(output))
        return output

    def inspect(self, path: Path, env: dict[str, str] | None = None) -> tuple[dict, str]:
        report = self.work / "inspect.json"
        report.unlink(missing_ok=True)
        output = self.protege("inspect", path, "--json", report, env=env)
        return json.loads(report.read_text()), output

    def peer(self, tool: str, *args: str | Path, **env: str) -> dict:
        """Run benchmarks/peers/interop_<tool>.py in the tool's venv; the JSON it prints last."""
        done = self.run([self.python(tool), PEERS / f"interop_{tool}.py", *args], **env)
        if done.returncode != 0:
            raise StepError(error_line(done.stderr + done.stdout))
        return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ file helpers


def parquet_column(folder: Path, column: str) -> list:
    files = sorted((folder / "data").rglob("*.parquet"))
    return [value for file in files for value in pq.read_table(file, columns=[column]).column(column).to_pylist()]


def episode_sums(folder: Path, column: str) -> dict[int, float]:
    values = np.asarray(parquet_column(folder, column), dtype=np.float64).reshape(-1)
    episodes = np.asarray(parquet_column(folder, "episode_index"))
    return {int(e): float(values[episodes == e].sum()) for e in np.unique(episodes)}


def tasks_of(folder: Path) -> list[str]:
    table = pq.read_table(folder / "meta" / "tasks.parquet")  # a pandas frame indexed by the task string
    index = (table.schema.pandas_metadata or {}).get("index_columns") or ["task"]
    column = "task" if "task" in table.column_names else index[0]
    return sorted(str(name) for name in table.column(column).to_pylist())


def videos_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((folder / "videos").rglob("*.mp4")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def first_difference(a, b, path: str = "") -> str:
    """Where two JSON values first differ, e.g. 'low[2]: -0.6 vs -1.0'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                where = ("absent" if key not in a else "present", "absent" if key not in b else "present")
                return f"{path}{key}: {where[0]} vs {where[1]}"
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{path}{key}.")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path.rstrip('.')}[{i}].")
    shorten = lambda v: json.dumps(v)[:60]  # noqa: E731
    return f"{path.rstrip('.') or 'value'}: {shorten(a)} vs {shorten(b)}"


def as_json(value):
    return json.loads(value) if isinstance(value, str) else value


# ----------------------------------------------------------------------------- protege data


def collect(setup: Setup, table: Table) -> dict[str, Path]:
    data = {"state": setup.work / "pusht-state", "pixels": setup.work / "pusht-pixels"}

    def state() -> tuple[bool, str]:
        out = setup.protege(
            "collect", "pusht", "--episodes", "5", "--out", data["state"], "--overwrite", "--no-progress"
        )
        return True, first_line(out.splitlines()[-1])

    def pixels() -> tuple[bool, str]:
        out = setup.protege(
            "collect", "pusht", "--pixels", "--episodes", "3", "--out", data["pixels"], "--overwrite", "--no-progress"
        )
        return True, first_line(out.splitlines()[-1])

    def lists_images() -> tuple[bool, str]:
        table.need("collect pusht --pixels")
        report, _ = setup.inspect(data["pixels"])
        names = [f["name"] for f in report.get("features", [])]
        images = [n for n in names if n.startswith("observation.image")]
        return bool(images), f"features listed: {', '.join(names)}"

    table.check("protege", "setup", "collect pusht --episodes 5 (state)", "", state)
    table.check("protege", "setup", "collect pusht --pixels", "", pixels)
    table.check("protege", "protege", "inspect lists the image feature of a --pixels dataset", "7", lists_images)
    return data


# -------------------------------------------------------------------------------- robomimic


def robomimic_checks(setup: Setup, table: Table, data: dict[str, Path]) -> None:
    tool, out, back = "robomimic", "protege -> robomimic", "robomimic -> protege"
    folder = setup.work / "robomimic"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    exported, split = folder / "pusht.hdf5", folder / "pusht-split.hdf5"
    python = setup.python(tool)

    export_output: list[str] = []

    def export() -> tuple[bool, str]:
        table.need("collect pusht --episodes 5 (state)")
        export_output.append(setup.protege("export", data["state"], exported, "--format", "robomimic", "--no-progress"))
        return True, first_line(export_output[-1].splitlines()[-1])

    def warns_of_raw_observations() -> tuple[bool, str]:
        """The fault is robomimic's (it trains on observations as stored; its hdf5_normalize_obs fails in 0.3.0):
        protege's export should say so when it matters."""
        table.need("export --format robomimic")
        warned = [line for line in export_output[-1].splitlines() if "robomimic trains on observations" in line]
        return bool(warned), first_line(warned[0]) if warned else "no warning"

    def dataset_info() -> tuple[bool, str]:
        table.need("export --format robomimic")
        done = setup.run([python, "-m", "robomimic.scripts.get_dataset_info", "--dataset", exported])
        bounds = re.findall(r"action (min|max): (\S+)", done.stdout)
        measured = ", ".join(f"{k} {float(v):.3g}" for k, v in bounds)
        if done.returncode != 0:
            return False, error_line(done.stderr + done.stdout)
        return True, f"accepted: action {measured}"

    def sequence_dataset() -> tuple[bool, str]:
        table.need("export --format robomimic")
        loaded = setup.peer(tool, "load", "--dataset", exported)
        return True, (
            f"{loaded['samples']} samples of {loaded['demos']} demos, obs {loaded['obs_keys']}, "
            f"actions in [{loaded['action_min']:.3g}, {loaded['action_max']:.3g}]"
        )

    trained: dict[str, dict] = {}
    runs = {"raw": [], "z-scored": ["--standardize-obs"]}

    def train(obs: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            table.need("export --format robomimic")
            settings = ["--epochs", "3", "--steps", "30", *runs[obs]]
            got = setup.peer(tool, "train", "--dataset", exported, "--out", folder / f"bc-{obs}", *settings)
            trained[obs] = got
            return True, f"{got['epochs']} epochs x {got['steps_per_epoch']} steps, final loss {got['loss']:.4g}"

        return run

    def fits(obs: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            if obs not in trained:
                raise Missing(f"train.py BC on {obs} observations")
            l1, floor = trained[obs]["l1_loss"], trained[obs]["mean_action_l1_loss"]
            return l1 < floor, f"final L1 {l1:.4g} vs {floor:.4g} for always predicting the mean action"

        return run

    def import_back() -> tuple[bool, str]:
        table.need("export --format robomimic")
        setup.protege("import", exported, folder / "imported", "--overwrite", "--no-progress")
        original = np.asarray(parquet_column(data["state"], "action"), np.float64)
        back_in = np.asarray(parquet_column(folder / "imported", "action"), np.float64)
        if original.shape != back_in.shape:
            return False, f"actions {back_in.shape} vs {original.shape}"
        error = float(np.abs(original - back_in).max())
        return error <= 1e-4 * max(1.0, float(np.abs(original).max())), f"max |action - original| = {error:.3g}"

    def split_masks() -> tuple[bool, str]:
        table.need("export --format robomimic")
        shutil.copyfile(exported, split)
        done = setup.run([python, "-m", "robomimic.scripts.split_train_val", "--dataset", split, "--ratio", "0.4"])
        if done.returncode != 0:
            return False, f"split_train_val.py: {error_line(done.stderr + done.stdout)}"
        report, _ = setup.inspect(split)
        subsets = report.get("subsets", {})
        import h5py

        with h5py.File(split, "r") as file:
            masks = {name: len(file["mask"][name]) for name in file["mask"]}
        counts = {k: (len(v) if isinstance(v, list) else v) for k, v in subsets.items()}
        return counts == masks, f"protege subsets {counts}, robomimic masks {masks}"

    table.check(tool, out, "export --format robomimic", "", export)
    table.check(tool, out, "get_dataset_info.py accepts the file (actions in [-1, 1])", "1", dataset_info)
    table.check(tool, out, "SequenceDataset loads the file", "", sequence_dataset)
    table.check(tool, out, "train.py BC (3 epochs x 30 steps, CPU) runs on the file", "", train("raw"))
    table.check(tool, out, "BC fits the file as is (raw observations): L1 below the mean action's", "", fits("raw"))
    table.check(tool, out, "export warns that robomimic trains on raw observations", "1", warns_of_raw_observations)
    table.check(tool, out, "train.py BC on the file with observations z-scored", "", train("z-scored"))
    table.check(tool, out, "BC fits with observations z-scored: L1 below the mean action's", "1", fits("z-scored"))
    table.check(tool, back, "protege import of the export restores the original actions", "1 (guard)", import_back)
    table.check(tool, back, "split_train_val.py masks read as protege subsets", "", split_masks)


# --------------------------------------------------------------------------------- LeRobot


def lerobot_train(setup: Setup, root: Path, policy: str, out: Path, steps: int = 4) -> tuple[bool, str]:
    shutil.rmtree(out, ignore_errors=True)
    command = [
        setup.python("lerobot").parent / "lerobot-train",
        "--dataset.repo_id=protege/interop",
        f"--dataset.root={root}",
        f"--policy.type={policy}",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        *LEROBOT_POLICIES[policy],
        f"--steps={steps}",
        "--batch_size=2",
        "--num_workers=0",
        "--log_freq=1",
        "--save_checkpoint=false",
        "--eval_freq=0",
        "--wandb.enable=false",
        f"--output_dir={out}",
    ]
    done = setup.run(command)
    output = done.stdout + done.stderr
    losses = re.findall(r"step:(\d+) .*?loss:(\S+)", output)
    if done.returncode != 0 or "End of training" not in output:
        return False, error_line(output)
    return True, f"{len(losses)} steps, last loss {losses[-1][1]}" if losses else "trained (no loss logged)"


def describe_pictures(described: dict) -> str:
    return (
        "; ".join(
            f"{k}: {v['dtype']} {v['shape']} in [{v['min']:.3g}, {v['max']:.3g}]"
            for k, v in described["samples"].items()
        )
        or "no picture features"
    )


def is_camera_frame(sample: dict) -> bool:
    """LeRobot's camera contract: float32 (C, H, W) in [0, 1]."""
    shape = sample.get("shape", [])
    return (
        sample.get("dtype") == "float32"
        and len(shape) == 3
        and shape[0] == 3
        and 0 <= sample["min"] <= sample["max"] <= 1
    )


def columns_named(output: str, columns: list[str]) -> bool:
    """Whether protege's output names the absence of the episode columns LeRobot's tool dropped."""
    return any(ABSENCE.search(line) and any(c in line for c in columns) for line in output.splitlines())


def success_rate(success: list) -> str:
    known = [bool(x) for x in success if x is not None]
    return f"{np.mean(known):.0%} of {len(known)}" if known else f"unknown for {len(success)}"


def after_tool(setup: Setup, tool_output: dict, folder: Path, original: dict, kept: slice) -> dict:
    """What protege makes of a LeRobot dataset tool's output: whether the tool dropped success/source/seed
    from meta/episodes, whether protege still reads the original values (original: protege's inspect of
    the source; kept: the source episodes the tool kept), and whether protege names what is missing.
    """
    lost = [c for c in EPISODE_COLUMNS if c in tool_output["source_columns"] and c not in tool_output["columns"]]
    report, output = setup.inspect(folder)
    now, before = report.get("per_episode", {}), original.get("per_episode", {})
    kept_values = {c: list(now.get(c, [])) == list(before.get(c, []))[kept] for c in ("success", "source")}
    # a return summed again from the float32 next.reward differs from the float64 one recorded by ~1e-7
    now_return, before_return = now.get("return", []), list(before.get("return", []))[kept]
    kept_values["return"] = (
        len(now_return) == len(before_return)
        and None not in now_return
        and bool(np.allclose(now_return, before_return, rtol=1e-5, atol=0))
    )
    return {
        "lost": lost,
        "recovered": kept_values["success"] and kept_values["source"],
        "kept": kept_values,
        "named": bool(lost) and columns_named(output, lost),
        "success": success_rate(now.get("success", [])),
    }


def kept_or_named(state: dict) -> tuple[bool, str]:
    if not state["lost"]:
        return state[
            "recovered"
        ], f"columns kept; success {state['success']}, {'as' if state['recovered'] else 'not as'} before"
    if state["recovered"]:
        return True, f"tool dropped {', '.join(state['lost'])}; protege still reads the original values"
    said = "absence named" if state["named"] else f"absence not named, success reads {state['success']}"
    return state["named"], f"tool dropped {', '.join(state['lost'])}; protege inspect: {said}"


#: The episode column each curation method ranks or filters by.
CURATION_NEEDS = {"success-only": "success", "top-k": "return"}


def curation_refuses(setup: Setup, folder: Path, method: str, state: dict) -> tuple[bool, str]:
    """`protege train` with a curation that needs success/return: right if the values survived, else it refuses
    or warns, naming what is missing.
    """
    settings = "--steps 2 --batch-size 8 --eval-every 0 --save-every 2 --no-progress".split()
    run_folder = setup.work / f"train-{method}"
    shutil.rmtree(run_folder, ignore_errors=True)  # a rerun in the same --work starts afresh
    args = ["train", folder, "--curation.methods", method, *settings, "--out", run_folder]
    needed = CURATION_NEEDS[method]
    lost = [] if state["recovered"] or state["kept"][needed] else state["lost"]
    try:
        output = setup.protege(*args, "policy:mlp")
    except StepError as error:
        named = bool(lost) and columns_named(str(error), lost)
        return named, f"refused: {error}" if named else f"refused for another reason: {error}"
    if not lost:
        return True, f"trained on the original '{needed}' values (kept or recovered)"
    warned = [line for line in output.splitlines() if ABSENCE.search(line) and any(c in line for c in lost)]
    if warned:
        return True, f"trained, warned: {first_line(warned[0])}"
    return False, f"trained, no word that LeRobot's tool dropped {', '.join(lost)} (all read as defaults)"


def lerobot_checks(setup: Setup, table: Table, data: dict[str, Path]) -> None:
    tool, out, back = "lerobot", "protege -> lerobot", "lerobot -> protege"
    folder = setup.work / "lerobot"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    keyed, pixel_export = folder / "pusht-keys", folder / "pusht-pixels-export"
    seen: dict[str, dict] = {}

    def load(name: str, root: Path, needs: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            table.need(needs)
            seen[name] = setup.peer(tool, "describe", "--root", root)
            return True, f"{seen[name]['episodes']} episodes, {seen[name]['frames']} frames"

        return run

    def cameras(name: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            if name not in seen:
                raise Missing(f"LeRobotDataset on {name}")
            return bool(seen[name]["camera_keys"]), f"camera_keys {seen[name]['camera_keys']}"

        return run

    def frames(name: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            if name not in seen:
                raise Missing(f"LeRobotDataset on {name}")
            samples = [seen[name]["samples"].get(k, {}) for k in seen[name]["camera_keys"]]
            return bool(samples) and all(map(is_camera_frame, samples)), describe_pictures(seen[name])

        return run

    def export_keys() -> tuple[bool, str]:
        table.need("collect pusht --episodes 5 (state)")
        output = setup.protege(
            "export",
            data["state"],
            keyed,
            "--format",
            "lerobot",
            "--overwrite",
            "--no-progress",
            "--keys",
            "observation.state=observation.state[0:2]",
            "observation.environment_state=observation.state[2:5]",
        )
        return True, first_line(output.splitlines()[-1])

    def environment_state() -> tuple[bool, str]:
        if "keys" not in seen:
            raise Missing("LeRobotDataset on the --keys export")
        features = seen["keys"]["features"]
        shapes = {
            k: features[k]["shape"] for k in ("observation.state", "observation.environment_state") if k in features
        }
        return "observation.environment_state" in features, f"features {shapes}"

    def export_pixels() -> tuple[bool, str]:
        table.need("collect pusht --pixels")
        output = setup.protege(
            "export", data["pixels"], pixel_export, "--format", "lerobot", "--overwrite", "--no-progress"
        )
        return True, first_line(output.splitlines()[-1])

    def train(root: Path, policy: str, needs: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            table.need(needs)
            return lerobot_train(setup, root, policy, folder / f"train-{policy}-{root.name}")

        return run

    tools_output: dict[str, dict] = {}

    def dataset_tool(mode: str, result: Path, kept: slice) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            table.need("collect pusht --episodes 5 (state)")
            got = setup.peer(tool, mode, "--root", data["state"], "--out", folder / mode)
            original, _ = setup.inspect(data["state"])
            tools_output[mode] = after_tool(setup, got, result, original, kept)
            return kept_or_named(tools_output[mode])

        return run

    def curation(method: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            if "delete" not in tools_output:
                raise Missing("delete_episodes")
            return curation_refuses(setup, folder / "delete", method, tools_output["delete"])

        return run

    multitask = folder / "multitask"

    def write_multitask() -> tuple[bool, str]:
        written = setup.peer(tool, "multitask", "--out", multitask)
        return True, f"{written['episodes']} episodes, tasks {written['tasks']}"

    def inspect_multitask() -> tuple[bool, str]:
        table.need("LeRobot writes a 2-task dataset (LeRobotDataset.create + add_frame)")
        output = setup.protege("inspect", multitask)
        listed = [task for task in ("reach", "push") if re.search(rf"\b{task}\b", output)]
        return len(listed) == 2, f"tasks named in the report: {listed}"

    def import_multitask() -> tuple[bool, str]:
        table.need("LeRobot writes a 2-task dataset (LeRobotDataset.create + add_frame)")
        setup.protege("import", multitask, folder / "multitask-imported", "--overwrite", "--no-progress")
        tasks = tasks_of(folder / "multitask-imported")
        return tasks == ["push", "reach"], f"imported tasks {tasks}"

    def video(source: Path, name: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            if not (source / "meta" / "info.json").exists():
                raise Missing(f"the LeRobot video dataset {source.name}")
            imported = folder / f"{name}-imported"
            setup.protege("import", source, imported, "--overwrite", "--no-progress")
            compared = setup.peer(tool, "compare-video", "--root", source, "--other", imported)
            copied = "MP4 bytes identical" if videos_digest(source) == videos_digest(imported) else "MP4 bytes differ"
            errors = [v for k, v in compared.items() if isinstance(v, dict) and "mae" in v]
            if not errors:
                return False, f"no video key compared: {compared}"
            mae, worst = max(e["mae"] for e in errors), max(e["worst_frame_mae"] for e in errors)
            return mae == 0, f"{copied}; decoded MAE {mae:.3g} (0..255), worst frame {worst:.3g}"

        return run

    def write_sharp() -> tuple[bool, str]:
        written = setup.peer(tool, "write-video", "--out", folder / "sharp-video")
        return True, f"{written['episodes']} episodes, video keys {written['video_keys']}"

    image_reward = SHARED / "lerobot" / "image-reward-v3"

    def png_camera() -> tuple[bool, str]:
        imported = folder / "image-reward-imported"
        output = setup.protege("import", image_reward, imported, "--overwrite", "--no-progress")
        features = json.loads((imported / "meta" / "info.json").read_text())["features"]
        warned = [line.split("Warning: ", 1)[-1] for line in output.splitlines() if "observation.images.cam" in line]
        if "observation.images.cam" in features:
            return True, "observation.images.cam imported"
        return False, f"dropped, warning: {first_line(' '.join(warned)) or 'none'}"

    def reward_return() -> tuple[bool, str]:
        report, _ = setup.inspect(image_reward)
        returns = report["per_episode"]["return"]
        sums = list(episode_sums(image_reward, "next.reward").values())
        error = float(np.abs(np.asarray(returns) - np.asarray(sums)).max())
        return (
            error < 1e-3,
            f"returns {np.round(returns, 3).tolist()} vs sums of next.reward {np.round(sums, 3).tolist()}",
        )

    state, pixels = "collect pusht --episodes 5 (state)", "collect pusht --pixels"
    table.check(
        tool, out, "LeRobotDataset loads a state dataset (collect pusht)", "", load("state", data["state"], state)
    )
    table.check(tool, out, "LeRobotDataset loads a --pixels dataset", "", load("pixels", data["pixels"], pixels))
    table.check(tool, out, "--pixels dataset: camera_keys non-empty", "2", cameras("pixels"))
    table.check(tool, out, "--pixels dataset: frames float32 CHW in [0, 1]", "2", frames("pixels"))
    table.check(tool, out, "export --format lerobot of the --pixels dataset", "", export_pixels)
    table.check(
        tool,
        out,
        "LeRobotDataset loads the pixel export",
        "",
        load("export", pixel_export, "export --format lerobot of the --pixels dataset"),
    )
    table.check(tool, out, "pixel export: camera_keys non-empty", "2", cameras("export"))
    table.check(tool, out, "pixel export: frames float32 CHW in [0, 1]", "2", frames("export"))
    keys = "export --format lerobot --keys (block pose -> observation.environment_state)"
    table.check(tool, out, keys, "3", export_keys)
    table.check(tool, out, "LeRobotDataset loads the --keys export", "3", load("keys", keyed, keys))
    table.check(tool, out, "--keys export has observation.environment_state", "3", environment_state)
    for policy in ("act", "diffusion"):
        table.check(
            tool,
            out,
            f"lerobot-train {policy} (4 steps) on the --pixels dataset",
            "2",
            train(data["pixels"], policy, pixels),
        )
        table.check(
            tool, out, f"lerobot-train {policy} (4 steps) on the --keys export", "3", train(keyed, policy, keys)
        )
    table.check(
        tool,
        back,
        "delete_episodes, then protege inspect: success/source/seed kept or named missing",
        "5",
        dataset_tool("delete", folder / "delete", slice(1, None)),
    )
    table.check(
        tool,
        back,
        "split_dataset, then protege inspect: success/source/seed kept or named missing",
        "5",
        dataset_tool("split", folder / "split" / "train", slice(0, 3)),
    )
    for method in ("success-only", "top-k"):
        table.check(
            tool,
            back,
            f"train --curation.methods {method} after delete_episodes: refuses or right",
            "5",
            curation(method),
        )
    table.check(tool, back, "LeRobot writes a 2-task dataset (LeRobotDataset.create + add_frame)", "", write_multitask)
    table.check(tool, back, "protege inspect of the 2-task dataset lists both tasks", "9", inspect_multitask)
    table.check(tool, back, "protege import of the 2-task dataset keeps both tasks", "9", import_multitask)
    fixture = SHARED / "lerobot" / "video-v3"
    table.check(
        tool,
        back,
        "protege import of a LeRobot video (fixture video-v3): frames unchanged",
        "8",
        video(fixture, "video-v3"),
    )
    table.check(tool, back, "LeRobot writes a sharp 64x64 video (use_videos=True)", "", write_sharp)
    table.check(
        tool,
        back,
        "protege import of the sharp video: frames unchanged",
        "8",
        video(folder / "sharp-video", "sharp-video"),
    )
    table.check(tool, back, "protege import keeps a PNG image camera (fixture image-reward-v3)", "4", png_camera)
    table.check(tool, back, "return = sum of next.reward (fixture image-reward-v3)", "4 (guard)", reward_return)


# ---------------------------------------------------------------------------------- Minari


def minari_checks(setup: Setup, table: Table, data: dict[str, Path]) -> None:
    tool, out, back = "minari", "protege -> minari", "minari -> protege"
    fixture_root, dataset_id = SHARED / "minari", "fetch/pickplace/expert-v0"
    folder = setup.work / "minari"
    shutil.rmtree(folder, ignore_errors=True)
    root, imported = folder / "datasets", folder / "imported"
    round_trip, pixels_id = "fetch/pickplace/roundtrip-v0", "protege/pusht-pixels-v0"
    described: dict[str, dict] = {}

    def original() -> tuple[bool, str]:
        described["original"] = setup.peer(tool, "describe", "--root", fixture_root, "--id", dataset_id)
        recovered = described["original"].get("recover_environment", {})
        return bool(
            recovered.get("ok")
        ), f"recover_environment() on the original: {recovered.get('value', recovered.get('error'))}"

    def import_fixture() -> tuple[bool, str]:
        output = setup.protege(
            "import",
            dataset_id,
            imported,
            "--overwrite",
            "--no-progress",
            env={"MINARI_DATASETS_PATH": str(fixture_root)},
        )
        return True, first_line(output.splitlines()[-1])

    def export() -> tuple[bool, str]:
        table.need("protege import fetch/pickplace/expert-v0 (fixture)")
        output = setup.protege(
            "export", imported, root / round_trip, "--format", "minari", "--overwrite", "--no-progress"
        )
        return True, first_line(output.splitlines()[-1])

    def load() -> tuple[bool, str]:
        table.need("export --format minari")
        described["round_trip"] = setup.peer(tool, "describe", "--root", root, "--id", round_trip)
        loaded = described["round_trip"]["load"]
        return loaded["ok"], loaded.get("value") or loaded.get("error", "")

    def same(part: str) -> Callable[[], tuple[bool, str]]:
        def run() -> tuple[bool, str]:
            if "round_trip" not in described or "original" not in described:
                raise Missing("load_dataset on the round trip and on the original")
            a, b = described["round_trip"].get(part, {}), described["original"].get(part, {})
            if not a.get("ok"):
                return False, a.get("error", "not read")
            a_value, b_value = as_json(a["value"]), as_json(b.get("value"))
            return (
                a_value == b_value,
                "equal" if a_value == b_value else f"round trip vs original: {first_difference(a_value, b_value)}",
            )

        return run

    def recover() -> tuple[bool, str]:
        if "round_trip" not in described:
            raise Missing("load_dataset on the round trip")
        recovered = described["round_trip"].get("recover_environment", {})
        return bool(recovered.get("ok")), recovered.get("value") or recovered.get("error", "")

    def export_pixels() -> tuple[bool, str]:
        """Plain, and if that is refused, with the key mapping that renames the camera."""
        table.need("collect pusht --pixels")
        command = ["export", data["pixels"], root / pixels_id, "--format", "minari", "--overwrite", "--no-progress"]
        try:
            return True, first_line(setup.protege(*command).splitlines()[-1])
        except StepError as plain:
            try:
                output = setup.protege(*command, "--keys", "observation.images.cam=observation.image")
            except StepError as keyed:
                return False, f"{plain}; with --keys observation.images.cam=observation.image: {keyed}"
            return True, f"with --keys observation.images.cam=observation.image: {first_line(output.splitlines()[-1])}"

    def load_pixels() -> tuple[bool, str]:
        table.need("export --format minari of the --pixels dataset (observation.image)")
        got = setup.peer(tool, "describe", "--root", root, "--id", pixels_id)
        if not got["load"]["ok"]:
            return False, got["load"]["error"]
        space = as_json(got["observation_space"].get("value")) or {}
        shapes = {k: v.get("shape") for k, v in space.get("subspaces", {}).items()} or space.get("shape")
        has_image = any(
            isinstance(s, list) and len(s) == 3 for s in (shapes.values() if isinstance(shapes, dict) else [shapes])
        )
        return has_image, f"observation space {shapes}"

    table.check(tool, "control", "load_dataset + recover_environment() on the fixture itself", "", original)
    table.check(tool, back, "protege import fetch/pickplace/expert-v0 (fixture)", "", import_fixture)
    table.check(tool, out, "export --format minari", "", export)
    table.check(tool, out, "load_dataset reads the export", "", load)
    for part in ("env_spec", "observation_space", "action_space"):
        table.check(tool, out, f"round trip keeps {part}", "6", same(part))
    table.check(tool, out, "recover_environment() on the round trip", "6", recover)
    table.check(tool, out, "export --format minari of the --pixels dataset (observation.image)", "3", export_pixels)
    table.check(tool, out, "load_dataset reads the pixel export, image in the observation space", "3", load_pixels)


# ------------------------------------------------------------------------------ environments


def pip(venv: Path, *args: str) -> None:
    subprocess.run(["nice", "-n", "10", venv / "bin" / "python", "-m", "pip", "install", "-q", *args], check=True)


def regenerate():
    """tests/fixtures/regenerate.py, which holds the LeRobot install recipe."""
    spec = importlib.util.spec_from_file_location("regenerate", ROOT / "tests" / "fixtures" / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchcodec_loads(python: Path) -> bool:
    probe = "from torchcodec.decoders import VideoDecoder"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def build(tool: str, venv: Path) -> None:
    print(f"{tool}: building {venv}", flush=True)
    if tool == "lerobot":
        regenerate().install_lerobot(venv)
        pip(venv, "torchcodec")
        if not torchcodec_loads(venv / "bin" / "python") and shutil.which("apt-get"):
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *FFMPEG], check=True)
        return
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    for step in ROBOMIMIC if tool == "robomimic" else MINARI:
        pip(venv, *step)


def usable(setup: Setup, tool: str) -> bool:
    python = setup.python(tool)
    return python.exists() and subprocess.run([python, "-c", PROBES[tool]], capture_output=True).returncode == 0


def versions(setup: Setup, tools: Sequence[str]) -> dict[str, str]:
    names = {
        "lerobot": ["lerobot", "torch", "torchcodec"],
        "robomimic": ["robomimic", "torch", "torchvision"],
        "minari": ["minari", "gymnasium", "gymnasium-robotics", "mujoco"],
    }
    found = {}
    for tool in tools:
        code = "import sys, importlib.metadata as m; print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"
        done = subprocess.run([setup.python(tool), "-c", code, *names[tool]], capture_output=True, text=True)
        found[tool] = done.stdout.strip() or first_line(done.stderr)
    return found


def protege_source(setup: Setup) -> dict[str, str]:
    code = "import protege, sys; sys.stdout.write(protege.__file__)"
    done = subprocess.run([setup.protege_python, "-c", code], capture_output=True, text=True, env=setup.env())
    where = Path(done.stdout).parent if done.returncode == 0 else None
    commit = ""
    if where is not None:
        git = subprocess.run(["git", "-C", where, "describe", "--always", "--dirty"], capture_output=True, text=True)
        commit = git.stdout.strip()
    return {"python": setup.protege_python, "package": str(where), "commit": commit}


# ------------------------------------------------------------------------------------- output


def markdown(rows: list[Row]) -> str:
    lines = ["| tool | direction | check | finding | result | detail |", "|---|---|---|---|---|---|"]
    for row in rows:
        result = "not run" if row.ok is None else ("pass" if row.ok else "**fail**")
        detail = row.detail.replace("|", "\\|")
        lines.append(f"| {row.tool} | {row.direction} | {row.check} | {row.finding} | {result} | {detail} |")
    passed = sum(row.ok is True for row in rows)
    failed = sum(row.ok is False for row in rows)
    lines.append(f"\n{passed} passed, {failed} failed, {sum(row.ok is None for row in rows)} not run")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protege", default=sys.executable, help="python that runs the protege under test")
    parser.add_argument("--protege-src", type=Path, help="put first on that python's PYTHONPATH (another checkout)")
    parser.add_argument("--venvs", type=Path, default=VENVS, help="where venv-<tool> live (default: %(default)s)")
    parser.add_argument("--build", action="store_true", help="build the missing venvs first")
    parser.add_argument("--only", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new one under /tmp, kept)")
    parser.add_argument("--label", default="after", help="names the output: benchmarks/results/interop-LABEL.json")
    parser.add_argument("--out", type=Path, help="JSON to write (default: benchmarks/results/interop-LABEL.json)")
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args()
    work = (args.work or Path(tempfile.mkdtemp(prefix="protege-interop-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    src = args.protege_src.resolve() if args.protege_src else None
    setup = Setup(args.protege, src, args.venvs.expanduser().resolve(), work, args.nice)
    out = args.out or HERE / "results" / f"interop-{args.label}.json"
    start = time.perf_counter()
    table = Table()
    for tool in args.only:
        if args.build and not usable(setup, tool):
            build(tool, setup.venvs / f"venv-{tool}")
    data = collect(setup, table)
    checks = {"robomimic": robomimic_checks, "lerobot": lerobot_checks, "minari": minari_checks}
    for tool in args.only:
        if usable(setup, tool):
            checks[tool](setup, table, data)
        else:
            table.not_run(tool, "both", "all checks", "", f"no usable {setup.venvs / f'venv-{tool}'} (--build)")
    table.not_run(
        "diffusion_policy",
        "both",
        "ReplayBuffer reads an export",
        "",
        "diffusion_policy is not on PyPI (protege only reads its zarr)",
    )
    results = {
        "label": args.label,
        "protege": protege_source(setup),
        "tools": versions(setup, [t for t in args.only if usable(setup, t)]),
        "work": str(work),
        "wall_s": round(time.perf_counter() - start, 1),
        "rows": [asdict(row) for row in table.rows],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(table.rows)
    header = (
        f"# interop: {args.label}\n\nprotege {results['protege']['commit']} ({results['protege']['package']}); "
        f"{'; '.join(results['tools'].values())}; {results['wall_s']:.0f} s\n\n"
    )
    out.with_suffix(".md").write_text(header + text)
    print("\n" + header + text)


if __name__ == "__main__":
    main()
