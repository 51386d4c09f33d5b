"""What is in a dataset, at a glance: `protege inspect DATASET` prints ``format_description(describe(store))``.

``describe`` returns plain JSON-serializable data so the same summary can be logged or compared in
tests; ``format_description`` renders it as aligned plain-text tables for the terminal. The quality
numbers (per-episode metrics, per-source summary, coverage) come from ``protege.curation.metrics``.
"""

from __future__ import annotations

from protege.curation.metrics import quality_report
from protege.data.store import ACTION, REWARD, EpisodeStore
from protege.tables import text_table


def describe(store: EpisodeStore) -> dict:
    """Sizes, features, per-episode quality metrics, per-source summary and state coverage of a
    store, as JSON-serializable values."""
    per_frame = {**store.obs, ACTION: store.action, **({} if store.reward is None else {REWARD: store.reward})}
    return {
        "episodes": store.num_episodes,
        "frames": store.num_frames,
        "fps": store.fps,
        "task": store.task,
        "tasks": store.task_counts(),
        "features": [
            {"name": name, "shape": list(values.shape[1:]), "dtype": values.dtype.name}
            for name, values in per_frame.items()
        ]
        + [
            {"name": name, "shape": list(shape), "dtype": f"{dtype} (not read)"}
            for name, (shape, dtype) in store.unread.items()
        ],
        "subsets": {name: len(ids) for name, ids in sorted(store.subsets.items())},
        **quality_report(store),
    }


def format_description(desc: dict) -> str:
    """Render ``describe``'s output as a plain-text report for the terminal."""
    header = [
        f"episodes  {desc['episodes']}",
        f"frames    {desc['frames']} at {desc['fps']} fps",
        _tasks_line(desc["tasks"]),
        f"coverage  {_coverage_line(desc['coverage'])}",
        *(
            [f"subsets   {', '.join(f'{name} ({n} episodes)' for name, n in desc['subsets'].items())}"]
            if desc["subsets"]
            else []
        ),
        *(
            [f"not recorded  {', '.join(desc['unrecorded'])} (shown as '?'; curation that needs them refuses)"]
            if desc["unrecorded"]
            else []
        ),
    ]
    features = text_table(
        ["feature", "shape", "dtype"],
        [[f["name"], str(tuple(f["shape"])), f["dtype"]] for f in desc["features"]],
    )
    sources = text_table(SOURCE_HEADERS, source_rows(desc))
    return "\n\n".join(["\n".join(header), features, sources])


SOURCE_HEADERS = ["source", "episodes", "success", "mean return", "mean length", "smoothness", "divergence"]


def source_rows(desc: dict, unrecorded_source: str = "") -> list[list[str]]:
    """One row per source of a description, as text: "?" for success or return the dataset does not
    record, and ``unrecorded_source`` (if given) instead of the placeholder name of an unrecorded source."""
    unknown = unrecorded_source and "source" in desc.get("unrecorded", ())
    return [
        [
            unrecorded_source if unknown else name,
            str(s["episodes"]),
            "?" if s["success_rate"] is None else f"{s['success_rate']:.1%}",
            "?" if s["mean_return"] is None else f"{s['mean_return']:.3f}",
            f"{s['mean_length']:.1f}",
            f"{s['mean_smoothness']:.3f}",
            "-" if s["mean_divergence"] is None else f"{s['mean_divergence']:.3f}",
        ]
        for name, s in desc["sources"].items()
    ]


def _tasks_line(tasks: dict[str, int]) -> str:
    if len(tasks) <= 1:
        return f"task      {next(iter(tasks), '') or '(none)'}"
    return f"tasks     {len(tasks)}: " + ", ".join(f"{task!r} ({n} episodes)" for task, n in tasks.items())


def _coverage_line(coverage: dict) -> str:
    if coverage["occupied_fraction"] is None:
        return coverage["note"]
    cells = "x".join([str(coverage["bins"])] * coverage["components"])
    return (
        f"{coverage['occupied_fraction']:.1%} of {cells} cells over the first {coverage['components']} principal "
        f"components of {coverage['key']} ({coverage['explained_variance']:.0%} of its variance)"
    )
