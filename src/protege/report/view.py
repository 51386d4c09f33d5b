"""`protege view DATASET`: one offline HTML page of a dataset in any format protege reads.

What LeRobot's dataset visualizer shows, without a server or a network: a table of every episode
(source, success, return, length, seed and the quality metrics of ``protege.curation.describe``),
filters by source and success, and for the first ``cfg.episodes`` episodes a panel each: camera
frames as a WebM video plus a strip of stills, and the state, action and reward curves. The curves
are drawn in the browser from per-episode JSON inside the page (subsampled to ``CURVE_POINTS``,
rounded to ``DIGITS`` significant digits), so the page stays small; pictures are files beside
``index.html``. State-only datasets also get the x-y path of the first two state dimensions (the
toy tasks' position), coloured by success. Columns the dataset does not record read "?".
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from protege.atomic import atomic_file
from protege.config import ViewConfig
from protege.curation.describe import SOURCE_HEADERS, describe, source_rows
from protege.data.store import ACTION, REWARD, STATE, EpisodeStore
from protege.evaluate.videos import write_webm
from protege.formats import detect_format, read_dataset
from protege.report.page import document, esc, table, write_page

#: Most points per curve: longer episodes are subsampled evenly (every k-th frame).
CURVE_POINTS = 400
#: Significant digits of the curves' values: more is invisible at chart size and only grows the page.
DIGITS = 4
#: Stills in an episode's strip, spread evenly from its first frame to its last.
STRIP_FRAMES = 6
#: Taller stills are scaled down to this height: the page shows them 96 px high, and a strip of six
#: full-size 480p frames would weigh megabytes.
STILL_HEIGHT = 128
#: Flattened features wider than this are listed but not drawn (a chart of 100 lines says nothing).
MAX_CURVE_DIMS = 64
#: Media files (videos, strips) live in this folder beside index.html.
MEDIA = "media"


@dataclass(frozen=True)
class Camera:
    """The files showing one camera of one episode, relative to the page."""

    key: str
    strip: str
    strip_frames: tuple[int, ...]
    video: str
    width: int


def write_view(cfg: ViewConfig) -> Path:
    """Write the dataset page to ``cfg.out`` (default ``view-<dataset name>``); returns the folder."""
    if cfg.episodes < 0:
        raise ValueError(f"--episodes must be 0 or more, got {cfg.episodes}")
    fmt = detect_format(cfg.dataset) if cfg.format == "auto" else cfg.format
    store = read_dataset(cfg.dataset, fmt)
    name = Path(cfg.dataset).resolve().name
    folder = cfg.out or Path(f"view-{name}")
    shown = list(range(min(cfg.episodes, store.num_episodes)))
    desc = describe(store)
    keys = camera_keys(store)
    curves, not_drawn = curve_groups(store, keys)
    shutil.rmtree(folder / MEDIA, ignore_errors=True)  # an earlier view's videos and stills
    cameras = write_cameras(folder, store, keys, shown)
    rows = episode_rows(store, desc)
    xy = STATE if not keys and STATE in curves and curves[STATE].shape[1] >= 2 else None
    data = {"fps": store.fps, "xy": xy, "episodes": {str(e): episode_data(store, curves, e) for e in shown}}
    body = "".join(
        [
            f"<style>{VIEW_STYLE}</style>",
            summary_section(desc, set(keys), not_drawn),
            controls(rows),
            viewer_section(store, shown, rows, cameras, xy),
            table_section(rows, set(shown)),
            '<script type="application/json" id="view-data">'
            + json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
            + "</script>",
        ]
    )
    return write_page(folder, document(f"dataset: {name}", subtitle(cfg, fmt, store), body, SCRIPT))


def subtitle(cfg: ViewConfig, fmt: str, store: EpisodeStore) -> str:
    """The header line: what was read, and what the page cannot show (unread features, unrecorded columns)."""
    tasks = store.task_counts()
    parts = [
        f"{fmt} dataset {cfg.dataset}",
        f"{store.num_episodes} episodes, {store.num_frames} frames at {store.fps} fps",
        f"task {next(iter(tasks))}" if len(tasks) == 1 else f"{len(tasks)} tasks",
    ]
    if store.unread:
        parts.append("not shown: " + ", ".join(f"{k} {tuple(s)} {d} (not read)" for k, (s, d) in store.unread.items()))
    if store.unrecorded:
        parts.append(f"not recorded: {', '.join(sorted(store.unrecorded))} (shown as ?)")
    return " · ".join(parts)


def camera_keys(store: EpisodeStore) -> list[str]:
    """Observations that are RGB pictures, (N, H, W, 3) uint8, the one camera layout the readers produce."""
    return [k for k, v in store.obs.items() if v.ndim == 4 and v.shape[-1] == 3 and v.dtype == np.uint8]


def curve_groups(store: EpisodeStore, cameras: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Per-frame features drawn as curves, each flattened to (N, D): every observation but the cameras, the
    action and the reward; and the features left undrawn, with why."""
    features = {k: v for k, v in store.obs.items() if k not in cameras}
    features[ACTION] = store.action
    if store.reward is not None:
        features[REWARD] = store.reward
    curves, not_drawn = {}, {}
    for key, values in features.items():
        flat = np.asarray(values).reshape(store.num_frames, -1)
        if not np.issubdtype(flat.dtype, np.number) and flat.dtype != bool:
            not_drawn[key] = f"{flat.dtype} values"
        elif flat.shape[1] > MAX_CURVE_DIMS:
            not_drawn[key] = f"{flat.shape[1]} dimensions (more than {MAX_CURVE_DIMS})"
        else:
            curves[key] = flat.astype(np.float64)
    return curves, not_drawn


