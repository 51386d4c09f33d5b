"""What is in a dataset, at a glance: `protege inspect DATASET` prints ``format_description(describe(store))``.

``describe`` returns plain JSON-serializable data so the same summary can be logged or compared in
tests; ``format_description`` renders it as aligned plain-text tables for the terminal.
"""

from __future__ import annotations

from protege.data.store import ACTION, EpisodeStore
from protege.formats.lerobot import REWARD


def describe(store: EpisodeStore) -> dict:
    """Sizes, features and per-source quality of a store, as JSON-serializable values."""
    per_frame = {**store.obs, ACTION: store.action, **({} if store.reward is None else {REWARD: store.reward})}
    return {
        "episodes": store.num_episodes,
        "frames": store.num_frames,
        "fps": store.fps,
        "task": store.task,
        "features": [
            {"name": name, "shape": list(values.shape[1:]), "dtype": values.dtype.name} for name, values in per_frame.items()
        ],
        "sources": _per_source(store),
    }


def _per_source(store: EpisodeStore) -> dict[str, dict]:
    """Demonstrations from different collectors differ in quality; summarise each on its own."""
    sources = store.episodes["source"].astype(str)
    lengths = store.episode_lengths
    summary = {}
    for source in sorted(set(sources)):
        mine = sources == source
        summary[source] = {
            "episodes": int(mine.sum()),
            "success_rate": float(store.episodes["success"][mine].mean()),
            "mean_return": float(store.episodes["return"][mine].mean()),
            "mean_length": float(lengths[mine].mean()),
        }
    return summary


def format_description(desc: dict) -> str:
    """Render ``describe``'s output as a plain-text report for the terminal."""
    header = [
        f"episodes  {desc['episodes']}",
        f"frames    {desc['frames']} at {desc['fps']} fps",
        f"task      {desc['task'] or '(none)'}",
    ]
    features = _table(
        ["feature", "shape", "dtype"],
        [[f["name"], str(tuple(f["shape"])), f["dtype"]] for f in desc["features"]],
    )
    sources = _table(
        ["source", "episodes", "success", "mean return", "mean length"],
        [
            [name, str(s["episodes"]), f"{s['success_rate']:.1%}", f"{s['mean_return']:.3f}", f"{s['mean_length']:.1f}"]
            for name, s in desc["sources"].items()
        ],
    )
    return "\n\n".join(["\n".join(header), features, sources])


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell; the first column left-aligned, the others right."""
    widths = [max(len(row[column]) for row in [headers, *rows]) for column in range(len(headers))]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join([first.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(rest, widths[1:]))])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
