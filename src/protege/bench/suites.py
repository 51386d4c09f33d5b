"""``protege bench``: demonstrations -> one policy per family -> paired closed-loop comparison."""

from __future__ import annotations

import atexit
import fcntl
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import IO

from protege.atomic import write_json_atomic
from protege.bench.matrix import (
    STUDENT_TEACHER,
    Arm,
    Matrix,
    check_teacher,
    eval_every,
    inference_ms_per_action,
    is_student,
    run_matrix,
    samples_per_s,
)
from protege.cluster import Fanout
from protege.config import CURATION_SUITE_TASKS, POLICY_SUITE_TASKS, BenchConfig, CollectConfig, EvalConfig, TrainConfig
from protege.curation.curate import CurationConfig
from protege.demos.collect import collect
from protege.evaluate.evaluate import evaluate, format_report
from protege.formats import read_dataset
from protege.machine import machine
from protege.policies import policy_class
from protege.report.build import write_report
from protege.train.trainer import train


def bench(cfg: BenchConfig) -> dict:
    """Run the whole pipeline into one run folder and return the evaluation report."""
    if cfg.suite in ("policies", "curation"):
        return bench_matrix(cfg)
    if cfg.suite == "improve":
        from protege.bench.improve import bench_improve

        if cfg.ray:
            raise ValueError("--ray runs the default, policies and curation suites; --suite improve runs here")

        out = bench_folder(cfg, finished="table.txt")
        return bench_improve(cfg, out) | {"out": str(out / "summary.json"), "report": _report(out)}
    families = sorted(cfg.families(), key=is_student)  # students after their teacher
    check_teacher(families, families)  # fails, like an unknown name, before minutes of work
    out = bench_folder(cfg, finished="table.txt")
    timings = {}
    start = time.perf_counter()
    data_dir = out / "data"
    if not (data_dir / "meta" / "info.json").exists():  # written atomically: present means complete
        collect(CollectConfig(task=cfg.task, episodes=cfg.episodes, out=data_dir, progress=cfg.progress))
    timings["collect_s"] = time.perf_counter() - start
    runs: dict[str, object] = {}
    t0 = time.perf_counter()
    with Fanout(cfg) as fan:  # with --ray every family trains at once (a student after its teacher)
        for name in families:
            teacher = runs[STUDENT_TEACHER] if is_student(name) else None
            runs[name] = fan.submit(_train_family, cfg, out, name, teacher, cfg.progress and not fan.remote)
            if not fan.remote:
                timings[f"train_{name}_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
        runs = dict(zip(runs, fan.gather(list(runs.values()), desc="train", progress=cfg.progress)))
        if fan.remote:
            timings["train_s"] = time.perf_counter() - t0  # the families side by side
        t0 = time.perf_counter()
        report = evaluate(
            EvalConfig(
                checkpoints=tuple(runs.values()),
                task=cfg.task,
                episodes=cfg.eval_episodes,
                out=out / "eval",
                videos=cfg.videos,
                device=cfg.device,
                progress=cfg.progress,
                ray=cfg.ray,
                ray_cpus=cfg.ray_cpus,
                ray_gpus=cfg.ray_gpus,
            )
        )
    timings["eval_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    report["timings"] = timings
    report["machine"] = machine()
    report["training"] = {name: {"median_samples_per_s": samples_per_s(out / name)} for name in families}
    store = read_dataset(data_dir, images=False, progress=False)
    report["inference_ms_per_action"] = {
        name: {f"batch_{b}": inference_ms_per_action(out / name, store, b) for b in (1, 64)} for name in families
    }
    write_json_atomic(out / "eval" / "summary.json", report)
    (out / "table.txt").write_text(format_report(report) + "\n")
    report["report"] = _report(out)
    return report


def _train_family(cfg: BenchConfig, out: Path, name: str, teacher: Path | None, progress: bool) -> Path:
    """One family's run of the default suite (a student distils ``teacher``)."""
    policy_cfg = policy_class(name).config_class(**({"teacher": str(teacher)} if teacher else {}))
    return train(
        TrainConfig(
            dataset=out / "data",
            policy=policy_cfg,
            out=out / name,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            device=cfg.device,
            eval_every=eval_every(cfg.steps, cfg.train_evals),
            save_every=cfg.steps,
            progress=progress,
            resume=True,  # a finished run is kept, a killed one goes on
        )
    )


def _report(out: Path) -> str:
    """Write the benchmark's HTML report; its page, or why not (said on stderr). The results are saved
    before, so a report that fails costs no rerun: `protege report OUT` tries again."""
    try:
        return str(write_report(out) / "index.html")
    except Exception as err:  # any failure of the page must not lose a finished benchmark
        message = f"not written ({type(err).__name__}: {err}); retry with: protege report {out}"
        print(f"protege bench: report {message}", file=sys.stderr)
        return message


def bench_matrix(cfg: BenchConfig) -> dict:
    """A comparison matrix (see protege.bench.matrix); returns its summary with the folder.

    policies: one arm per family on expert data. curation: one arm per family and curation on a
    mixed-quality dataset, each paired against the first curation (uniform BC by default).
    """
    out = bench_folder(cfg, finished="summary.json")
    families = cfg.families()
    if cfg.suite == "policies":
        arms = {name: Arm(name) for name in families}
        tasks, mixture, baseline = cfg.tasks or POLICY_SUITE_TASKS, (), cfg.baseline
    elif cfg.baseline:
        raise ValueError(
            "--baseline pairs families in the policies suite; the curation suite pairs against its first curation"
        )
    else:
        arms = {
            (c if len(families) == 1 else f"{f}-{c}"): Arm(f, curation_of(c)) for f in families for c in cfg.curations
        }
        tasks, mixture = cfg.tasks or CURATION_SUITE_TASKS, cfg.mixture
        baseline = next(iter(arms)) if len(families) == 1 else ""
    matrix = Matrix(
        tasks=tasks,
        arms=arms,
        num_seeds=cfg.num_seeds,
        episodes=cfg.episodes,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        eval_episodes=cfg.eval_episodes,
        out=out,
        device=cfg.device,
        progress=cfg.progress,
        mixture=mixture,
        baseline=baseline,
        videos=cfg.videos,
        train_evals=cfg.train_evals,
    )
    with Fanout(cfg) as fan:
        results = run_matrix(matrix, fan)
    results["machine"] = machine()
    write_json_atomic(out / "summary.json", results)
    return results | {"out": str(out / "summary.json"), "report": _report(out)}


BENCH_CONFIG = "bench_config.json"


#: Settings that do not change a benchmark's results: a resume may change them.
NOT_RESULTS = ("out", "progress", "videos", "train_evals", "ray", "ray_cpus", "ray_gpus")


def _config_json(cfg: BenchConfig) -> dict:
    """The settings that decide a benchmark's results, as JSON reads them back."""
    data = {k: v for k, v in vars(cfg).items() if k not in NOT_RESULTS}
    return json.loads(json.dumps(data, default=str))


def bench_folder(cfg: BenchConfig, finished: str) -> Path:
    """Where a benchmark runs: ``--out``, else the newest unfinished folder under runs/ started with
    the same settings (a killed ``protege bench`` resumes by running the same command again), else
    a new time-stamped one. ``finished``: the file a complete benchmark leaves in its folder."""
    prefix = "bench-" if cfg.suite == "default" else f"bench-{cfg.suite}-"
    out = cfg.out
    if out is None:
        for saved in sorted(Path("runs").glob(f"{prefix}*/{BENCH_CONFIG}"), reverse=True):
            folder = saved.parent
            if not (folder / finished).exists() and _read_config(saved) == _config_json(cfg) and _hold(folder):
                print(f"protege bench: resuming the unfinished {folder} (same settings; --out picks another folder)")
                return folder
        stamp, number = f"{prefix}{datetime.now():%Y%m%d-%H%M%S}", 1
        out = Path("runs") / stamp
        while out.exists():  # another benchmark started in the same second
            number += 1
            out = Path("runs") / f"{stamp}-{number}"
    elif (out / BENCH_CONFIG).exists() and (saved := _read_config(out / BENCH_CONFIG) or {}) != _config_json(cfg):
        now = _config_json(cfg)
        changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
        raise ValueError(
            f"{out} holds a benchmark started with other settings ({', '.join(changed)} differ); "
            "repeat its options to resume it, or give another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    if not _hold(out):
        raise ValueError(f"another protege bench is running in {out}; wait for it, or give another --out")
    write_json_atomic(out / BENCH_CONFIG, _config_json(cfg))
    return out


#: Lock files of the benchmark folders this process runs in, held open (locked) until it exits.
_HELD: dict[Path, IO] = {}


def _hold(folder: Path) -> bool:
    """Lock ``folder`` for this process (an flock the system drops when the process ends, killed or
    not); False if another live process holds it, so two benchmarks never share a folder."""
    if folder.resolve() in _HELD:
        return True
    handle = (folder / ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return False
    _HELD[folder.resolve()] = handle
    atexit.register(handle.close)
    return True


def _read_config(path: Path) -> dict | None:
    """A saved bench_config.json as ``_config_json`` gives it: settings it predates take their
    defaults, and the ones that do not change results are left out."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(saved, dict):
        return None
    return {**_config_json(BenchConfig()), **{k: v for k, v in saved.items() if k not in NOT_RESULTS}}


def curation_of(name: str) -> CurationConfig:
    """'uniform' or methods joined by '+' -> the curation config (default settings)."""
    return CurationConfig(methods=() if name == "uniform" else tuple(name.split("+")))
