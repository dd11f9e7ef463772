"""MkDocs hooks that make the pages kept elsewhere in the repository part of the site.

Generated at build time, never copied by hand:

- ``index.md`` from the top-level ``README.md``;
- ``projects/<name>.md`` from ``projects/<name>/README.md``;
- ``reference/registry.md`` (the overview ``tools/gen_registry.py`` renders) and
  ``reference/registry/<kind>.md`` (every part of a kind: its arguments with types and defaults,
  its sub-parts and its docstring), from the live registry;
- ``reference/api/<package>.md``: one mkdocstrings page per subpackage of ``unimm``.

Links written for the repository (``../../README.md``, ``projects/unit/README.md``,
``unimm/interfaces.py``) are rewritten for the site: a file that has a page links to that page,
a Python module of ``unimm`` links to its API reference, and any other file is shown as its
repository path. A link that resolves to no file at all is an error naming the page and link.
"""
from __future__ import annotations

import inspect
import logging
import posixpath
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.plugins.unimm_pages")  # a warning fails the strict build
WEBSITE = Path(__file__).resolve().parent.parent
REPO = WEBSITE.parent
DOCS = WEBSITE / "docs"
PROJECTS = ["quickstart", "unit", "meter", "momo", "vit_bert"]
# The API reference: one page per part of unimm, in this order (each renders its submodules).
API_PACKAGES = ["registry", "interfaces", "config", "plugins", "session", "cli", "data", "models", "losses",
                "modules", "metrics", "training", "benchmark", "utils"]

# site page (under docs/) -> the repository file it is generated from
_sources: dict[str, Path] = {}

_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")
_IMAGE = re.compile(r"!\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~)")


def on_config(config):
    """Fill the nav's ``Reference`` section with the generated reference pages."""
    for path in (str(REPO), str(REPO / "tools")):
        if path not in sys.path:
            sys.path.insert(0, path)
    from unimm.registry import REGISTRIES

    reference = [{"Registry overview": "reference/registry.md"},
                 {"Registry by kind": [{kind: f"reference/registry/{kind}.md"} for kind in REGISTRIES]},
                 {"API": [{f"unimm.{name}": f"reference/api/{name}.md"} for name in API_PACKAGES]}]
    for item in config["nav"]:
        if isinstance(item, dict) and "Reference" in item:
            item["Reference"] = reference
            return config
    raise PluginError("website/mkdocs.yml: the nav has no 'Reference' section for the generated reference pages")


def on_files(files: Files, config) -> Files:
    """Add the generated pages to the site's files."""
    _sources.clear()
    pages = {"index.md": _read(REPO / "README.md")}
    _sources["index.md"] = REPO / "README.md"
    for name in PROJECTS:
        readme = REPO / "projects" / name / "README.md"
        pages[f"projects/{name}.md"] = _read(readme)
        _sources[f"projects/{name}.md"] = readme
    pages.update(registry_pages())
    pages.update(api_pages())
    for uri, text in pages.items():
        if files.get_file_from_path(uri) is not None:
            raise PluginError(f"website/docs/{uri} exists but the site generates that page; delete the file")
        files.append(File.generated(config, uri, content=text))
    return files


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    """Rewrite the links of a page written for the repository so that they work on the site."""
    uri = page.file.src_uri
    if uri in _sources:
        return rewrite_links(lists_apart(markdown), uri, _sources[uri], files)
    if page.file.generated_by:  # the reference pages: written for the site already
        return markdown
    return rewrite_links(markdown, uri, DOCS / uri, files)


def _read(path: Path) -> str:
    if not path.is_file():
        raise PluginError(f"{path.relative_to(REPO)} is missing: the site builds a page from it")
    return path.read_text(encoding="utf-8")


_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s")


def lists_apart(markdown: str) -> str:
    """A blank line before a list that follows a paragraph line: a README renders such a list as a
    list where it is read (GitHub), and Python-Markdown would run it into the paragraph."""
    out, fenced, previous = [], False, ""
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced and _LIST_ITEM.match(line) and previous.strip() and not _LIST_ITEM.match(previous) \
                and not previous.startswith((" ", "\t", "|", "#")):
            out.append("\n")
        out.append(line)
        previous = line
    return "".join(out)


