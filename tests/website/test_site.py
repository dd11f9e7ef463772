"""The documentation site as a reader meets it: built strictly, served, opened in Chromium."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest

PAGES_THAT_MUST_EXIST = [
    "index.html", "getting_started.html", "concepts/registry.html", "concepts/configs.html",
    "concepts/training.html", "concepts/checkpoints.html", "plugin_tutorial.html", "overrides.html",
    "run_folder.html", "multitask.html", "datasets.html", "projects/quickstart.html", "projects/unit.html",
    "projects/meter.html", "projects/momo.html", "projects/vit_bert.html", "reference/registry.html",
    "reference/registry/optimizer_hooks.html", "reference/api/registry.html", "reference/api/training.html",
]


def pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")


class _Scan(HTMLParser):
    """The ids (anchors) and link targets of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)
            if tag == "a" and key == "href" and value:
                self.hrefs.append(value)


def _scan(path: Path) -> _Scan:
    parser = _Scan()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def anchors(path: Path) -> set[str]:
    return _scan(path).ids


def links(path: Path) -> list[str]:
    return _scan(path).hrefs


def test_every_page_is_built(site):
    built = set(pages(site))
    assert [p for p in PAGES_THAT_MUST_EXIST if p not in built] == []
    assert len(built) >= len(PAGES_THAT_MUST_EXIST)


def test_project_pages_are_their_readmes(site):
    """A project's page is generated from its README: its headings appear on the page."""
    repo = Path(__file__).resolve().parents[2]
    for name in ("quickstart", "unit", "meter", "momo", "vit_bert"):
        readme = (repo / "projects" / name / "README.md").read_text(encoding="utf-8")
        html = (site / "projects" / f"{name}.html").read_text(encoding="utf-8")
        title = re.search(r"^# (.+)$", readme, re.M).group(1)
        words = re.sub(r"[`*]", "", title).split()
        assert all(word in html for word in words), (name, title)


def test_pages_load_without_console_errors_or_outside_requests(site, base_url, browser_context):
    """Every page loads with no console error, no script error, no failed or refused request, and
    asks for nothing outside the site (no web fonts, no CDN scripts)."""
    page = browser_context.new_page()
    problems: list[str] = []
    current = [""]

    def failed(request) -> None:
        if request.failure != "net::ERR_ABORTED":  # a fetch the next navigation cancelled
            problems.append(f"{current[0]}: failed request {request.url} ({request.failure})")

    page.on("console", lambda msg: problems.append(f"{current[0]}: console {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"{current[0]}: script error {err}"))
    page.on("request", lambda req: None if req.url.startswith((base_url, "data:", "blob:"))
            else problems.append(f"{current[0]}: outside request {req.url}"))
    page.on("requestfailed", failed)
    page.on("response", lambda r: problems.append(f"{current[0]}: {r.status} for {r.url}") if r.status >= 400 else None)
    for uri in pages(site):
        current[0] = uri
        response = page.goto(base_url + uri, wait_until="load")
        assert response is not None and response.ok, uri
    page.close()
    assert problems == []


def test_internal_links_resolve(site):
    """Every link of every page that stays on the site names a built file, and its anchor exists."""
    ids: dict[Path, set[str]] = {}
    broken = []
    base = "http://site/"
    for uri in pages(site):
        for href in links(site / uri):
            url, fragment = urldefrag(urljoin(base + uri, href))
            if not url.startswith(base):
                continue
            path = site / (unquote(urlparse(url).path).lstrip("/") or "index.html")
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file():
                broken.append(f"{uri} -> {href} (no such file)")
            elif fragment and path.suffix == ".html":
                if path not in ids:
                    ids[path] = anchors(path)
                if unquote(fragment) not in ids[path]:
                    broken.append(f"{uri} -> {href} (no anchor #{fragment})")
    assert broken == []


def test_search_finds_skip_zero_grad(base_url, browser_context):
    page = browser_context.new_page()
    page.goto(base_url + "index.html", wait_until="load")
    page.locator("input.md-search__input").click()  # in the header at this width
    page.keyboard.type("skip zero grad", delay=20)  # as typed: the search listens to keys
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15000)
    links = page.eval_on_selector_all(".md-search-result__item a", "links => links.map(a => a.href)")
    page.close()
    assert any("concepts/training.html" in link for link in links), links
    assert any("reference/registry/optimizer_hooks.html" in link for link in links), links


@pytest.mark.parametrize("uri", ["getting_started.html"])
def test_pictures_show(base_url, browser_context, uri):
    page = browser_context.new_page()
    page.goto(base_url + uri, wait_until="load")
    sizes = page.eval_on_selector_all(
        "article img", "imgs => imgs.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])")
    page.close()
    assert len(sizes) >= 2, sizes
    assert [s for s in sizes if not (s[1] and s[2] > 100 and s[3] > 100)] == []
