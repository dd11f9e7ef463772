"""A griffe extension for one habit of unimm's docstrings: arguments that share a meaning are
described on one line, ``class_weight, l1_weight, giou_weight: loss weights (DETR: 1, 5, 2).``

Google style knows one name per entry, so the API reference would show a parameter called
``class_weight, l1_weight, giou_weight`` that the signature lacks (and the strict build would stop
on it). Before the docstring is parsed, such a line becomes one entry per name, each carrying the
shared description. Any other docstring problem still fails the build.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_SECTION = re.compile(r"^(?P<indent>\s*)(Args|Arguments|Parameters|Other Parameters|Attributes):\s*$")
_GROUPED = re.compile(r"^(?P<indent>\s+)(?P<names>\w+(?:\s*,\s*\w+)+)\s*:(?P<rest>.*)$")


def split_grouped(text: str) -> str:
    """``text`` with every grouped entry of an arguments section written once per name."""
    out, section_indent = [], None
    for line in text.splitlines():
        heading = _SECTION.match(line)
        if heading:
            section_indent = len(heading["indent"])
            out.append(line)
            continue
        if section_indent is not None and line.strip() and len(line) - len(line.lstrip()) <= section_indent:
            section_indent = None  # dedented: the section ended
        grouped = _GROUPED.match(line) if section_indent is not None else None
        if grouped and len(grouped["indent"]) > section_indent:
            names = [n.strip() for n in grouped["names"].split(",")]
            out += [f"{grouped['indent']}{name}:{grouped['rest']}" for name in names]
        else:
            out.append(line)
    return "\n".join(out)


class GroupedArguments(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and "," in obj.docstring.value:
            obj.docstring.value = split_grouped(obj.docstring.value)
