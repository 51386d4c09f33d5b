"""A real headless chromium that opens a page from file:// and reports what a person would see go wrong.

The pages under test (the HTML report, the dataset viewer) are single files that must open offline: a broken
image, a video the browser cannot decode, a script that throws, or a request to a CDN only shows in a browser,
never in the HTML text. So the tests drive Debian's own chromium through Playwright (no downloaded browser) and
collect console errors, uncaught exceptions, failed and blocked requests, image sizes and video playback.

Usage, with the `chromium` and `open_page` fixtures of tests/conftest.py::

    page = open_page(folder / "index.html")
    page.select("#source", "pusht")
    assert len(page.table("#episodes")) == 3
    page.assert_clean()
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Nothing here may reach the network: the browser is the system's chromium, never one Playwright downloads.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, Route, sync_playwright  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOCAL_SCHEMES = ("file", "data", "blob", "about")  # a page that opens offline loads nothing else
VIEWPORT = {"width": 1280, "height": 800}
MEDIA_TIMEOUT_S = 15.0  # generous: the CI machine is two cores shared with other jobs


class ChromiumMissing(RuntimeError):
    """Raised, not skipped: CI installs chromium, so a missing one is a broken setup, not an optional test."""


def chromium_path() -> str:
    """Debian's chromium at its usual place, else whatever `chromium` the PATH finds."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    found = shutil.which("chromium")
    if found is None:
        raise ChromiumMissing("the browser tests need chromium: apt-get install -y chromium (.ci/run does this)")
    return found


@contextmanager
def launch() -> Iterator[Browser]:
    """One headless chromium; Playwright gives it a fresh, empty --user-data-dir and deletes it afterwards."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def short(text: str, limit: int = 100) -> str:
    """Data URIs run to megabytes; a failure message needs only their start."""
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class ImageCheck:
    """One <img> after loading: natural size 0 means the browser could not load or decode it."""

    src: str
    natural_width: int
    natural_height: int

    @property
    def loaded(self) -> bool:
        return self.natural_width > 0 and self.natural_height > 0


@dataclass(frozen=True)
class VideoCheck:
    """One <video> after a muted play(): it plays when it decoded a frame and its clock moved."""

    src: str
    ready_state: int
    video_width: int
    video_height: int
    current_time: float
    duration: float | None
    error: str | None

    @property
    def plays(self) -> bool:
        return self.error is None and self.ready_state >= 2 and self.video_width > 0 and self.current_time > 0


# Waits for every <img> to finish (load or error); lazy ones are made eager, or below the fold they never load.
IMAGES_JS = """async (timeoutMs) => {
  const images = [...document.images];
  images.forEach((img) => { if (img.loading === "lazy") img.loading = "eager"; });
  const settled = (img) => img.complete ? null : new Promise((resolve) => {
    img.addEventListener("load", resolve, {once: true});
    img.addEventListener("error", resolve, {once: true});
  });
  await Promise.race([Promise.all(images.map(settled)), new Promise((r) => setTimeout(r, timeoutMs))]);
  return images.map((img) => ({src: img.currentSrc || img.getAttribute("src") || "",
                               width: img.naturalWidth, height: img.naturalHeight}));
}"""

# Plays every <video> muted (autoplay rules allow that) until a frame is decoded (loadeddata) and the clock moves.
# Errors of <source> children do not bubble, so the error listener captures; earlier failures are read from state.
VIDEOS_JS = """async (timeoutMs) => {
  const check = (video) => new Promise((resolve) => {
    let finished = false;
    const finish = (note) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      video.pause();
      const source = video.querySelector("source");
      resolve({src: video.currentSrc || video.getAttribute("src") || (source && source.getAttribute("src")) || "",
               readyState: video.readyState, width: video.videoWidth, height: video.videoHeight,
               currentTime: video.currentTime, duration: Number.isFinite(video.duration) ? video.duration : null,
               error: video.error ? `MediaError ${video.error.code}: ${video.error.message}` : note});
    };
    const timer = setTimeout(() => finish(`no playback within ${timeoutMs} ms`), timeoutMs);
    const progressed = () => {
      if (video.readyState >= 2 && video.videoWidth > 0 && video.currentTime > 0) finish(null);
    };
    video.addEventListener("error", () => finish("failed to load"), {capture: true});
    video.addEventListener("timeupdate", progressed);
    video.addEventListener("ended", progressed);
    // A <source> that failed during page load leaves no error and a play() promise that never settles.
    if (video.error || video.networkState === HTMLMediaElement.NETWORK_NO_SOURCE) return finish("no source loaded");
    video.muted = true;
    video.play().catch((e) => finish(`play() rejected: ${e.name}: ${e.message}`));
  });
  return Promise.all([...document.querySelectorAll("video")].map(check));
}"""

# Cell text of a table's rows; rows inside <thead> and rows the page hides (a filter) are left out unless asked.
TABLE_JS = """([selector, header, hidden]) => {
  const table = document.querySelector(selector);
  if (!table) throw new Error(`no element matches ${selector}`);
  const rows = table.rows ? [...table.rows] : [...table.querySelectorAll("tr")];
  return rows
    .filter((row) => header || !row.closest("thead"))
    .filter((row) => hidden || row.checkVisibility())
    .map((row) => [...row.cells].map((cell) => cell.textContent.replace(/\\s+/g, " ").trim()));
}"""


@dataclass
class PageCheck:
    """A page open in chromium, with everything that went wrong since it started loading."""

    page: Page
    url: str
    load_s: float = 0.0
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)

    def images(self, timeout_s: float = MEDIA_TIMEOUT_S) -> list[ImageCheck]:
        """Every <img> now in the page, once each has loaded or failed."""
        found = self.page.evaluate(IMAGES_JS, timeout_s * 1000)
        return [ImageCheck(i["src"], i["width"], i["height"]) for i in found]

    def videos(self, timeout_s: float = MEDIA_TIMEOUT_S) -> list[VideoCheck]:
        """Every <video> now in the page, played muted until it shows frames (then paused), or its error."""
        found = self.page.evaluate(VIDEOS_JS, timeout_s * 1000)
        return [
            VideoCheck(v["src"], v["readyState"], v["width"], v["height"], v["currentTime"], v["duration"], v["error"])
            for v in found
        ]

    def table(self, selector: str, *, header: bool = False, hidden: bool = False) -> list[list[str]]:
        """Cell texts of the visible body rows, so a test can count what a filter left on screen."""
        return self.page.evaluate(TABLE_JS, [selector, header, hidden])

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Run JavaScript in the page (an expression or a function taking `arg`) and return its JSON value."""
        return self.page.evaluate(expression, arg)

    def click(self, selector: str) -> None:
        self.page.click(selector)

    def select(self, selector: str, value: str | list[str]) -> list[str]:
        """Choose an <option> by value or label; the page's change handlers run before this returns."""
        return self.page.select_option(selector, value)

    def fill(self, selector: str, text: str) -> None:
        self.page.fill(selector, text)

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """A PNG to look at when a check fails, or to keep as an artifact."""
        self.page.screenshot(path=str(path), full_page=full_page)
        return Path(path)

    def problems(self, media: bool = True) -> list[str]:
        """All that went wrong, one line each; `media` adds images that did not load and videos that do not play."""
        lines = [f"blocked request (the page must open offline): {short(u)}" for u in self.blocked_requests]
        lines += [f"page error: {e}" for e in self.page_errors]
        lines += [f"console error: {e}" for e in self.console_errors]
        lines += [f"failed request: {short(r)}" for r in self.failed_requests]
        if media:
            lines += [f"image not loaded: {short(i.src)}" for i in self.images() if not i.loaded]
            lines += [f"video does not play: {short(v.src)}: {v.error}" for v in self.videos() if not v.plays]
        return lines

    def assert_clean(self, media: bool = True) -> None:
        """Fail with every problem listed at once, so one run shows all that is broken."""
        lines = self.problems(media)
        assert not lines, f"{self.url}:\n  " + "\n  ".join(lines)


