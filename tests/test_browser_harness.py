"""The browser harness must see what a person would: a clean page passes, and every kind of breakage is reported.

Without the failing cases a harness that reports nothing would look like a page that works.
"""

import base64
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from browser import ChromiumMissing, chromium_path


def png_data_uri(width: int, height: int) -> str:
    """A real PNG, written by hand so the test needs no imaging library."""
    rows = b"".join(b"\x00" + bytes([200, 40, 40]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode()


def write_webm(path: Path, frames: int = 10, size: int = 64) -> Path:
    """A short VP9 WebM, the format the report and the viewer write beside their pages."""
    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for i in range(frames):
            image = np.full((size, size, 3), (25 * i) % 256, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_page(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "index.html"
    page.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><title>t</title></head><body>{body}</body></html>'
    )
    return page


FILTERED_TABLE = """
<select id="source"><option value="">all</option><option value="a">a</option><option value="b">b</option></select>
<button id="hide" onclick="document.querySelector('#runs tbody tr').hidden = true">hide first</button>
<table id="runs">
  <thead><tr><th>source</th><th>success</th></tr></thead>
  <tbody>
    <tr data-source="a"><td>a</td><td> yes </td></tr>
    <tr data-source="a"><td>a</td><td>no</td></tr>
    <tr data-source="b"><td>b</td><td>yes</td></tr>
  </tbody>
</table>
<script>
  document.getElementById("source").addEventListener("change", (event) => {
    for (const row of document.querySelectorAll("#runs tbody tr"))
      row.style.display = !event.target.value || row.dataset.source === event.target.value ? "" : "none";
  });
</script>
"""


def test_a_clean_page_passes_with_its_media_and_table(tmp_path: Path, open_page) -> None:
    write_webm(tmp_path / "ep0.webm")
    body = f'<img id="frame" src="{png_data_uri(3, 2)}"><video src="ep0.webm"></video>{FILTERED_TABLE}'
    page = open_page(write_page(tmp_path, body))

    page.assert_clean()
    assert [(i.natural_width, i.natural_height) for i in page.images()] == [(3, 2)]
    [video] = page.videos()
    assert video.plays and (video.video_width, video.video_height) == (64, 64), video
    assert video.src.endswith("/ep0.webm") and video.duration == pytest.approx(1.0, abs=0.15)


def test_table_rows_follow_filters_and_clicks(tmp_path: Path, open_page) -> None:
    page = open_page(write_page(tmp_path, FILTERED_TABLE))
    assert page.table("#runs") == [["a", "yes"], ["a", "no"], ["b", "yes"]]
    assert page.table("#runs", header=True)[0] == ["source", "success"]

    assert page.select("#source", "a") == ["a"]
    assert page.table("#runs") == [["a", "yes"], ["a", "no"]]
    assert len(page.table("#runs", hidden=True)) == 3
    page.select("#source", "")
    page.click("#hide")
    assert len(page.table("#runs")) == 2
    assert page.evaluate("document.querySelectorAll('#runs tbody tr').length") == 3

    shot = page.screenshot(tmp_path / "shot.png")
    assert shot.read_bytes().startswith(b"\x89PNG")
    page.assert_clean()


def test_broken_media_is_reported(tmp_path: Path, open_page) -> None:
    (tmp_path / "corrupt.webm").write_bytes(b"\x1a\x45\xdf\xa3 not a real webm" * 20)
    body = '<img src="missing.png"><video src="missing.webm"></video><video src="corrupt.webm"></video>'
    body += '<video><source src="missing-source.webm" type="video/webm"></video>'
    page = open_page(write_page(tmp_path, body))

    [image] = page.images()
    assert (image.natural_width, image.natural_height) == (0, 0) and not image.loaded
    assert any("missing.png" in r and "ERR_FILE_NOT_FOUND" in r for r in page.failed_requests), page.failed_requests
    videos = page.videos(timeout_s=5)
    assert [v.plays for v in videos] == [False, False, False]
    assert all(v.error for v in videos), videos
    problems = page.problems()
    assert sum(p.startswith("video does not play") for p in problems) == 3, problems
    assert any(p.startswith("image not loaded") for p in problems), problems
    with pytest.raises(AssertionError, match="missing.png"):
        page.assert_clean()


def test_script_errors_are_reported(tmp_path: Path, open_page) -> None:
    body = '<script>console.error("boom from the page")</script><script>null.thing()</script>'
    page = open_page(write_page(tmp_path, body))
    assert any("boom from the page" in e for e in page.console_errors), page.console_errors
    assert len(page.page_errors) == 1 and "TypeError" in page.page_errors[0], page.page_errors
    with pytest.raises(AssertionError, match="boom from the page"):
        page.assert_clean(media=False)


def test_network_requests_are_blocked_and_reported(tmp_path: Path, open_page) -> None:
    body = """<script src="https://cdn.example.com/lib.js"></script>
<script>window.fetched = fetch("https://example.com/x.js").then(() => "reached", () => "refused")</script>
<script>new WebSocket("wss://example.com/live")</script>"""
    page = open_page(write_page(tmp_path, body))
    assert page.evaluate("window.fetched") == "refused"
    page.page.wait_for_timeout(200)  # the socket is refused asynchronously
    expected = {"https://cdn.example.com/lib.js", "https://example.com/x.js", "wss://example.com/live"}
    assert set(page.blocked_requests) == expected, page.blocked_requests
    with pytest.raises(AssertionError, match="must open offline"):
        page.assert_clean(media=False)


def test_a_missing_chromium_fails_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("browser.os.access", lambda *_: False)
    monkeypatch.setattr("browser.shutil.which", lambda _: None)
    with pytest.raises(ChromiumMissing, match="apt-get install -y chromium"):
        chromium_path()
