"""Widgets: a live ``Timeline`` of calls, a ``ConcurrencyPlayground``, a live ``ActorsView``.

    from jupyter_actors.widgets import ActorsView, Timeline, ConcurrencyPlayground
    Timeline()                      # every call from now on (and those still remembered)
    Timeline(actor)                 # one actor
    ConcurrencyPlayground()         # try max_concurrency, async vs threaded, blocking code
    ActorsView()                    # every actor, its calls and state; cancel and kill buttons

They need ipywidgets and anywidget, which load only when a widget is used:
worker processes import this package (the playground's actor classes live
here) and must stay light.
"""
from __future__ import annotations

__all__ = ["ActorsView", "ConcurrencyPlayground", "Timeline"]


def __getattr__(name: str):
    if name == "Timeline":
        from ._timeline import Timeline
        return Timeline
    if name == "ActorsView":
        from ._actors_view import ActorsView
        return ActorsView
    if name == "ConcurrencyPlayground":
        from ._playground import ConcurrencyPlayground
        return ConcurrencyPlayground
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
