"""Fixtures of the website tests: the site built once into a temporary folder, served on
localhost, and headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

The tests skip, saying why, where the docs extra, Playwright or Chromium is absent. Nothing here
downloads a browser: Playwright is pointed at the system's Chromium. The server listens on
127.0.0.1 only, which the suite's network block (tests/conftest.py) leaves open.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Chromium's background services reach for the network, which is closed here: turn them off.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _build_tool():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import build_website
    finally:
        sys.path.remove(str(REPO / "tools"))
    return build_website


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly into a temporary folder (as tools/build_website.py builds it)."""
    tool = _build_tool()
    missing = tool.missing_packages()
    if missing:
        pytest.skip(f"the docs extra is not installed ({', '.join(missing)}): "
                    'pip install -c constraints.txt -e ".[docs]"')
    out = tmp_path_factory.mktemp("site")
    ok, problems = tool.build(out)
    assert ok, "the strict build failed:\n" + "\n".join(problems)
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="session")
def base_url(site: Path):
    """The built site served by a thread on a free port of 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory, site: Path):
    """A Chromium context with a fresh profile folder (Playwright, never a downloaded browser)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip('Playwright is not installed: pip install -c constraints.txt -e ".[docs]"')
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()
