"""``protege report PATH``: one offline page of a run, an evaluation or a benchmark.

It answers, in this order: which policy is better on each task and by how much (success with
95% intervals, paired tests against a baseline), across tasks (IQM and probability of
improvement), how training went (loss, validation loss, closed-loop success against steps and
minutes), what it costs (latency against success, sampling steps), what it looks like (rollout
videos), and where the numbers came from (data, configs, machine). Every number is recomputed
from ``episodes.csv``; the page is ``OUT/index.html`` with the videos copied beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

from protege.machine import machine
from protege.report import plots
from protege.report.gather import Gathered, gather, shown_path
from protege.report.page import document, esc, table, write_page
from protege.report.results import Cell, across_tasks, cells, choose_baseline, paired


def write_report(path: Path, out: Path | None = None, baseline: str = "") -> Path:
    """Build the report of ``path`` into ``out`` (default ``path/report``); returns the folder."""
    start = time.perf_counter()
    g = gather(Path(path))
    out = Path(out) if out else (g.root.parent / f"{g.root.stem}-report" if g.root.is_file() else g.root / "report")
    table_ = cells(g)
    base = choose_baseline(g, table_, baseline)
    palette = plots.colors({p for c in table_.values() for p in c} | {r.label for r in g.runs})
    sections = [
        _results(table_, base, palette),
        _aggregate(table_, base, palette),
        _training(g, palette),
        _costs(g, table_, palette),
        _videos(g, out),
        _data(g),
        _provenance(g),
    ]
    tasks = sorted(table_) or sorted({r.task for r in g.runs if r.task})
    subtitle = (
        f"{g.kind} folder {g.root} | tasks: {', '.join(tasks) or '-'} | baseline: {base or '-'} | "
        f"built in {time.perf_counter() - start:.1f} s"
    )
    page = document(f"protege report: {g.root.name}", subtitle, "".join(s for s in sections if s), OPEN_VIDEOS)
    write_page(out, page)
    return out


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def _img(uri: str, caption: str, alt: str) -> str:
    return f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{esc(caption)}</figcaption></figure>'


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ci(ci: list[float] | None, digits: int = 3) -> str:
    return "-" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def success_interval(s: dict) -> tuple[float, float, float]:
    """The interval a reader should use: over training seeds (t) with two or more, else Wilson over episodes."""
    lo, hi = s["success_t95_over_seeds"] or s["success_wilson95"]
    return s["success"], lo, hi


def _results(table_: dict[str, dict[str, Cell]], base: str, palette: dict[str, str]) -> str:
    if not table_:
        return _section("Results", '<p class="muted">No evaluation found: run `protege eval RUN`.</p>', "results")
    headers = [
        "task",
        "policy",
        "success",
        "95% CI",
        "CI over",
        "per seed",
        "episodes",
        "seeds",
        "max progress",
        "95% CI",
        "return",
        "95% CI",
        "checkpoint",
        f"vs {base}",
        "95% t-CI",
        "McNemar p",
    ]
    rows, bars = [], {}
    for task, policies in sorted(table_.items()):
        bars[task] = {}
        for name, cell in policies.items():
            s = cell.summary()
            mean, lo, hi = success_interval(s)
            bars[task][name] = (mean, lo, hi)
            vs = paired(cell, policies[base]) if base in policies and name != base else None
            rows.append(
                [
                    task,
                    name,
                    _fmt(mean),
                    _ci([lo, hi]),
                    "seeds (t)" if s["success_t95_over_seeds"] else "episodes (Wilson)",
                    " / ".join(f"{x:.2f}" for x in s["per_seed"]) if len(s["per_seed"]) > 1 else "-",
                    s["episodes"],
                    s["training_seeds"],
                    _fmt(s["mean_max_progress"]),
                    _ci(s["max_progress_ci95"]),
                    _fmt(s["mean_return"]),
                    _ci(s["return_ci95"]),
                    cell.rule,
                    "(baseline)" if name == base else (f"{vs['difference']:+.3f}" if vs else "-"),
                    _ci(vs["t95_over_seeds"]) if vs else "",
                    f"{vs['mcnemar']['p_value']:.3g}" if vs else "",
                ]
            )
    note = (
        "<p class='muted'>Seeds: training seeds. Success is the mean over training seeds with a 95% t-interval "
        "over seeds when a policy has two or more, else the pooled rate with a 95% Wilson interval over episodes. "
        "Max progress: the task's progress signal (PushT: coverage). Paired tests use the "
        "episodes both policies ran with the same training seed and evaluation seed (exact McNemar). The checkpoint "
        "column names the selection rule: 'best' picks the best of several by training-time success, which flatters "
        "a little.</p>"
    )
    picture = _img(plots.success_bars(bars, palette), "success with 95% intervals", "success per task and policy")
    body = _headlines(table_, base) + table(headers, rows, 'id="results"') + note + picture
    return _section("Results per task and policy", body, "results")


def _headlines(table_: dict[str, dict[str, Cell]], base: str) -> str:
    """One line per task: the best policy, its interval, and how sure its lead over the baseline is."""
    items = []
    for task, policies in sorted(table_.items()):
        summaries = {name: cell.summary() for name, cell in policies.items()}
        best = max(summaries, key=lambda n: (summaries[n]["success"], summaries[n]["mean_max_progress"] or 0.0))
        mean, lo, hi = success_interval(summaries[best])
        line = f"<strong>{esc(task)}</strong>: best {esc(best)} {mean:.2f} [{lo:.2f}, {hi:.2f}]"
        vs = paired(policies[best], policies[base]) if base in policies and best != base else None
        if vs:
            p = vs["mcnemar"]["p_value"]
            verdict = "a difference" if p < 0.05 else "no significant difference"
            line += (
                f"; vs {esc(base)} {vs['difference']:+.2f} over {vs['episodes']} paired episodes, "
                f"McNemar p = {p:.2g} ({verdict})"
            )
        items.append(f"<li>{line}</li>")
    return f"<ul class='headlines'>{''.join(items)}</ul>"


def _aggregate(table_: dict[str, dict[str, Cell]], base: str, palette: dict[str, str]) -> str:
    agg = across_tasks(table_, base)
    if not agg:
        body = (
            "<p class='muted'>Across-task aggregates need every policy on the same tasks with the same number of "
            "training seeds, and at least two (task, seed) runs: e.g. <code>protege bench --suite policies</code>.</p>"
        )
        return _section("Across tasks", body, "aggregate")
    iqm = {p: (v["iqm"], *v["ci95"]) for p, v in agg["iqm"].items()}
    if agg["left_out"]:
        body_left = (
            f"<p class='muted'>Left out (not on every task with the same number of training seeds): "
            f"{esc(', '.join(agg['left_out']))}.</p>"
        )
    else:
        body_left = ""
    rows = [[p, _fmt(v[0]), _ci(list(v[1:]))] for p, v in iqm.items()]
    body = (
        f"<p>Over {len(agg['tasks'])} task(s): {esc(', '.join(agg['tasks']))}. Interquartile mean of the per-run "
        "(training seed x task) success rates and the probability that a run of a policy beats a run of the "
        f"baseline on a task, both with 95% stratified-bootstrap intervals (Agarwal et al. 2021).</p>"
        + body_left
        + table(["policy", "IQM success", "95% CI"], rows, 'id="iqm"')
    )
    figures = [
        _img(plots.interval_panel(iqm, [palette[p] for p in iqm], "IQM of success", None), "IQM with 95% CI", "IQM")
    ]
    if agg["improvement"]:
        poi = {f"{p} > {base}": (v["probability"], *v["ci95"]) for p, v in agg["improvement"].items()}
        body += table(
            ["comparison", "P(improvement)", "95% CI"],
            [[k, _fmt(v[0]), _ci(list(v[1:]))] for k, v in poi.items()],
            'id="improvement"',
        )
        figures.append(
            _img(
                plots.interval_panel(poi, [palette[p] for p in agg["improvement"]], "probability of improvement", 0.5),
                "P(X > baseline)",
                "PoI",
            )
        )
    return _section("Across tasks", body + f"<div class='grid'>{''.join(figures)}</div>", "aggregate")


def _training(g: Gathered, palette: dict[str, str]) -> str:
    by_task: dict[str, dict[str, list[list[dict]]]] = defaultdict(lambda: defaultdict(list))
    for run in sorted(g.runs, key=lambda r: (r.task, r.label, r.seed)):
        by_task[run.task or "(no task)"][run.label].append(run.metrics)
    figures = []
    for task, runs in sorted(by_task.items()):
        uri = plots.training_curves(dict(runs), palette)
        if uri:
            seeds = max(len(v) for v in runs.values())
            figures.append(f"<h3>{esc(task)}</h3>" + _img(uri, f"mean over {seeds} seed(s); band: min-max", task))
    if not figures:
        return ""
    note = (
        "<p class='muted'>From each run's metrics.jsonl. Closed-loop success during training uses the training-time "
        "seed list (disjoint from the final evaluation's): every --eval-every steps of protege train, 4 times "
        "per run in protege bench (--train-evals).</p>"
    )
    return _section("Training", note + "".join(figures), "training")


def _latencies(g: Gathered) -> dict[str, dict[str, float]]:
    """Per task and policy: ms per executed action at batch 1, where a benchmark measured it."""
    summary = g.bench_summary or {}
    if "tasks" in summary:
        return {
            task: {
                p: r["inference_ms_per_action"]["batch_1"] for p, r in arms.items() if "inference_ms_per_action" in r
            }
            for task, arms in summary["tasks"].items()
        }
    if "inference_ms_per_action" in summary:
        return {summary.get("task", ""): {p: v["batch_1"] for p, v in summary["inference_ms_per_action"].items()}}
    return {}


def _costs(g: Gathered, table_: dict[str, dict[str, Cell]], palette: dict[str, str]) -> str:
    figures = []
    for task, ms in sorted(_latencies(g).items()):
        points = {
            p: (t, *success_interval(table_[task][p].summary())) for p, t in ms.items() if p in table_.get(task, {})
        }
        if points:
            figures.append(_img(plots.latency_success(points, palette, task), "success against latency", task))
    for result in g.sampling:
        groups = defaultdict(list)
        for block in result.values():
            if isinstance(block, dict) and "variants" in block:
                for name, v in block["variants"].items():
                    group = name.rsplit("-", 1)[0]
                    groups[group].append((name, v["calls_per_chunk"], v["success"], *v["success_ci95"]))
        if groups:
            caption = f"{result.get('task', '')}: success against sampling steps"
            figures.append(_img(plots.sampling_steps(dict(groups), palette), caption, "sampling steps"))
    if not figures:
        return ""
    return _section("Cost: latency and sampling steps", f"<div class='grid'>{''.join(figures)}</div>", "costs")


def _videos(g: Gathered, out: Path) -> str:
    entries = [(ev, v) for ev in g.evaluations for v in ev.videos]
    if not entries:
        return ""
    shutil.rmtree(out / "videos", ignore_errors=True)  # the report's own copies: an earlier report's go
    (out / "videos").mkdir(parents=True)
    few = len(entries) <= AUTOPLAY_VIDEOS
    playing = ' autoplay preload="auto"' if few else ' preload="metadata"'
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i, (ev, v) in enumerate(entries):
        name = f"{i:04d}-{Path(v['file']).name}"
        _link_or_copy(Path(v["path"]), out / "videos" / name)
        shown = v.get("replay_success", v.get("success"))  # the outcome the video shows
        caption = f"seed {v.get('seed')}: {'success' if shown else 'failure'}, {v.get('length', '?')} steps"
        if v.get("replay_matches") is False:
            caption += " (the evaluated episode ended otherwise: batched arithmetic differs by batch size)"
        width, mood = int(v.get("width", 128)) * 2, "good" if shown else "bad"
        groups[(ev.task, v.get("policy", ""))].append(
            f'<figure><video src="videos/{esc(name)}" muted loop controls playsinline{playing} '
            f'width="{width}"></video><figcaption class="{mood}">{esc(caption)}</figcaption></figure>'
        )
    if few:
        body = "".join(
            f"<h3>{esc(task)} / {esc(policy)}</h3><div class='grid'>{''.join(items)}</div>"
            for (task, policy), items in sorted(groups.items())
        )
    else:  # hundreds of players stall a page: each group's videos are made when it is opened
        body = "".join(
            f"<details class='videos'><summary>{esc(task)} / {esc(policy)} ({len(items)} videos)</summary>"
            f"<template><div class='grid'>{''.join(items)}</div></template></details>"
            for (task, policy), items in sorted(groups.items())
        )
    note = "<p class='muted'>Recorded with <code>protege eval --videos N</code>: the first successes and failures.</p>"
    return _section("Rollouts", note + body, "videos")


#: Up to this many rollout videos are on the page at once, playing on their own (muted, looped);
#: beyond it each task x policy group is a closed section whose players are made when it opens.
AUTOPLAY_VIDEOS = 24

#: Opens a group of videos: its template's players go into the page the first time it opens.
OPEN_VIDEOS = """
document.querySelectorAll('details.videos').forEach(d => d.addEventListener('toggle', () => {
  const t = d.querySelector('template');
  if (d.open && t) t.replaceWith(t.content.cloneNode(true));
}));
"""


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def _data(g: Gathered) -> str:
    from protege.curation.describe import describe, format_description
    from protege.formats import read_dataset

    blocks = []
    for folder in g.datasets:
        text = format_description(describe(read_dataset(folder, images=False, progress=False)))
        blocks.append(
            f"<h3>{esc(shown_path(folder, g.root) if folder != g.root else folder.name)}</h3><pre>{esc(text)}</pre>"
        )
    if not blocks:
        datasets = sorted({str(r.config.get("dataset", "")) for r in g.runs} - {""})
        if not datasets:
            return ""
        blocks.append("<p>Trained on: " + ", ".join(f"<code>{esc(d)}</code>" for d in datasets) + "</p>")
    return _section("Data", "".join(blocks), "data")


def _provenance(g: Gathered) -> str:
    recorded = (g.bench_summary or {}).get("machine") or next(
        (ev.summary["machine"] for ev in g.evaluations if "machine" in ev.summary), None
    )
    line = ", ".join(f"{k} {v}" for k, v in (recorded or {}).items())
    now = ", ".join(f"{k} {v}" for k, v in machine().items())
    body = (
        f"<p>Numbers measured on: <strong>{esc(line or 'not recorded')}</strong></p>"
        f"<p class='muted'>Report built on: {esc(now)}</p>"
    )
    configs = []
    if g.bench_config:
        configs.append(("bench_config.json", g.bench_config))
    configs += [
        (str(shown_path(r.folder, g.root) / "config.json"), r.config)
        for r in sorted(g.runs, key=lambda r: str(r.folder))
    ]
    configs += [(str(shown_path(ev.folder, g.root) / "summary.json"), ev.summary) for ev in g.evaluations]
    body += "".join(
        f"<details><summary>{esc(name)}</summary><pre>{esc(json.dumps(data, indent=1, default=str))}</pre></details>"
        for name, data in configs
    )
    return _section("Configs and machine", body, "provenance")