def rounded(values: np.ndarray) -> list[list[float]]:
    """Rows of ``DIGITS`` significant digits; ``float(f"{v:.4g}")`` prints back as those digits in JSON."""
    return [[float(f"{v:.{DIGITS}g}") for v in row] for row in values.tolist()]


def episode_data(store: EpisodeStore, curves: dict[str, np.ndarray], episode: int) -> dict:
    """One episode's curves for the page's script: every ``stride``-th frame of each feature."""
    start, end = int(store.episode_starts[episode]), int(store.episode_ends[episode])
    length = end - start
    stride = math.ceil(length / CURVE_POINTS)
    return {
        "length": length,
        "stride": stride,
        "curves": {key: rounded(values[start:end:stride]) for key, values in curves.items()},
    }


def episode_rows(store: EpisodeStore, desc: dict) -> list[dict[str, str]]:
    """Every episode's table cells as text (a task column only for several tasks): unrecorded columns read "?",
    metrics not computed "-"."""
    per = desc["per_episode"]
    tasks = store.episode_tasks().tolist() if len(store.task_counts()) > 1 else None
    seeds = store.episodes["seed"].tolist()

    def number(value: float | None, missing: str) -> str:
        return missing if value is None else f"{value:.3f}"

    rows = []
    for e in range(store.num_episodes):
        success = per["success"][e]
        rows.append(
            {
                "episode": str(e),
                **({"task": tasks[e]} if tasks else {}),
                "source": "?" if "source" in store.unrecorded else per["source"][e],
                "success": "?" if success is None else ("yes" if success else "no"),
                "return": number(per["return"][e], "?"),
                "length": str(per["length"][e]),
                "seed": "?" if "seed" in store.unrecorded else str(seeds[e]),
                "smoothness": number(per["smoothness"][e], "-"),
                "divergence": number(per["divergence"][e], "-"),
            }
        )
    return rows


def write_cameras(folder: Path, store: EpisodeStore, keys: list[str], shown: list[int]) -> dict[int, list[Camera]]:
    """Write every shown episode's strip and WebM video of each camera under ``folder/media``."""
    cameras: dict[int, list[Camera]] = {}
    for e in shown:
        start, end = int(store.episode_starts[e]), int(store.episode_ends[e])
        cameras[e] = []
        for key in keys:
            frames = store.obs[key][start:end]
            name = f"ep{e:04d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}"
            picked = write_strip(folder / MEDIA / f"{name}.png", frames)
            write_webm(folder / MEDIA / f"{name}.webm", frames, store.fps)
            scale = max(1, round(288 / frames.shape[1]))  # small simulator frames shown enlarged
            cameras[e].append(
                Camera(key, f"{MEDIA}/{name}.png", picked, f"{MEDIA}/{name}.webm", frames.shape[2] * scale)
            )
    return cameras


