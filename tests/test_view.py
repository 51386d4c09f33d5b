"""`protege view`: the page lists every episode as the dataset has it, its embedded curves are the
store's values, its videos hold each episode's frames, and unrecorded columns read "?". (That the
page renders in a browser is the browser test's job.)"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import protege.report.view as view
from protege.cli import main
from protege.config import CollectConfig, ViewConfig
from protege.data.store import ACTION, STATE, EpisodeStore
from protege.demos.collect import collect
from protege.formats import read_dataset, write_dataset

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot"


class Page(HTMLParser):
    """The parts of a view page the tests read: elements with their attributes, and the embedded JSON."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.data: dict = {}
        self.words: list[str] = []  # the text a reader sees (not in scripts or styles)
        self._in = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in = "data" if dict(attrs).get("id") == "view-data" else tag

    def handle_data(self, data: str) -> None:
        if self._in == "data":
            self.data = json.loads(data)
        elif self._in not in ("script", "style"):
            self.words += data.split()
        self._in = ""

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        """Elements ``tag`` with these attribute values (``class_`` for class)."""
        return [a for t, a in self.elements if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def rows(self) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == "tr" and "data-ep" in a]

    def options(self, column: str) -> list[str]:
        """The values a filter offers, in order, after 'all'."""
        start = next(i for i, (t, a) in enumerate(self.elements) if t == "select" and a.get("data-column") == column)
        values = []
        for tag, attrs in self.elements[start + 1 :]:
            if tag != "option":
                break
            values.append(attrs["value"])
        return values


def open_page(folder: Path) -> tuple[str, Page]:
    text = (folder / "index.html").read_text(encoding="utf-8")
    return text, Page(text)


def webm_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_toy_page_lists_every_episode_with_its_source_success_and_actions(tmp_path: Path) -> None:
    dataset, store = collect(
        CollectConfig(
            task="toy/fork", episodes=12, mixture=("expert=0.5", "random=0.5"), out=tmp_path / "toy", progress=False
        )
    )
    main(["view", str(dataset), "--episodes", "4"])  # cwd is tmp_path: the default folder is view-toy
    text, page = open_page(tmp_path / "view-toy")
    rows = page.rows()
    assert [r["data-ep"] for r in rows] == [str(e) for e in range(12)]
    assert [r["data-source"] for r in rows] == store.episodes["source"].tolist()
    assert [r["data-success"] for r in rows] == ["yes" if s else "no" for s in store.episodes["success"]]
    assert {"yes", "no"} <= {r["data-success"] for r in rows}  # the mixture has both, so the filter means something
    assert [r.get("class") for r in rows] == [None] * 4 + ["nopanel"] * 8
    assert page.options("source") == ["all", *sorted(set(store.episodes["source"]))]
    assert page.options("success") == ["all", "no", "yes"]
    assert len(page.find("div", class_="panel")) == 4
    assert set(page.data["episodes"]) == {"0", "1", "2", "3"} and page.data["xy"] == STATE
    for e in range(4):
        episode = page.data["episodes"][str(e)]
        start, end = store.episode_starts[e], store.episode_ends[e]
        assert (episode["length"], episode["stride"]) == (end - start, 1)
        for key, values in ((ACTION, store.action), (STATE, store.obs[STATE])):
            np.testing.assert_allclose(episode["curves"][key], values[start:end], rtol=1e-3, atol=1e-9)
    links = [attrs[k] for _, attrs in page.elements for k in ("src", "href") if k in attrs]
    assert "https:" not in text and all(":" not in link or link.startswith("data:") for link in links)  # offline


def pixel_store(lengths: list[int], height: int = 33, width: int = 45) -> EpisodeStore:
    """Frames whose red channel is the episode's number (x 60) and a white column marking the frame; no
    success column (so it is unrecorded), a source per episode."""
    n = sum(lengths)
    episode = np.repeat(np.arange(len(lengths)), lengths)
    frame = np.concatenate([np.arange(k) for k in lengths])
    images = np.zeros((n, height, width, 3), np.uint8)
    images[..., 0] = (episode * 60 + 30)[:, None, None]
    images[np.arange(n), :, frame % width] = 255
    rng = np.random.default_rng(0)
    return EpisodeStore(
        obs={"observation.image": images, STATE: rng.normal(size=(n, 3)).astype(np.float32)},
        action=rng.normal(size=(n, 2)).astype(np.float32),
        episode_ends=np.cumsum(lengths),
        episodes={"source": np.array(["a", "b", "a"], dtype=object), "return": np.ones(3), "seed": np.arange(3)},
        fps=15,
        task="draw",
    )


