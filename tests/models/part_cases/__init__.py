"""Tiny cases of every registered model part, one module per area; ``CASES`` merges them.

A module defines ``CASES: dict[(kind, name), Case]``; list it here to enrol its parts.
"""
from __future__ import annotations

from tests.models.part_cases import core, distill, meter, meter_encoder_decoder, momo, shared, vit_bert
from tests.models.part_cases.common import Case

MODULES = (core, distill, meter, meter_encoder_decoder, momo, shared, vit_bert)
CASES: dict[tuple[str, str], Case] = {}
for _module in MODULES:
    overlap = set(CASES) & set(_module.CASES)
    assert not overlap, f"cases defined twice: {sorted(overlap)}"
    CASES.update(_module.CASES)
