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
    """The bar views open on the driver, by worker connection, call and bar."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.views: dict = {}      # (conn, call_id) -> {bar_id: [view, last state]}

    def table(self) -> dict:
        return {BarState: self.state}

    def state(self, conn, m: BarState) -> None:
        key = (conn, m.call_id)
        bars = self.views.get(key)
        entry = bars.get(m.bar_id) if bars else None
        if entry is None:
            record = conn.pending.get(m.call_id)
            if record is None:
                return  # the call has ended: its bars are closed
            try:
                view = self.runtime.router.open_bar(record.context, _prefix(conn, record))
            except Exception:
                view = None
            if view is None:
                return
            entry = self.views.setdefault(key, {})[m.bar_id] = [view, m.state]
        entry[1] = m.state
        self._draw(entry, m.state, m.closed)
        if m.closed:
            self._forget(key, m.bar_id)

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
