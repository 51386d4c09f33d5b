"""Shared fixtures: one torch thread and a private working folder for every test."""

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny nets gain nothing from threads, and on a loaded 2-core machine OpenMP spinning makes
    them ~50x slower; one thread also keeps every run on the same float arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROTEGE_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)  # a default output folder (runs/, data/) never lands in the repo


@pytest.fixture(scope="session")
def chromium():
    """One headless chromium for the whole run: a launch costs about a second, and each page gets a fresh context.

    Imported here, not at the top, so that only a run with browser tests starts Playwright.
    """
    from browser import launch

    with launch() as browser:
        yield browser


@pytest.fixture
def open_page(chromium):
    """`open_page(path) -> PageCheck`: a page on disk open in chromium, closed when the test ends."""
    from contextlib import ExitStack

    from browser import check_page

    with ExitStack() as pages:
        yield lambda path, **options: pages.enter_context(check_page(chromium, path, **options))
