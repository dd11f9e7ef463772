"""Build the documentation site from website/ in strict mode (offline).

    python tools/build_website.py                 # into website/site/ (open website/site/index.html)
    python tools/build_website.py --out DIR       # elsewhere

Needs the docs extra: pip install -c constraints.txt -e ".[docs]". Strict: a broken link, a
page missing from the nav or the nav naming a missing page, an anchor that does not exist and a
docstring that does not render are errors; each is printed with the page or file it is in and
what to change, and the command exits 1.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "website" / "mkdocs.yml"
DEFAULT_OUT = REPO / "website" / "site"
NEEDED = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")

# (what mkdocs or griffe says, how to fix it)
HINTS = [
    (re.compile(r"griffe: (?P<file>\S+?):(?P<line>\d+): (?P<what>.*)"),
     "the docstring at {file} line {line} does not render ({what}); write it in Google style "
     "(Args: one 'name: description' line per argument of the signature; Returns:, Raises:)"),
    (re.compile(r"Doc file '(?P<page>[^']+)' contains a link '(?P<link>[^']+)', but the target '(?P<target>[^']+)' "
                r"is not found"),
     "website/docs/{page} links to {link}, which is no page of the site; fix the link or add the page"),
    (re.compile(r"Doc file '(?P<page>[^']+)' contains a link '(?P<link>[^']+)', but the doc '(?P<doc>[^']+)' "
                r"does not contain an anchor '(?P<anchor>[^']+)'"),
     "{page} links to {link}, but {doc} has no heading with the anchor {anchor}; link to an existing heading"),
    (re.compile(r"A reference to '(?P<page>[^']+)' is included in the 'nav' configuration, which is not found"),
     "website/mkdocs.yml's nav names {page}, which does not exist under website/docs/; add the page or "
     "remove it from the nav"),
    (re.compile(r"The following pages exist in the docs directory, but are not included in the \"nav\""),
     "a page under website/docs/ is not in website/mkdocs.yml's nav (listed below); add it to the nav"),
    (re.compile(r"Doc file '(?P<page>[^']+)' contains an (?:unrecognized|absolute) (?:relative )?link '(?P<link>[^']+)'"),
     "website/docs/{page} has the link {link}, which the site cannot follow; link to a page (a .md file) "
     "relative to this one"),
]


def missing_packages() -> list[str]:
    return [name for name in NEEDED if importlib.util.find_spec(name.split(".")[0]) is None
            or importlib.util.find_spec(name) is None]


def explain(line: str) -> str | None:
    """How to fix the problem a warning or error line reports, or None when it reports none."""
    for pattern, hint in HINTS:
        found = pattern.search(line)
        if found:
            return hint.format(**found.groupdict())
    return None


def build(out: Path) -> tuple[bool, list[str]]:
    """Run a strict build into ``out``; return (success, the problems with their fixes)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--clean",
                           "--config-file", str(CONFIG), "--site-dir", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    problems = []
    for line in text.splitlines():
        if not line.startswith(("WARNING", "ERROR")) and not line.startswith("  - "):
            continue
        if line.startswith("  - "):  # the list under "pages exist ... not in the nav"
            if problems:
                problems.append(f"    {line.strip()}")
            continue
        message = line.split("-", 1)[1].strip() if "-" in line else line
        hint = explain(message)
        problems.append(f"  {message}" + (f"\n    fix: {hint}" if hint else ""))
    if done.returncode != 0 and not problems:
        problems = ["  " + line for line in text.strip().splitlines()[-20:]]
    return done.returncode == 0, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the site is written (default: website/site)")
    args = parser.parse_args()
    missing = missing_packages()
    if missing:
        print(f"build_website: the docs extra is not installed ({', '.join(missing)} missing); install it with:\n"
              f'  pip install -c constraints.txt -e ".[docs]"', file=sys.stderr)
        return 1
    start = time.perf_counter()
    out = args.out.resolve()
    building = out.with_name(f".{out.name}.building")  # the old site stays whole until the new one is
    shutil.rmtree(building, ignore_errors=True)
    ok, problems = build(building)
    seconds = time.perf_counter() - start
    if ok:
        shutil.rmtree(out, ignore_errors=True)
        building.rename(out)
    else:
        shutil.rmtree(building, ignore_errors=True)
    if not ok:
        print(f"build_website: the strict build failed ({len([p for p in problems if not p.startswith('    ')])} "
              "problem(s)):", file=sys.stderr)
        print("\n".join(problems), file=sys.stderr)
        return 1
    shown = args.out.resolve()
    try:
        shown = shown.relative_to(Path.cwd())
    except ValueError:
        pass
    print(f"built the site into {shown}/ in {seconds:.0f}s; open {shown}/index.html or serve it: "
          f"python -m http.server -d {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
