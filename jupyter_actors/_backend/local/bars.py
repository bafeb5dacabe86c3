"""Progress bars of worker calls, drawn where each call's output goes.

    I/O thread
    ──────────
    BarState (first of a bar)  → router.open_bar(the call's context, "(Class pid=N)")
    BarState                   → view.update(state): the same bar, redrawn in place
    BarState closed, the call  → view.update(last state, closed=True), forgotten
      ends, or its worker exits

The worker sends at most ten states a second per bar (``_worker/bars.py``).
A state for a call that already ended draws nothing; a view that fails to
draw (its cell is gone) is dropped, and the call goes on.
"""
from __future__ import annotations

from ..._wire.messages import BarState
from .prompts import _prefix


class BarViews:
    """The bar views open on the driver, by worker and call, and bar (``runtime`` is either
    backend's driver side: it has the output ``router``; ray/bars.py draws with it too)."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.views: dict = {}      # (worker, call_id) -> {bar_id: [view, last state]}

    def table(self) -> dict:
        return {BarState: self.state}

    def state(self, conn, m: BarState) -> None:
        def where():
            record = conn.pending.get(m.call_id)
            return None if record is None else (record.context, _prefix(conn, record))
        self.show((conn, m.call_id), m.bar_id, m.state, m.closed, where)

    def show(self, key, bar_id, state: dict, closed: bool, where) -> None:
        """Draw one state of bar ``bar_id`` of the call ``key``; its first state opens a
        view where ``where()`` says: (the call's context, prefix), None once it ended."""
        bars = self.views.get(key)
        entry = bars.get(bar_id) if bars else None
        if entry is None:
            place = where()
            if place is None:
                return  # the call has ended: its bars are closed
            try:
                view = self.runtime.router.open_bar(*place)
            except Exception:
                view = None
            if view is None:
                return
            entry = self.views.setdefault(key, {})[bar_id] = [view, state]
        entry[1] = state
        self._draw(entry, state, closed)
        if closed:
            self._forget(key, bar_id)

    def call_ended(self, conn, call_id) -> None:
        for entry in (self.views.pop((conn, call_id), None) or {}).values():
            self._draw(entry, entry[1], True)

    def worker_gone(self, conn) -> None:
        for key in [k for k in self.views if k[0] is conn]:
            self.call_ended(*key)

    def _forget(self, key, bar_id) -> None:
        bars = self.views.get(key)
        if bars is not None:
            bars.pop(bar_id, None)
            if not bars:
                del self.views[key]

    @staticmethod
    def _draw(entry, state: dict, closed: bool) -> None:
        view = entry[0]
        if view is None:
            return
        try:
            view.update(state, closed)
        except Exception:
            entry[0] = None  # nowhere to draw any more; the call goes on