def test_pixel_page_writes_one_decodable_webm_per_episode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = pixel_store([7, 12, 5])
    write_dataset(store, tmp_path / "px", video=False)  # PNG frames: lossless, so the video is compared to them
    monkeypatch.setattr(view, "CURVE_POINTS", 5)  # the 12-frame episode is subsampled to every 3rd frame
    folder = view.write_view(ViewConfig(dataset=tmp_path / "px", out=tmp_path / "page"))
    _, page = open_page(folder)
    videos = [a["src"] for a in page.find("video")]
    assert videos == [f"media/ep{e:04d}-observation.image.webm" for e in range(3)]
    for e, (src, length) in enumerate(zip(videos, [7, 12, 5])):
        frames = webm_frames(folder / src)
        assert frames.shape == (length, 32, 44, 3)  # cropped to even sides for yuv420p
        assert abs(frames[..., 0].mean() - (e * 60 + 30)) < 8  # this episode's pictures, not another's
        columns = frames.mean(axis=(1, 3)).argmax(axis=1)  # the white column moves one pixel a frame
        np.testing.assert_array_equal(columns, np.arange(length))
    strips = [a["src"] for a in page.find("img")]
    assert [Image.open(folder / src).size[1] for src in strips] == [33] * 3
    assert Image.open(folder / strips[1]).size[0] == 6 * 45 + 5 * 2  # six stills of the 12 frames, 2-px gaps
    subsampled = page.data["episodes"]["1"]
    assert subsampled["stride"] == 3
    np.testing.assert_allclose(subsampled["curves"][ACTION], store.action[7:19:3], rtol=1e-3, atol=1e-9)
    assert page.data["xy"] is None  # cameras, not a drawn path
    assert [r["data-success"] for r in page.rows()] == ["?"] * 3
    assert page.options("success") == ["all", "?"] and page.options("source") == ["all", "a", "b"]


def test_tall_stills_are_scaled_down(tmp_path: Path) -> None:
    write_dataset(pixel_store([4, 3, 5], height=160, width=40), tmp_path / "px", video=False)
    folder = view.write_view(ViewConfig(dataset=tmp_path / "px", out=tmp_path / "page"))
    _, page = open_page(folder)
    assert len(page.find("video")) == 3 and len(page.find("img")) == 3
    strip = Image.open(folder / page.find("img")[0]["src"])
    assert strip.size == (round((4 * 40 + 3 * 2) * 128 / 160), 128)  # tall stills scaled down, four of 4 frames


def test_lerobot_video_fixture_views_with_unrecorded_columns_as_question_marks(tmp_path: Path) -> None:
    folder = view.write_view(ViewConfig(dataset=FIXTURES / "video-v3", out=tmp_path / "page"))
    text, page = open_page(folder)
    rows = page.rows()
    assert len(rows) == 5 and {r["data-success"] for r in rows} == {"?"} and {r["data-source"] for r in rows} == {"?"}
    assert not {"False", "unknown", "-1"} & set(page.words)  # unrecorded columns' defaults are not shown as data
    assert "not recorded: return, seed, source, success (shown as ?)" in text
    lengths = read_dataset(FIXTURES / "video-v3", images=False).episode_lengths.tolist()
    videos = [a["src"] for a in page.find("video")]
    assert [len(webm_frames(folder / src)) for src in videos] == lengths == [30, 25, 40, 35, 20]


def test_a_missing_dataset_is_the_usual_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such dataset"):
        view.write_view(ViewConfig(dataset=tmp_path / "absent", out=tmp_path / "page"))
    assert not (tmp_path / "page").exists()


def test_lerobot_fixture_in_a_browser(tmp_path: Path, open_page) -> None:
    """LeRobot's own video dataset: the page opens offline with no errors, every still loads, every
    episode's video plays, the table lists the five episodes; a screenshot is saved."""
    folder = view.write_view(ViewConfig(dataset=FIXTURES / "video-v3", out=tmp_path / "page"))
    page = open_page(folder / "index.html")
    page.assert_clean()  # no console or page errors, no network request, every <img> loaded, every <video> plays
    assert [row[0] for row in page.table("#episodes")] == ["0", "1", "2", "3", "4"]
    videos = page.videos()
    assert len(videos) == 5 and all(v.plays and (v.video_width, v.video_height) == (64, 48) for v in videos)
    images = page.images()
    assert len(images) == 5 and all(image.natural_width > 0 for image in images)
    page.screenshot(tmp_path / "view.png")
    assert (tmp_path / "view.png").stat().st_size > 10_000


def test_filters_in_a_browser(tmp_path: Path, open_page) -> None:
    """Choosing a source and a success value leaves exactly the store's matching episodes visible."""
    store = collect(
        CollectConfig(
            task="toy/fork", episodes=16, out=tmp_path / "mix", mixture=("expert=0.5", "random=0.5"), progress=False
        )
    )[1]
    folder = view.write_view(ViewConfig(dataset=tmp_path / "mix", out=tmp_path / "page", episodes=16))
    page = open_page(folder / "index.html")
    page.assert_clean()
    assert len(page.table("#episodes")) == 16
    sources, success = store.episodes["source"], store.episodes["success"]
    other = next(s for s in sources if s != "expert")  # the random operator, named with its epsilon
    page.select("#filter-source", other)
    assert len(page.table("#episodes")) == int((sources == other).sum())
    page.select("#filter-success", "no")
    expected = [str(e) for e in range(16) if sources[e] == other and not success[e]]
    assert [row[0] for row in page.table("#episodes")] == expected
    page.select("#filter-source", "all")
    page.select("#filter-success", "yes")
    visible = [row[0] for row in page.table("#episodes")]
    assert visible == [str(e) for e in range(16) if success[e]]
    page.click(f'#episodes tbody tr[data-ep="{visible[-1]}"]')
    assert page.evaluate("document.querySelector('.panel.selected').dataset.ep") == visible[-1]