def write_strip(path: Path, frames: np.ndarray) -> tuple[int, ...]:
    """Save up to ``STRIP_FRAMES`` evenly spread frames side by side as one PNG; returns their indices."""
    picked = tuple(int(i) for i in np.unique(np.linspace(0, len(frames) - 1, STRIP_FRAMES).round()))
    gap = np.full((frames.shape[1], 2, 3), 255, np.uint8)
    strip = Image.fromarray(np.concatenate([part for i in picked for part in (frames[i], gap)][:-1], axis=1))
    if strip.height > STILL_HEIGHT:
        strip = strip.resize((round(strip.width * STILL_HEIGHT / strip.height), STILL_HEIGHT), Image.Resampling.BOX)
    with atomic_file(path) as tmp:
        strip.save(tmp, format="PNG", compress_level=6)
    return picked


def summary_section(desc: dict, cameras: set[str], not_drawn: dict[str, str]) -> str:
    """Features (and how each is shown), the per-source summary and coverage, as ``protege inspect`` has them."""

    def shown_as(name: str, dtype: str) -> str:
        if dtype.endswith("(not read)"):
            return "not shown (not read)"
        if name in cameras:
            return "video + stills"
        return f"not drawn: {not_drawn[name]}" if name in not_drawn else "curves"

    features = table(
        ["feature", "shape", "dtype", "shown as"],
        [[f["name"], str(tuple(f["shape"])), f["dtype"], shown_as(f["name"], f["dtype"])] for f in desc["features"]],
    )
    sources = table(SOURCE_HEADERS, source_rows(desc, unrecorded_source="?"))
    coverage = desc["coverage"]
    cover = (
        coverage["note"]
        if coverage["occupied_fraction"] is None
        else f"state coverage {coverage['occupied_fraction']:.1%} of a {coverage['bins']}-bin grid over "
        f"{coverage['components']} principal components of {coverage['key']}"
    )
    return (
        f'<section id="summary"><h2>Dataset</h2><div class="grid"><div>{features}</div>'
        f'<div>{sources}<p class="muted">{esc(cover)}</p></div></div></section>'
    )


def controls(rows: list[dict[str, str]]) -> str:
    """The filters: one select per filtered column, offering the values the dataset holds."""

    def select(name: str, label: str) -> str:
        values = sorted({row[name] for row in rows})
        options = '<option value="all">all</option>' + "".join(
            f'<option value="{esc(v)}">{esc(v)}</option>' for v in values
        )
        return f'<label>{label} <select id="filter-{name}" data-column="{name}">{options}</select></label>'

    return (
        f'<div class="controls" id="filters">{select("source", "source")}{select("success", "success")}'
        '<span class="muted" id="filter-count"></span></div>'
    )


def viewer_section(
    store: EpisodeStore, shown: list[int], rows: list[dict[str, str]], cameras: dict[int, list[Camera]], xy: str | None
) -> str:
    """The list of shown episodes and one panel each (the script shows the one selected)."""
    if not shown:
        return '<section id="viewer"><h2>Episodes</h2><p class="muted">no episode panels (--episodes 0)</p></section>'
    items = "".join(
        f'<li data-ep="{e}" class="s-{status(rows[e])}">{e} <span class="muted">{esc(rows[e]["source"])}</span></li>'
        for e in shown
    )
    panels = "".join(panel(store, e, rows[e], cameras.get(e, []), xy) for e in shown)
    overview = (
        f'<div id="xy-overview"><h3>x-y paths of the shown episodes</h3><p class="muted">first two dimensions of '
        f"{esc(xy)}, green: success, red: failure; click a path</p></div>"
        if xy
        else ""
    )
    more = store.num_episodes - len(shown)
    hint = f" (the first {len(shown)}; {more} more in the table: raise --episodes to see them)" if more else ""
    return (
        f'<section id="viewer"><h2>Episodes</h2><p class="muted">click an episode{esc(hint)}</p>'
        f'<div class="viewer"><ul id="episode-list">{items}</ul><div id="panels">{panels}'
        '<p id="no-match" class="muted hidden">no shown episode matches the filters</p></div></div>'
        f"{overview}</section>"
    )


