"""Progress bars that read well both on a terminal and in a log file.

On a terminal (or in a notebook) a bar is tqdm's own, redrawn in place. When stderr is not a terminal (CI,
``nohup``, a pipe), redrawing in place would fill the log with carriage returns, so the bar prints a plain line
instead (desc, n/total, elapsed<remaining, rate, postfix) at most every ``PROTEGE_PROGRESS_INTERVAL`` seconds
(default 5), and one more when it ends. tqdm still does the throttling and the formatting; only its output file
is swapped for one that turns each redraw into a line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TextIO

from tqdm import tqdm
from tqdm.auto import tqdm as auto_tqdm

#: Seconds between two lines of a bar in a non-interactive log.
INTERVAL_ENV = "PROTEGE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 5.0
LINE_FORMAT = "{desc} {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

#: What progress_bar returns, for annotating a bar passed around.
Bar = tqdm


class _Lines:
    """A file for tqdm that writes each redraw (a carriage return, then the status) as its own line: blank redraws
    (clearing the line) and a repeat of the previous line are dropped, so a bar ending right after a redraw prints
    it once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.last = stream, ""

    def write(self, text: str) -> None:
        for line in text.replace("\r", "\n").split("\n"):
            line = line.strip()
            if line and line != self.last:
                self.stream.write(line + "\n")
                self.last = line

    def flush(self) -> None:
        self.stream.flush()


def line_interval() -> float:
    """Seconds between the lines of a non-interactive bar, from ``PROTEGE_PROGRESS_INTERVAL``."""
    value = os.environ.get(INTERVAL_ENV, str(DEFAULT_INTERVAL))
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV} must be a number of seconds, got {value!r}") from None
    if not seconds >= 0:
        raise ValueError(f"{INTERVAL_ENV} must be >= 0 seconds, got {value!r}")
    return seconds


def _interactive(stream: TextIO) -> bool:
    """A terminal, or a Jupyter kernel (its stderr is no TTY, but tqdm.auto draws a widget there)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a stream without isatty, or a closed one
        return False


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    disable: bool = False,
    leave: bool = True,
    initial: float = 0,
) -> Bar:
    """A tqdm bar on stderr: redrawn in place on a terminal, a line every few seconds in a log.

    In a log every bar is left (``leave`` is ignored): its last line is the record of what it did.
    """
    stream = sys.stderr
    if disable or _interactive(stream):
        return auto_tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=leave, initial=initial)
    seconds = line_interval()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=True,
        initial=initial,
        file=_Lines(stream),
        position=0,  # nested bars (eval inside train) print lines too, with no cursor movement
        mininterval=seconds,
        maxinterval=seconds,  # tqdm's monitor redraws a stalled bar no sooner than this
        bar_format=LINE_FORMAT,
    )