# ----------------------------------------------------------------------------------------- links


def rewrite_links(markdown: str, page_uri: str, source: Path, files: Files) -> str:
    """Rewrite relative links (outside code blocks) of ``markdown``, a page whose text lives in
    ``source`` and which the site serves as ``page_uri``."""
    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        if not fenced:
            line = _IMAGE.sub(lambda m: _image(m, page_uri, source), line)
            line = _LINK.sub(lambda m: _link(m, page_uri, source, files), line)
        out.append(line)
    return "".join(out)


def _split(target: str) -> tuple[str, str]:
    path, _, anchor = target.partition("#")
    return path, f"#{anchor}" if anchor else ""


def _external(target: str) -> bool:
    return target.startswith(("#", "http://", "https://", "mailto:", "/"))


def _link(match: re.Match, page_uri: str, source: Path, files: Files) -> str:
    text, target = match["text"], match["target"]
    if _external(target):
        return match[0]
    path, anchor = _split(target)
    if source.is_relative_to(DOCS) and files.get_file_from_path(posixpath.normpath(
            posixpath.join(posixpath.dirname(page_uri), path))) is not None:
        return match[0]  # a page of the site, generated ones included
    resolved = (source.parent / path).resolve()
    try:
        repo_path = resolved.relative_to(REPO).as_posix()
    except ValueError:
        log.warning(f"{_where(page_uri, source)}: the link [{text}]({target}) leaves the repository; "
                    "link to a file inside it")
        return match[0]
    if not resolved.exists():
        log.warning(f"{_where(page_uri, source)}: the link [{text}]({target}) names {repo_path}, "
                    "which does not exist; fix the path or remove the link")
        return match[0]
    page = site_page(repo_path, files)
    if page is not None:
        return f"[{text}]({_relative(page, page_uri)}{anchor})"
    module = api_anchor(repo_path)
    if module is not None:
        return f"[{text}]({_relative(module[0], page_uri)}#{module[1]})"
    shown = f"`{repo_path}`"
    return shown if text.strip("`") == repo_path else f"{text} ({shown} in the repository)"


def _image(match: re.Match, page_uri: str, source: Path) -> str:
    target = match["target"]
    if _external(target) or source.is_relative_to(DOCS):
        return match[0]
    log.warning(f"{_where(page_uri, source)}: the picture {target} is outside website/docs; "
                "put it under website/docs/img/ and link it from a page there")
    return match[0]


def site_page(repo_path: str, files: Files) -> str | None:
    """The site page (a path under docs/) that shows the repository file ``repo_path``, if any."""
    if repo_path.startswith("website/docs/") and files.get_file_from_path(repo_path[len("website/docs/"):]):
        return repo_path[len("website/docs/"):]
    for uri, path in _sources.items():
        if path.relative_to(REPO).as_posix() == repo_path or path.parent.relative_to(REPO).as_posix() == repo_path:
            return uri
    if repo_path == "registry.md":
        return "reference/registry.md"
    return None


def api_anchor(repo_path: str) -> tuple[str, str] | None:
    """``(page, anchor)`` of a public ``unimm`` module in the API reference."""
    parts = repo_path.removesuffix(".py").split("/")
    if not repo_path.endswith(".py") or parts[0] != "unimm" or len(parts) < 2:
        return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if any(p.startswith("_") for p in parts) or parts[1] not in API_PACKAGES:
        return None
    return f"reference/api/{parts[1]}.md", ".".join(parts)


def _relative(target_uri: str, page_uri: str) -> str:
    return posixpath.relpath(target_uri, posixpath.dirname(page_uri) or ".")


def _where(page_uri: str, source: Path) -> str:
    return f"page {page_uri} (from {source.relative_to(REPO).as_posix()})"


# -------------------------------------------------------------------------------------- registry


def _load_registry():
    """Load every built-in part and every project, as ``tools/gen_registry.py`` does; return the
    overview it renders (the text of ``registry.md``)."""
    import gen_registry  # tools/ is on sys.path (on_config)

    return gen_registry.render()


