"""Registered callbacks: small observers of a training run (logging, reports).

A callback implements any of these methods; the trainer calls those it has:

* ``on_log(update, losses)``: after each logged update, with the rank-averaged losses;
* ``on_eval(update, results)``: after each evaluation, with ``<dataset>/<metric>`` values;
* ``on_train_end(update)``: once, after the last update.
"""
from __future__ import annotations

from typing import Any

EVENTS = ("on_log", "on_eval", "on_train_end")


def notify(callbacks: list[Any], event: str, *args: Any) -> None:
    """Call ``event`` on every callback that implements it."""
    assert event in EVENTS, event
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is not None:
            method(*args)
