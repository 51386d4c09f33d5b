"""``protege``: one entry point, one subcommand per stage of the pipeline."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import tyro

from protege.config import (
    BenchConfig,
    CollectConfig,
    EvalConfig,
    ExportConfig,
    ImportConfig,
    ImproveConfig,
    InspectConfig,
    ReportConfig,
    TrainConfig,
    ViewConfig,
)
from protege.extras import MissingExtraError

#: Errors that describe bad input or an unusable path; shown as one line (set PROTEGE_DEBUG=1 for the
#: traceback). DatasetError and CheckpointError are ValueErrors that name the file.
USER_ERRORS = (
    KeyError,
    ValueError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    MissingExtraError,
)


def _one_line(err: BaseException) -> str:
    """The error as one line: a KeyError's own text (not its repr), an OS error with its path and what to do."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, (PermissionError, IsADirectoryError, NotADirectoryError)) and err.filename:
        return f"cannot write or read '{err.filename}' ({err.strerror}); choose another path or fix its permissions"
    return str(err)


COMMANDS: dict[str, type] = {
    "collect": CollectConfig,
    "import": ImportConfig,
    "export": ExportConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "improve": ImproveConfig,
    "inspect": InspectConfig,
    "bench": BenchConfig,
    "report": ReportConfig,
    "view": ViewConfig,
}

USAGE = """usage: protege COMMAND [--help] [OPTIONS]

commands:
  collect TASK      generate demonstrations with a task's scripted expert
  import SRC DEST   convert robomimic / Minari / diffusion_policy zarr / LeRobot data to a protege dataset
  export SRC DEST   write a dataset as robomimic HDF5, Minari or LeRobot v3
  train DATASET     train a policy (policy:mlp, policy:diffusion) on a dataset folder
  eval RUN [RUN..]  evaluate checkpoints on one fixed seed list; two give a paired test
  improve RUN       improve a trained run with interaction: --method dagger|intervene|residual|noise
                    (baselines at the same budget: bc, sac); a new run folder with a learning curve
  inspect DATASET   print episodes, frames, features and per-source quality of a dataset
  bench             the default benchmark: collect toy/fork, train mlp + diffusion, compare
                    (--suite policies: every family; --suite curation: curations on mixed data;
                    --suite improve: every improvement method against continued BC and SAC)
  report PATH       an offline HTML report of a run, eval or bench folder (tables, plots, videos)
  view DATASET      an offline HTML page of a dataset: frames, state/action curves, per-episode quality

`protege COMMAND --help` lists every option of a command. Every command also takes --threads N:
torch's CPU threads for this process (default: torch's choice, one per core). Give jobs that run
side by side one thread each: on 2 cores, two jobs at 2 threads each spin against each other
(docs/results.md#threads-for-jobs-side-by-side).
"""


#: Old spellings of renamed options, per command, kept working for one release (0.2 drops them).
RENAMED: dict[str, dict[str, str]] = {
    "train": {"--episodes": "--subset"},  # a subset's name, where --episodes is a count everywhere else
    "bench": {"--seeds": "--num-seeds"},  # a count, next to --seed, a seed
}


def _renamed(command: str, args: list[str]) -> list[str]:
    """``args`` with renamed options spelled the new way, and a deprecation line on stderr for each."""
    out = []
    for arg in args:
        name, sep, value = arg.partition("=")
        new = RENAMED.get(command, {}).get(name)
        if new:
            print(f"protege {command}: {name} is deprecated and will be removed in 0.2; use {new}", file=sys.stderr)
            arg = new + sep + value
        out.append(arg)
    return out


def _pop_config(args: list[str]) -> tuple[list[str], TrainConfig | None]:
    """Strip ``--config RUN/config.json`` and load it as the defaults of `protege train`."""
    if "--config" not in args:
        return args, None
    i = args.index("--config")
    if i + 1 >= len(args):
        raise SystemExit("--config needs a path to a run's config.json")
    path = Path(args[i + 1])
    if not path.exists():
        raise SystemExit(f"--config: no such file '{path}'")
    try:
        return args[:i] + args[i + 2 :], TrainConfig.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"--config: '{path}' is not a run's config.json ({err})") from None


def _pop_threads(args: list[str]) -> list[str]:
    """Strip ``--threads N`` (any command) and give torch N CPU threads."""
    for i, arg in enumerate(args):
        name, sep, value = arg.partition("=")
        if name != "--threads":
            continue
        if not sep:
            value = args[i + 1] if i + 1 < len(args) else ""
        if not value.isdigit() or int(value) < 1:
            raise SystemExit(f"--threads needs a positive number of threads, got '{value}'")
        import torch

        torch.set_num_threads(int(value))
        return args[:i] + args[i + (1 if sep else 2) :]
    return args


def _bare_ray(args: list[str]) -> list[str]:
    """``--ray`` not followed by an address (``local``, ``auto``, ``HOST:PORT``, ``ray://...``) means
    ``--ray local``: a run folder after it stays a positional argument."""

    def is_address(value: str) -> bool:
        return value in ("local", "auto") or ":" in value

    return [
        "--ray=local" if arg == "--ray" and (i + 1 == len(args) or not is_address(args[i + 1])) else arg
        for i, arg in enumerate(args)
    ]