def status(row: dict[str, str]) -> str:
    """The CSS class suffix of an episode's success: yes, no or unknown."""
    return {"yes": "yes", "no": "no"}.get(row["success"], "unknown")


def panel(store: EpisodeStore, e: int, row: dict[str, str], cameras: list[Camera], xy: str | None) -> str:
    """One episode: a header line, each camera's video and strip, and an empty grid the script fills with curves."""
    length = int(store.episode_lengths[e])
    facts = [
        f"source {row['source']}",
        f"success {row['success']}",
        f"{length} frames ({length / store.fps:.1f} s)",
        f"return {row['return']}",
        f"seed {row['seed']}",
    ]
    figures = "".join(camera_figures(c, length) for c in cameras)
    path = '<div class="xy"></div>' if xy else ""
    task = f'<p class="muted">{esc(row["task"])}</p>' if row.get("task") else ""
    return (
        f'<div class="panel" data-ep="{e}" id="ep-{e}"><h3>episode {e} <span class="muted">'
        f"{esc(' · '.join(facts))}</span></h3>{task}"
        f'<div class="grid">{figures}{path}</div><div class="grid curves"></div></div>'
    )


def camera_figures(camera: Camera, length: int) -> str:
    """A camera's video and its strip of stills, captioned with the frames they show."""
    video = (
        f'<figure><video src="{esc(camera.video)}" width="{camera.width}" controls muted loop playsinline '
        f'preload="metadata"></video><figcaption>{esc(camera.key)}</figcaption></figure>'
    )
    frames = ", ".join(map(str, camera.strip_frames))
    strip = (
        f'<figure class="strip"><img src="{esc(camera.strip)}" alt="{esc(camera.key)} stills">'
        f"<figcaption>{esc(camera.key)}: frames {frames} of {length}</figcaption></figure>"
    )
    return video + strip


def table_section(rows: list[dict[str, str]], shown: set[int]) -> str:
    """Every episode, one row each, carrying the filtered values as data attributes; click a header to sort."""
    columns = list(rows[0])
    head = "".join(f'<th data-sort="{i}">{esc(c)}</th>' for i, c in enumerate(columns))
    body = "".join(table_row(row, columns, int(row["episode"]) in shown) for row in rows)
    return (
        '<section id="all-episodes"><h2>All episodes</h2><p class="muted">smoothness: mean step-to-step action jump; '
        "divergence: how unlike the episode that starts nearest it acts (as protege inspect)</p>"
        f'<table id="episodes"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>'
    )


def table_row(row: dict[str, str], columns: list[str], has_panel: bool) -> str:
    """One episode's row; its data attributes are what the filters and the click handler read."""
    cell_class = {"success": f"s-{status(row)}", "task": "text", "source": "text"}
    cells = "".join(f'<td class="{cell_class.get(c, "")}">{esc(row[c])}</td>' for c in columns)
    extra = "" if has_panel else ' class="nopanel" title="no panel: raise --episodes"'
    return (
        f'<tr data-ep="{row["episode"]}" data-source="{esc(row["source"])}" '
        f'data-success="{esc(row["success"])}"{extra}>{cells}</tr>'
    )


VIEW_STYLE = """
.hidden { display: none !important; }
#filters { position: sticky; top: 0; background: #fff; padding: 6px 0; z-index: 2;
  border-bottom: 1px solid var(--line); }
.viewer { display: flex; gap: 18px; align-items: flex-start; }
#episode-list { list-style: none; margin: 0; padding: 0; max-height: 560px; overflow: auto; min-width: 120px;
  border: 1px solid var(--line); }
#episode-list li { padding: 3px 10px; cursor: pointer; border-left: 4px solid transparent; }
#episode-list li.s-yes { border-left-color: var(--good); }
#episode-list li.s-no { border-left-color: var(--bad); }
#episode-list li.current, #episodes tr.current { background: var(--band); font-weight: 600; }
#panels { flex: 1; min-width: 0; }
.panel { display: none; }
.panel.selected { display: block; }
.strip img { height: 96px; width: auto; image-rendering: pixelated; }
video { image-rendering: pixelated; }
#episodes tbody tr { cursor: pointer; }
#episodes tr.nopanel { color: var(--muted); cursor: default; }
#episodes th[data-sort] { cursor: pointer; }
td.s-yes { color: var(--good); } td.s-no { color: var(--bad); }
svg.chart { background: #fff; }
svg .frame { fill: none; stroke: var(--line); }
svg .curve { fill: none; stroke-width: 1.3; }
svg .cursor { stroke: var(--ink); stroke-width: 1; stroke-dasharray: 3 3; }
svg text { font-size: 10px; fill: var(--muted); }
svg .path { fill: none; stroke-width: 1.4; opacity: 0.75; cursor: pointer; }
svg .path.s-yes { stroke: var(--good); }
svg .path.s-no { stroke: var(--bad); }
svg .path.s-unknown { stroke: var(--muted); }
svg .path.current { stroke-width: 3.5; opacity: 1; }
svg .start { fill: var(--ink); }
.legend { display: flex; flex-wrap: wrap; gap: 2px 8px; max-width: 440px; }
.legend i { display: inline-block; width: 10px; height: 3px; margin-right: 3px; vertical-align: middle; }
"""

