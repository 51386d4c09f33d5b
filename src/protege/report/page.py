"""The HTML around protege's offline pages (report and dataset view): one stylesheet, escaping,
inline images, an atomic write. Nothing is fetched from a network: a page opens from a laptop on
a plane, so every style, script and picture is inline or a file beside ``index.html``.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path

from protege.atomic import atomic_file

STYLE = """
:root { --ink: #1d2430; --muted: #5f6b7a; --line: #d9dee5; --band: #f4f6f9; --good: #1a7f37; --bad: #b42318; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0; }
header { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin-top: 26px; }
h2 { font-size: 17px; margin: 0 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: right; white-space: nowrap; }
th { background: var(--band); font-weight: 600; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
tr.hidden { display: none; }
.muted { color: var(--muted); }
.scroll { overflow-x: auto; }
.good { color: var(--good); }
.bad { color: var(--bad); }
.grid { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
figure { margin: 0; }
figure img, figure video { display: block; max-width: 100%; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; margin-top: 3px; max-width: 420px; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--muted); }
pre { background: var(--band); padding: 8px; overflow: auto; max-height: 420px; font-size: 12px; }
.controls { display: flex; gap: 14px; align-items: center; margin: 8px 0; flex-wrap: wrap; }
"""


def esc(value: object) -> str:
    """Text as HTML: nothing a dataset or config holds can inject markup."""
    return html.escape(str(value), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], attrs: str = "") -> str:
    """An HTML table of escaped cells (scrolling sideways when wide); the first column is left-aligned (a
    name), the rest numbers. Columns with nothing in any row ("-" or "") are left out."""
    rows = [list(row) for row in rows]
    keep = [i for i in range(len(headers)) if not rows or any(str(row[i]) not in ("-", "") for row in rows)]
    head = "".join(f"<th>{esc(headers[i])}</th>" for i in keep)
    body = "".join("<tr>" + "".join(f"<td>{esc(row[i])}</td>" for i in keep) + "</tr>" for row in rows)
    return f'<div class="scroll"><table {attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def data_uri(data: bytes, mime: str) -> str:
    """Bytes as a ``data:`` URI, so a small picture lives inside the page."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def document(title: str, subtitle: str, body: str, script: str = "") -> str:
    """A whole page: the stylesheet, a header, the body and an optional inline script."""
    tail = f"<script>{script}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{esc(title)}</title><link rel="icon" href="data:,"><style>{STYLE}</style></head><body>'
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><main>{body}</main>{tail}</body></html>\n"
    )


def write_page(folder: Path, page: str) -> Path:
    """Write ``folder/index.html`` atomically (a killed write leaves the old page or none); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / "index.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return folder