def watch(context: BrowserContext, page: Page, check: PageCheck) -> None:
    """Record errors as they happen and refuse every request that would leave the machine."""

    def route(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in LOCAL_SCHEMES:
            route.continue_()
        else:
            check.blocked_requests.append(url)
            route.abort("blockedbyclient")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            place = f" ({where.get('url', '')}:{where.get('lineNumber', '')})" if where.get("url") else ""
            check.console_errors.append(message.text + place)

    def page_error(error: Error) -> None:
        check.page_errors.append(f"{error.name}: {error.message}" if error.name else error.message)

    def request_failed(request: Any) -> None:
        if request.url not in check.blocked_requests:
            check.failed_requests.append(f"{request.url}: {request.failure}")

    context.route("**/*", route)
    context.route_web_socket("**/*", lambda ws: (check.blocked_requests.append(ws.url), ws.close()))
    page.on("console", console)
    page.on("pageerror", page_error)
    page.on("requestfailed", request_failed)


@contextmanager
def check_page(browser: Browser, path: str | Path, timeout_s: float = 30.0) -> Iterator[PageCheck]:
    """Open `path` (a page on disk) in a fresh context of `browser`: no cookies or storage leak between pages."""
    url = Path(path).resolve().as_uri()
    context = browser.new_context(viewport=VIEWPORT, service_workers="block", accept_downloads=False)
    try:
        context.set_default_timeout(timeout_s * 1000)
        page = context.new_page()
        check = PageCheck(page, url)
        watch(context, page, check)
        start = time.perf_counter()
        page.goto(url, wait_until="load")
        check.load_s = time.perf_counter() - start
        yield check
    finally:
        context.close()
