"""``ActorsView``: the session's actors as a live table, with cancel and kill buttons (an anywidget).

    Python (this module)                          browser (actors_view.js)
    ────────────────────                          ────────────────────────
    owner thread (_pump), ≤ 10 Hz: after calls    one row per actor id; only cells
      ran, or every second (deaths, restarts),    whose text changed are touched
      describe_actors() → _rows trait   ───────▶
    frontend messages: cancel / kill    ◀───────  buttons ("kill" asks first:
      (the kernel's shell thread)                 a second click confirms)

Without a live frontend the same table shows as HTML (and text): the
snapshot is refreshed after each cell, like the Timeline's.
"""
from __future__ import annotations

import os
import pathlib
import time

import anywidget
import traitlets

from .._api import session
from .._jupyter.display import ActorTable, concurrency_cell
from .._trace import tracer
from . import _display
from ._pump import pump
from ._static import MARK_CLOSE, MARK_OPEN

_HERE = pathlib.Path(__file__).parent
POLL = 1.0  # seconds between two looks when no call ran (an actor may die or restart idle)


class ActorsView(anywidget.AnyWidget):
    """One row per actor: class, name, pid, kind, concurrency, running / queued / done /
    failed, restarts, alive or dead with the cause; buttons cancel an actor's queued calls
    or kill it. ``live=False`` gives a snapshot that does not update.
    """

    _esm = (_HERE / "actors_view.js").read_text(encoding="utf-8")
    _css = (_HERE / "actors_view.css").read_text(encoding="utf-8")
    _rows = traitlets.List().tag(sync=True)

    def __init__(self, live: bool = True, **kwargs):
        super().__init__(**kwargs)
        self._described: list = []
        self._version = 0
        self._display_ids: list = []
        self._shown_version = -1
        self._changed = False
        self._last_look = 0.0
        self._live = False
        self._refresh()
        self.on_msg(self._on_frontend_message)
        if live:
            self._live = True
            pump.add(self)

    # -- public ------------------------------------------------------------------------
    def table(self) -> ActorTable:
        """The table as shown now (text and HTML)."""
        self._flush()
        return ActorTable(self._described, restarts=True)

    def cancel_queued(self, actor) -> int:
        """Cancel the calls of ``actor`` (a handle or an actor id) that have not started."""
        actor_id = getattr(actor, "_actor_id", actor)
        backend = session.current_backend()
        if backend is None:
            return 0
        count = 0
        for record in list(tracer.active.copy().values()):
            if (record.actor_id == actor_id and record.kind == "call"
                    and record.status == "pending"):
                backend.cancel_call(record, False)
                count += 1
        self._changed = True
        return count

    def kill(self, actor, wait: float = 5.0) -> None:
        """End the actor's process, as ``kill(handle)`` does, and wait (at most ``wait``
        seconds) until its end is known, so the table shows the final cause."""
        actor_id = getattr(actor, "_actor_id", actor)
        backend = session.current_backend()
        if backend is None:
            return
        token = backend.adopt_actor(actor_id, None)
        pid = backend.describe_actor(token)["pid"]
        backend.kill(token)
        first = backend.describe_actor(token)["death"]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if backend.describe_actor(token)["death"] != first or not _exists(pid):
                break
            time.sleep(0.01)
        self._changed = True
        if self._live:
            pump.call(self._refresh)

    def stop(self) -> None:
        """Stop updating; what is shown stays."""
        if self._live:
            self._flush()
            pump.remove(self)
            self._live = False

    def close(self) -> None:
        if self._live:
            pump.remove(self)
            self._live = False
        super().close()

    # -- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        return "ActorsView(all actors)"  # stable across runs, for nbval

    def _repr_mimebundle_(self, **kwargs):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        # The snapshot is brought up to date after each cell (as the Timeline's), so
        # the stored notebook holds the last state; text/plain stays the same, and
        # the HTML is marked as a snapshot (nbval compares ``view.table()`` instead).
        data["text/plain"] = repr(self)
        data["text/html"] = f"{MARK_OPEN}{self.table()._repr_html_()}{MARK_CLOSE}"
        return data, metadata

    def _ipython_display_(self):
        _display.show(self)

    def _snapshot_version(self) -> int:
        return self._version

    def _flush(self, timeout: float = 10.0) -> None:
        if self._live:
            pump.flush(timeout)

    # -- owner thread ------------------------------------------------------------------
    def _ingest(self, records) -> None:
        self._changed = True

    def _publish(self, now: float, force: bool) -> None:
        if self._changed or force or now - self._last_look >= POLL:
            self._refresh(now)

    def _refresh(self, now: float | None = None) -> None:
        self._changed = False
        self._last_look = time.monotonic() if now is None else now
        backend = session.current_backend()
        described = backend.describe_actors() if backend is not None else []
        rows = [_row(d) for d in described]
        if rows != self._rows:
            self._described = described
            self._rows = rows
            self._version += 1

    def _on_frontend_message(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict):
            return
        kind, actor_id = content.get("kind"), content.get("actor_id")
        try:
            if kind == "cancel":
                self.cancel_queued(actor_id)
            elif kind == "kill":
                self.kill(actor_id)
        except ValueError:
            pass  # the actor is gone already: the next refresh shows it
        if self._live:
            pump.call(self._refresh)


def _exists(pid) -> bool:
    """Whether the process is there still (False once the driver has reaped it)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _row(d: dict) -> list:
    return [d["actor_id"], d["class_name"], d["name"] or "", d["pid"] or "", d["kind"],
            concurrency_cell(d), d["running"], d["queued"], d["done"], d["failed"],
            d.get("restarts", 0), bool(d["alive"]), d["death"] or "", bool(d.get("restarting"))]