def run(command: str, cfg) -> None:
    if command == "collect":
        from protege.curation.describe import describe, format_description
        from protege.demos.collect import collect

        out, store = collect(cfg)
        print(format_description(describe(store)))
        print(f"\nwrote {store.num_episodes} episodes ({store.num_frames} frames) to {out}")
    elif command == "train":
        from protege.train.trainer import train

        run_dir = train(cfg)
        if os.environ.get("RANK", "0") == "0":  # once under torchrun
            print(f"run folder: {run_dir}")
    elif command == "eval":
        from protege.evaluate.evaluate import evaluate, format_report

        report = evaluate(cfg)
        print(format_report(report))
        print(f"\nper-episode rows and summary in {report['out']}")
    elif command == "improve":
        from protege.improve import improve

        out = improve(cfg)
        print(
            f"improved policy: {out} (curve: {out / 'curve.jsonl'}, {out / 'curve.svg'}); evaluate: protege eval {out}"
        )
    elif command in ("import", "export"):
        convert(command, cfg)
    elif command == "inspect":
        from protege.atomic import write_json_atomic
        from protege.curation.describe import describe, format_description
        from protege.formats import read_dataset

        desc = describe(read_dataset(cfg.dataset, cfg.format, images=False))
        print(format_description(desc))
        if cfg.json:
            write_json_atomic(cfg.json, desc)
    elif command == "report":
        from protege.report.build import write_report

        print(f"report: {write_report(cfg.path, out=cfg.out, baseline=cfg.baseline) / 'index.html'}")
    elif command == "view":
        from protege.report.view import write_view

        print(f"dataset view: {write_view(cfg) / 'index.html'}")
    elif command == "bench":
        from protege.bench.suites import bench
        from protege.evaluate.evaluate import format_report

        report = bench(cfg)
        if cfg.suite == "improve":
            from protege.bench.improve import format_improve

            print(format_improve(report) + f"\n\nsummary: {report['out']}\nreport: {report['report']}")
            return
        if cfg.suite in ("policies", "curation"):
            from protege.bench.matrix import format_matrix

            print(format_matrix(report) + f"\n\nsummary: {report['out']}\nreport: {report['report']}")
            return
        print(format_report(report))
        t = report["timings"]
        speeds = ", ".join(
            f"{k} {v['median_samples_per_s']:.0f} samples/s" if v["median_samples_per_s"] else f"{k} not trained"
            for k, v in report["training"].items()
        )
        print(f"\ntraining: {speeds}; total {t['total_s']:.0f} s; everything in {Path(report['out']).parent}")
        print(f"report: {report['report']}")


def convert(command: str, cfg: ImportConfig | ExportConfig) -> None:
    """import: any format -> protege folder; export: any readable dataset -> ``cfg.format``."""
    from protege.curation.describe import describe, format_description
    from protege.data.keys import remap_keys
    from protege.formats import read_dataset, write_dataset

    start = time.perf_counter()
    source_format = cfg.format if command == "import" else "auto"
    fmt = "lerobot" if command == "import" else cfg.format
    read_keys, copied = _copied_videos(cfg, source_format, fmt)
    store = read_dataset(
        cfg.source,
        source_format,
        obs_keys=read_keys or cfg.obs_keys or None,
        images=cfg.images,
        progress=cfg.progress,
    )
    store = remap_keys(store, cfg.keys)
    options = (
        {"video": cfg.video, **({"copy_videos_from": cfg.source, "copy_videos": copied} if copied else {})}
        if fmt == "lerobot"
        else {}
    )
    out = write_dataset(store, cfg.dest, fmt, overwrite=cfg.overwrite, progress=cfg.progress, **options)
    if copied:
        print(f"copied video stream(s) {copied} unchanged (not decoded and encoded again)")
    seconds = time.perf_counter() - start
    print(format_description(describe(store)))
    print(
        f"\nwrote {store.num_episodes} episodes ({store.num_frames} frames) to {out} in {seconds:.1f} s "
        f"({store.num_frames / max(seconds, 1e-9):,.0f} frames/s)"
    )


def _copied_videos(cfg: ImportConfig | ExportConfig, source_format: str, fmt: str) -> tuple[list[str], list[str]]:
    """LeRobot to LeRobot with video: (observation keys to read, video streams to copy as they are),
    unless a key mapping renames a camera (then it is decoded and encoded)."""
    from protege.formats import detect_format
    from protege.formats.lerobot import copyable_videos

    if (
        fmt != "lerobot"
        or not cfg.video
        or (source_format if source_format != "auto" else detect_format(cfg.source)) != "lerobot"
    ):
        return [], []
    read, copied = copyable_videos(cfg.source, cfg.obs_keys or None, cfg.images)
    mapped = " ".join(cfg.keys)
    if any(key in mapped for key in copied):
        return [], []
    return read, copied


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(USAGE, end="")
        if args and args[0] not in ("-h", "--help"):
            raise SystemExit(f"unknown command '{args[0]}'; choose one of: {', '.join(COMMANDS)}")
        return
    command, rest = args[0], _bare_ray(_pop_threads(_renamed(args[0], args[1:])))
    default = None
    if command == "train":
        rest, default = _pop_config(rest)
    cfg = tyro.cli(
        COMMANDS[command],
        args=rest,
        prog=f"protege {command}",
        default=default,
        config=(tyro.conf.CascadeSubcommandArgs,),
    )
    if command == "train" and cfg.nproc > 1:
        from protege.train.distributed import launch, world_size

        if world_size() == 1:  # not yet under torchrun: start it, with these very arguments
            raise SystemExit(launch(cfg.nproc, args))
    try:
        run(command, cfg)
    except USER_ERRORS as err:
        if os.environ.get("PROTEGE_DEBUG"):
            raise
        raise SystemExit(f"protege {command}: error: {_one_line(err)}") from None


if __name__ == "__main__":
    main()
