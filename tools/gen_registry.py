"""Write registry.md from the live registry: unimm's built-in parts and every project.

    python tools/gen_registry.py            # rewrite registry.md
    python tools/gen_registry.py --check    # exit 1 if registry.md is stale
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Every project folder is a plugin; list them here so their parts appear in registry.md.
PROJECTS = ["quickstart", "unit", "meter", "vit_bert", "momo"]


def render() -> str:
    sys.path.insert(0, str(REPO))
    from unimm.cli.registry_cmd import render_markdown
    from unimm.plugins import import_builtins, load_user_dirs
    from unimm.registry import REGISTRIES

    import_builtins()
    load_user_dirs([str(REPO / "projects" / name) for name in PROJECTS])
    return render_markdown(REGISTRIES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if registry.md is stale")
    parser.add_argument("--out", type=Path, default=REPO / "registry.md")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale; regenerate it with: python tools/gen_registry.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    from unimm.utils.fileio import atomic_write_text

    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
