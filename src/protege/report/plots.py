"""The report's pictures, drawn with matplotlib and embedded as SVG (text stays text: small files
that stay sharp at any zoom). Each function takes plain numbers and returns one ``data:`` URI.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from protege.report.page import data_uri  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "none",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def plain(text: str) -> str:
    """A policy or task name as matplotlib text: a "$" would start mathtext (and can fail to parse)."""
    return str(text).replace("$", r"\$")


def colors(policies: Sequence[str]) -> dict[str, str]:
    """One colour per policy, the same in every plot of a report."""
    palette = plt.get_cmap("tab10").colors
    return {p: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, p in enumerate(sorted(policies))}


def _svg(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    return data_uri(buffer.getvalue(), "image/svg+xml")


def _grid(count: int, width: float = 3.4, height: float = 2.6, columns: int = 4) -> tuple[plt.Figure, list]:
    cols = min(columns, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.remove()
    return fig, flat[:count]


def success_bars(per_task: dict[str, dict[str, tuple[float, float, float]]], palette: dict[str, str]) -> str:
    """Per task, each policy's success (dot) and 95% interval (bar): task -> policy -> (mean, lo, hi)."""
    fig, axes = _grid(len(per_task), height=0.5 + 0.32 * max(len(p) for p in per_task.values()))
    for ax, (task, policies) in zip(axes, per_task.items()):
        names = list(policies)
        for y, name in enumerate(names):
            mean, lo, hi = policies[name]
            ax.errorbar(mean, y, xerr=[[mean - lo], [hi - mean]], fmt="o", color=palette[name], capsize=3)
        ax.set_yticks(range(len(names)), [plain(n) for n in names])
        ax.invert_yaxis()
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(plain(task))
        ax.set_xlabel("success")
        ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def interval_panel(
    values: dict[str, tuple[float, float, float]], colors: list[str], xlabel: str, ref: float | None
) -> str:
    """One row per name (in ``colors``' colour): a point estimate and its interval (IQM, probability of improvement)."""
    fig, ax = plt.subplots(figsize=(4.6, 0.6 + 0.34 * len(values)))
    for y, ((point, lo, hi), color) in enumerate(zip(values.values(), colors)):
        ax.errorbar(point, y, xerr=[[point - lo], [hi - point]], fmt="o", color=color, capsize=3)
    ax.set_yticks(range(len(values)), [plain(v) for v in values])
    ax.invert_yaxis()
    if ref is not None:
        ax.axvline(ref, color="#888888", lw=0.8, ls="--")
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def _band(ax: plt.Axes, curves: list[tuple[np.ndarray, np.ndarray]], color: str, label: str) -> None:
    """Mean over seeds at the steps every seed logged, with the seeds' min-max as a band; seeds that
    share no logged step (other --log-every) are drawn one by one."""
    common = sorted(set.intersection(*(set(x.tolist()) for x, _ in curves)))
    if not common:
        for i, (x, y) in enumerate(curves):
            ax.plot(x, y, color=color, lw=1.0, alpha=0.8, label=label if i == 0 else None)
        return
    ys = np.array([[y[list(x).index(s)] for s in common] for x, y in curves])
    ax.plot(common, ys.mean(axis=0), color=color, lw=1.4, label=label)
    if len(curves) > 1:
        ax.fill_between(common, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.18, lw=0)


def training_curves(runs: dict[str, list[list[dict]]], palette: dict[str, str]) -> str | None:
    """Training loss, validation loss and training-time closed-loop success against steps, and
    success against training minutes: policy -> one metrics list per training seed."""
    panels = [
        ("loss", "step", "training loss"),
        ("val_loss", "step", "validation loss"),
        ("success", "step", "closed-loop success (training-time)"),
        ("success", "train_s", "closed-loop success vs training minutes"),
    ]
    present = [p for p in panels if any(any(p[0] in r and p[1] in r for r in m) for ms in runs.values() for m in ms)]
    if not present:
        return None
    fig, axes = _grid(len(present), width=3.6, height=2.5)
    for ax, (key, xkey, title) in zip(axes, present):
        for name, seeds in runs.items():
            curves = []
            for metrics in seeds:
                rows = [r for r in metrics if r.get(key) is not None and xkey in r]
                if rows:
                    x = np.array([r[xkey] / (60.0 if xkey == "train_s" else 1.0) for r in rows])
                    curves.append((np.round(x, 3) if xkey == "train_s" else x, np.array([r[key] for r in rows])))
            if not curves:
                continue
            if xkey == "train_s":  # each seed has its own clock: mean minutes at each evaluation index
                n = min(len(x) for x, _ in curves)
                xs = np.mean([x[:n] for x, _ in curves], axis=0)
                curves = [(xs, y[:n]) for _, y in curves]
            _band(ax, curves, palette[name], plain(name))
        ax.set_title(title)
        ax.set_xlabel("training minutes" if xkey == "train_s" else "step")
        if "loss" in key:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, frameon=False)
    return _svg(fig)


def latency_success(points: dict[str, tuple[float, float, float, float]], palette: dict[str, str], task: str) -> str:
    """Success (with interval) against inference milliseconds per executed action at batch 1:
    policy -> (ms, success, lo, hi)."""
    fig, ax = plt.subplots(figsize=(4.4, 3.0))
    for name, (ms, mean, lo, hi) in points.items():
        ax.errorbar(ms, mean, yerr=[[mean - lo], [hi - mean]], fmt="o", color=palette[name], capsize=3)
        ax.annotate(plain(name), (ms, mean), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("ms per executed action (batch 1, log)")
    ax.set_ylabel("success")
    ax.set_title(plain(task))
    ax.grid(alpha=0.3)
    return _svg(fig)


def sampling_steps(families: dict[str, list[tuple[str, float, float, float, float]]], palette: dict[str, str]) -> str:
    """Success against sampling steps (policy calls per chunk), one line per sampler variant group:
    group -> [(variant, steps, success, lo, hi)]."""
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    for group, points in families.items():
        points = sorted(points, key=lambda p: p[1])
        steps = [p[1] for p in points]
        mean = np.array([p[2] for p in points])
        ax.errorbar(
            steps,
            mean,
            yerr=[mean - [p[3] for p in points], [p[4] for p in points] - mean],
            marker="o",
            capsize=3,
            label=plain(group),
            color=palette.get(group.split("-")[0]),
        )
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("sampling steps (policy calls per chunk)")
    ax.set_ylabel("success")
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    return _svg(fig)
