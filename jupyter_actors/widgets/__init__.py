"""Widgets that show how calls interleave: a live ``Timeline`` and a ``ConcurrencyPlayground``.

    from jupyter_actors.widgets import Timeline, ConcurrencyPlayground
    Timeline()                      # every call from now on (and those still remembered)
    Timeline(actor)                 # one actor
    ConcurrencyPlayground()         # try max_concurrency, async vs threaded, blocking code

They need ipywidgets and anywidget, which load only when a widget is used:
worker processes import this package (the playground's actor classes live
here) and must stay light.
"""
from __future__ import annotations

__all__ = ["ConcurrencyPlayground", "Timeline"]


def __getattr__(name: str):
    if name == "Timeline":
        from ._timeline import Timeline
        return Timeline
    if name == "ConcurrencyPlayground":
        from ._playground import ConcurrencyPlayground
        return ConcurrencyPlayground
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
