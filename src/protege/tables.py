"""Tables for people: plain text for the terminal, Markdown for docs and committed results.
Every table protege prints or writes goes through these two, so columns line up the same way."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, the first left-aligned and the others right, with a
    rule of dashes under the header."""
    widths = [max(len(row[column]) for row in [headers, *rows]) for column in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(rest, widths[1:]))]
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * width for width in widths), *(line(row) for row in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    return "\n".join(
        ["| " + " | ".join(cells) + " |" for cells in [headers]]
        + ["|" + "---|" * len(headers)]
        + ["| " + " | ".join(cells) + " |" for cells in rows]
    )
