"""The learning curve of an improvement run as SVG: success with its 95% interval against env steps,
and against expert labels when the method asks the expert for them (the DAgger family)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curve(points: list[dict], method: str) -> str:
    """SVG text of ``points`` (curve.jsonl rows) for ``method``."""
    axes_keys = [("env_steps", "environment steps")]
    if any(p.get("labels") for p in points):
        axes_keys.append(("labels", "expert labels"))
    fig, axes = plt.subplots(1, len(axes_keys), figsize=(4.2 * len(axes_keys), 3.0), squeeze=False)
    success = [p["success"] for p in points]
    low = [p["success_ci95"][0] for p in points]
    high = [p["success_ci95"][1] for p in points]
    for ax, (key, label) in zip(axes[0], axes_keys):
        x = [p[key] for p in points]
        ax.fill_between(x, low, high, alpha=0.25, linewidth=0)
        ax.plot(x, success, marker="o", markersize=3)
        ax.set(xlabel=label, ylabel="success (95% CI)", ylim=(-0.02, 1.02), title=method.replace("$", r"\$"))
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