SCRIPT = r"""
(() => {
  const data = JSON.parse(document.getElementById('view-data').textContent);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22',
    '#17becf'];
  const meta = {};
  for (const row of $$('#episodes tbody tr')) meta[row.dataset.ep] = row.dataset;
  const filters = $$('#filters select');
  const drawn = new Set();
  let current = null;

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, value, anchor) {
    svg('text', {x: x, y: y, 'text-anchor': anchor}, parent).textContent = value;
  }
  const short = v => Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : +v.toPrecision(3);

  function chart(name, rows, stride, length) {
    const W = 440, H = 170, L = 48, R = 8, T = 8, B = 20;
    let lo = Infinity, hi = -Infinity;
    for (const row of rows) for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!(hi > lo)) { lo -= 1; hi += 1; }
    const x = f => L + (W - L - R) * f / Math.max(length - 1, 1);
    const y = v => T + (H - T - B) * (hi - v) / (hi - lo);
    const plot = svg('svg', {viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart'});
    svg('rect', {x: L, y: T, width: W - L - R, height: H - T - B, class: 'frame'}, plot);
    text(plot, L - 4, T + 8, short(hi), 'end');
    text(plot, L - 4, H - B, short(lo), 'end');
    text(plot, L, H - 6, 'frame 0', 'start');
    text(plot, W - R, H - 6, String(length - 1), 'end');
    const dims = rows.length ? rows[0].length : 0;
    for (let d = 0; d < dims; d++) {
      const points = rows.map((row, k) => `${x(k * stride).toFixed(1)},${y(row[d]).toFixed(1)}`).join(' ');
      svg('polyline', {points: points, stroke: COLORS[d % COLORS.length], class: 'curve'}, plot);
    }
    svg('line', {class: 'cursor hidden', x1: L, x2: L, y1: T, y2: H - B, 'data-left': L, 'data-span': (W - L - R) /
      Math.max(length - 1, 1)}, plot);
    const figure = document.createElement('figure');
    figure.appendChild(plot);
    const caption = document.createElement('figcaption');
    caption.className = 'legend';
    const title = document.createElement('b');
    title.textContent = name;
    caption.appendChild(title);
    for (let d = 0; d < dims; d++) {
      const key = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = COLORS[d % COLORS.length];
      key.append(swatch, `[${d}]`);
      caption.appendChild(key);
    }
    figure.appendChild(caption);
    return figure;
  }

  const bounds = (() => {
    if (!data.xy) return null;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const episode of Object.values(data.episodes)) for (const row of episode.curves[data.xy]) {
      x0 = Math.min(x0, row[0]); x1 = Math.max(x1, row[0]); y0 = Math.min(y0, row[1]); y1 = Math.max(y1, row[1]);
    }
    return {x0: x0, y0: y0, span: Math.max(x1 - x0, y1 - y0) || 1};
  })();

  function paths(episodes, size) {
    const P = 10, scale = (size - 2 * P) / bounds.span;
    const plot = svg('svg', {viewBox: `0 0 ${size} ${size}`, width: size, height: size, class: 'chart'});
    svg('rect', {x: 1, y: 1, width: size - 2, height: size - 2, class: 'frame'}, plot);
    for (const ep of episodes) {
      const rows = data.episodes[ep].curves[data.xy];
      const at = row => [P + (row[0] - bounds.x0) * scale, size - P - (row[1] - bounds.y0) * scale];
      const points = rows.map(row => at(row).map(v => v.toFixed(1)).join(',')).join(' ');
      const line = svg('polyline', {points: points, class: `path s-${status(ep)}`, 'data-ep': ep}, plot);
      line.addEventListener('click', () => select(ep));
      const [sx, sy] = at(rows[0]);
      svg('circle', {cx: sx, cy: sy, r: 2.5, class: 'start', 'data-ep': ep}, plot);
    }
    return plot;
  }
  const status = ep => ({yes: 'yes', no: 'no'})[meta[ep].success] || 'unknown';

  function draw(ep) {
    const panel = document.getElementById(`ep-${ep}`);
    const episode = data.episodes[ep];
    const grid = panel.querySelector('.curves');
    for (const [name, rows] of Object.entries(episode.curves)) grid.appendChild(chart(name, rows, episode.stride,
      episode.length));
    const xy = panel.querySelector('.xy');
    if (xy) xy.appendChild(paths([ep], 300));
    for (const video of $$('video', panel)) video.addEventListener('timeupdate', () => {
      for (const line of $$('.cursor', panel)) {
        const x = +line.dataset.left + +line.dataset.span * video.currentTime * data.fps;
        line.setAttribute('x1', x); line.setAttribute('x2', x); line.classList.remove('hidden');
      }
    });
    drawn.add(ep);
  }

  function select(ep) {
    if (!(ep in data.episodes)) return;
    if (!drawn.has(ep)) draw(ep);
    current = ep;
    for (const node of $$('[data-ep]')) node.classList.toggle('current', node.dataset.ep === ep);
    for (const panel of $$('.panel')) {
      panel.classList.toggle('selected', panel.dataset.ep === ep);
      if (panel.dataset.ep !== ep) for (const video of $$('video', panel)) video.pause();
    }
  }

  const passes = ep => filters.every(f => f.value === 'all' || meta[ep][f.dataset.column] === f.value);
  function applyFilters() {
    let rows = 0;
    for (const node of $$('[data-ep]')) {
      const ok = passes(node.dataset.ep);
      node.classList.toggle('hidden', !ok);
      if (ok && node.tagName === 'TR') rows++;
    }
    document.getElementById('filter-count').textContent = `${rows} of ${Object.keys(meta).length} episodes`;
    const visible = Object.keys(data.episodes).filter(passes);
    const none = document.getElementById('no-match');
    if (none) none.classList.toggle('hidden', visible.length > 0);
    if (visible.length && (current === null || !passes(current))) select(visible[0]);
  }

  function sortBy(column, header) {
    const body = document.querySelector('#episodes tbody');
    const up = header.dataset.order !== 'up';
    for (const th of $$('#episodes th')) delete th.dataset.order;
    header.dataset.order = up ? 'up' : 'down';
    const key = row => row.cells[column].textContent;
    const rank = value => isNaN(parseFloat(value)) ? Infinity : parseFloat(value);
    const rows = $$('tr', body).sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const order = isNaN(parseFloat(x)) && isNaN(parseFloat(y)) ? x.localeCompare(y) : rank(x) - rank(y);
      return up ? order : -order;
    });
    body.append(...rows);
  }

  for (const f of filters) f.addEventListener('change', applyFilters);
  for (const item of $$('#episode-list li')) item.addEventListener('click', () => select(item.dataset.ep));
  for (const row of $$('#episodes tbody tr')) row.addEventListener('click', () => {
    if (!(row.dataset.ep in data.episodes)) return;
    select(row.dataset.ep);
    document.getElementById('viewer').scrollIntoView({behavior: 'smooth'});
  });
  for (const th of $$('#episodes th[data-sort]')) th.addEventListener('click', () => sortBy(+th.dataset.sort, th));
  const overview = document.getElementById('xy-overview');
  if (overview) overview.appendChild(paths(Object.keys(data.episodes), 460));
  const wanted = (location.hash.match(/^#ep-(\d+)$/) || [])[1];
  if (wanted in data.episodes) select(wanted);
  applyFilters();
})();
"""