def registry_pages() -> dict[str, str]:
    """The registry overview (``registry.md``'s text, names linked to their entries) and one page
    per kind with every part's arguments and docstring."""
    overview = _load_registry()
    from unimm.registry import REGISTRIES

    def linked(match: re.Match) -> str:
        kind, name = match["kind"], match["name"]
        return f"| [`{name}`](registry/{kind}.md#{_anchor(kind, name)}) |"

    lines, kind = [], None
    for line in overview.splitlines():
        if line.startswith("## "):
            kind = line[3:].strip()
        if kind in REGISTRIES and line.startswith("| `"):
            line = re.sub(r"^\| `(?P<name>[^`]+)` \|", lambda m: linked({"kind": kind, "name": m["name"]}), line)
        lines.append(line)
    intro = ("Each kind has its own page with every part's arguments (type, default), sub-parts and "
             "docstring: " + ", ".join(f"[{k}](registry/{k}.md)" for k in REGISTRIES) + ".\n\n")
    body = "\n".join(lines)
    title, _, rest = body.partition("\n")
    pages = {"reference/registry.md": f"{title}\n\n{intro}{rest.lstrip()}\n"}
    for kind, reg in REGISTRIES.items():
        pages[f"reference/registry/{kind}.md"] = kind_page(kind, reg)
    return pages


def _anchor(kind: str, name: str) -> str:
    return f"{kind}-{name}".replace("_", "-").lower()


def kind_page(kind: str, reg) -> str:
    """Every part registered as ``kind``: where it comes from, its arguments and its docstring."""
    from unimm.cli.registry_cmd import origin

    out = [f"# Registry: {kind}", "",
           f"Every part registered as `{kind}`, generated from the live registry when the site is built "
           "(the same as `unimm_registry NAME`). A part from `projects/<name>` is registered when a "
           "config names that folder in `env.user_dir`.", ""]
    if not reg.names():
        return "\n".join(out + ["(none yet)", ""])
    for entry in reg.entries():
        out += [f"## `{entry.name}` {{#{_anchor(kind, entry.name)}}}", "",
                f"From `{origin(entry)}`, module `{entry.module}`.", ""]
        out += part_arguments(reg, entry)
        doc = inspect.getdoc(entry.builder) or "(no docstring)"
        out += ["```text", doc.replace("```", "'''"), "```", ""]
    renamed = reg.renamed()
    if renamed:
        out += ["## Renamed", "", "The old name still builds, with a warning: " + ", ".join(
            f"`{old}` is now `{new}`" for old, new in sorted(renamed.items())) + ".", ""]
    return "\n".join(out)


def part_arguments(reg, entry) -> list[str]:
    """A table of the builder's arguments, as ``unimm_registry NAME`` describes them."""
    from unimm.cli.registry_cmd import type_text
    from unimm.config.validate import signature_of

    params, var_kw, hints = signature_of(entry.builder)
    rows = []
    for name, param in params.items():
        typed = type_text(hints.get(name, param.annotation)) or "—"
        default = "required" if param.default is inspect.Parameter.empty else f"`{param.default!r}`"
        if name in reg.runtime_args:
            role = "given at run time"
            default = "—"
        elif name in entry.parts:
            kind_of = entry.parts[name].kind
            role = f"a `{kind_of if isinstance(kind_of, str) else kind_of.kind}` node"
        else:
            role = "config"
        rows.append(f"| `{name}` | {_cell(typed)} | {_cell(default)} | {role} |")
    if var_kw:
        rows.append("| `**kwargs` | any other keyword | — | config |")
    if not rows:
        return ["No arguments.", ""]
    return ["| argument | type | default | set by |", "|---|---|---|---|", *rows, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------------------- api


def api_pages() -> dict[str, str]:
    pages = {}
    for name in API_PACKAGES:
        module = f"unimm.{name}"
        pages[f"reference/api/{name}.md"] = (
            f"# `{module}`\n\nGenerated from the docstrings when the site is built.\n\n"
            f"::: {module}\n    options:\n      show_submodules: true\n")
    return pages
