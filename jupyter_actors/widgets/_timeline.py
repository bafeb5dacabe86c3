"""``Timeline``: a live Gantt chart of actor calls and tasks (an anywidget).

    Python (this module)                         browser (timeline.js)
    ────────────────────                         ─────────────────────
    TimelineModel  ◀── owner thread feeds ──     one store per model: bars by call id
      │               records ≤ 10 Hz           views draw it as SVG; only changed
      ├─ delta ─────── custom message ────────▶ bars are touched, and a change of
      │                (changed bars, "now")    scale is one transform per lane
      └─ full  ─────── _state trait ──────────▶ rebuild (first view, after a run,
                       (also the saved state)   after bars were evicted)

All trait changes of a live timeline happen on the owner thread (``_pump``).
"""
from __future__ import annotations

import pathlib
import time

import anywidget
import traitlets

from ..tracing import actor_ids
from . import _display, _static
from ._model import TimelineModel
from ._pump import pump

_HERE = pathlib.Path(__file__).parent


class Timeline(anywidget.AnyWidget):
    """Live Gantt chart: one row per actor slot, one bar per call, coloured by method.

    ``Timeline()`` shows every call (those still remembered, then new ones);
    ``Timeline(actor, ...)`` only those actors. ``since``/``until`` are
    ``time.monotonic()`` bounds, ``last`` seconds before now. With
    ``live=False`` it is a snapshot. Hover a bar for its method, call id and
    duration; the light area above the lanes is each actor's queue depth.
    """

    _esm = (_HERE / "timeline.js").read_text(encoding="utf-8")
    _css = (_HERE / "timeline.css").read_text(encoding="utf-8")
    _state = traitlets.Dict().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, *actors, since: float | None = None, until: float | None = None,
                 last: float | None = None, live: bool = True, max_bars: int = 10_000,
                 title: str = "", history: bool = True, section: bool = True, **kwargs):
        super().__init__(title=title, **kwargs)
        if last is not None:
            since = time.monotonic() - last
        self.model = TimelineModel(max_bars)
        self._owners = actor_ids(list(actors)) if actors else None
        # For the repr: class names of the actors shown (stable across runs).
        self._names = (sorted(a._actor_class._cls.__name__ for a in actors
                              if hasattr(a, "_actor_class")) if actors else None)
        self._live = False
        self._full_version = -1       # model version of the last full state sent
        self._sent_version = -1       # model version of the last state or delta sent
        self._display_ids: list = []
        self._shown_version = -1
        self.on_msg(self._on_frontend_message)
        if section:
            self.model.add_section("", self._owners, since, until)
        if live:
            self._live = True
            pump.add(self)
            if history:
                pump.call(self._load_history, wait=True)
        else:
            if history:
                self._load_history()
            self._state = self.model.full()

    # -- public ------------------------------------------------------------------------
    def add_section(self, title: str, actors=None, since: float | None = None,
                    until: float | None = None) -> int:
        """A new stacked panel for ``actors`` (None: all) with times from its own start."""
        return self.model.add_section(title, actor_ids(actors), since, until)

    def clear(self) -> None:
        """Drop every bar and section."""
        self.model.clear()
        self._full_version = -1

    def stop(self) -> None:
        """Stop following new calls; what is drawn stays."""
        if self._live:
            self._flush()
            pump.remove(self)
            self._live = False

    def close(self) -> None:
        if self._live:
            pump.remove(self)
            self._live = False
        super().close()

    def stats(self) -> list:
        """Per section: calls, wall time, and per actor the calls and max overlap."""
        self._flush()
        return self.model.stats()

    def summary(self) -> str:
        """The text summary: calls, max overlap per actor, wall time."""
        return _static.summary_text(self.stats())

    def to_svg(self) -> str:
        """A standalone SVG of what the widget shows."""
        self._flush()
        now = time.monotonic()
        return _static.svg(self.model.state(now), self.model.stats(now))

    def to_html(self, flush_timeout: float = 10.0) -> str:
        """The text summary and the SVG, as the notebook shows without a live frontend."""
        try:
            self._flush(flush_timeout)
        except TimeoutError:
            pass  # the widget thread is busy: show what it has drawn so far
        now = time.monotonic()
        return _static.html_snapshot(self.model.state(now), self.model.stats(now))

    # -- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        # Stable across runs (no times, pids or counts), so nbval compares it safely.
        what = "all calls" if self._names is None else ", ".join(self._names)
        return f"Timeline({what})"

    def _repr_mimebundle_(self, **kwargs):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = repr(self)
        data["text/html"] = self.to_html(flush_timeout=2.0)
        return data, metadata

    def _ipython_display_(self):
        _display.show(self)

    def _snapshot_version(self) -> int:
        return self.model.version

    def _flush(self, timeout: float = 10.0) -> None:
        if self._live:
            pump.flush(timeout)

    # -- owner thread ------------------------------------------------------------------
    def _load_history(self) -> None:
        from .._trace import tracer
        sections = list(self.model.sections)
        wanted = [r for r in tracer.snapshot() if r.kind != "init"
                  and any(s.wants(r) for s in sections)]
        # Only the newest max_bars can be shown: skip feeding what would be evicted.
        self.model.ingest(wanted[-self.model.max_bars:])
        self._send_full()

    def _ingest(self, records) -> None:
        self.model.ingest(records)

    def _publish(self, now: float, force: bool) -> None:
        busy = self.model.busy()
        if self.model.version != self._sent_version or busy:
            self._sent_version = self.model.version
            message = self.model.delta(now)
            if message["kind"] == "full":
                self._set_full(message)
            elif message["bars"] or "sections" in message or busy:
                self.send(message)
        if not busy and self.model.version != self._full_version:
            # Quiet again: store everything in the model's state, for views opened
            # later and for the widget state saved with the notebook.
            self._send_full(now)

    def _send_full(self, now: float | None = None) -> None:
        self._set_full(self.model.full(now))

    def _set_full(self, state: dict) -> None:
        self._full_version = self.model.version
        self._sent_version = self.model.version
        self._state = state

    def _on_frontend_message(self, _widget, content, _buffers) -> None:
        # A view (re)connected, e.g. after a page reload: it has only the last
        # full state, so send a fresh one.
        if isinstance(content, dict) and content.get("kind") == "hello" and self._live:
            pump.call(self._send_full)
