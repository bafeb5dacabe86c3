"""tqdm bars of calls on Ray: drawn by the driver in the calling cell, as on the embedded backend.

    a Ray worker                                     the driver
    ────────────                                     ──────────
    tqdm in a call (_worker/bars.py's hook) ─▶ a "b" item in the next trace-event batch
      ("<RS>jt:" on Ray's log stream, host.py)  ─▶ LogRouter._events ─▶ RayBars.item
                                                     ─▶ BarViews (local/bars.py): one view per
                                                        bar, in the cell of the call's route
    the call ends: the bars it left open send their last state, closed (host._end)

The worker's hook is the embedded backend's (it sends at most ten states a
second per bar and writes nothing itself, so no raw tqdm text reaches stderr);
only the channel differs: the trace events already ride Ray's log stream.
"""
from __future__ import annotations

from ..._worker.bars import Bars
from ..local.bars import BarViews
from .output import current_call

BAR = "b"   # the kind of a bar state among the trace events


class _ToTrace:
    """A worker's Bars send here: each state becomes a trace-event item."""

    def __init__(self, events, clock):
        self.events = events
        self.clock = clock

    def send(self, m) -> None:
        call = m.call_id   # the call's CallOutput (output.py)
        self.events.add((call.route, BAR, self.clock(), call.call_id, m.bar_id, m.state,
                         m.closed, call.name))


def relay_bars(events, clock) -> Bars:
    """In a Ray worker, once: tqdm's bars send their states with the trace events."""
    bars = Bars(_ToTrace(events, clock), current_call.get)
    bars.install()
    return bars


class RayBars:
    """The driver's side: bar states from Ray's log stream drawn where the call's output goes."""

    def __init__(self, backend):
        self.backend = backend
        self.views = BarViews(backend)

    def item(self, item, pid) -> None:
        route, _, _, call_id, bar_id, state, closed, name = item

        def where():
            record = self.backend.record_of(route)
            if record is None:
                return None   # its call has ended: the bar is closed
            label = name or record.label.split(".")[0]
            return record.context, f"({label} pid={pid})"
        self.views.show((pid, call_id), bar_id, state, closed, where)
