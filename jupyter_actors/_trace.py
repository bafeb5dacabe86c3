"""Timing of every call, kept by the driver for timelines.

    caller thread        I/O thread                          readers
    ─────────────        ──────────                          ───────
    record_submitted ─┐  record_started ─┐                   tracing.timeline(): snapshot()
                      ├─ record_finished ┴─▶ active ─▶ finished  widgets: a listener that only
                      │                                          queues records for its own
                      └──── listeners("submit"|"start"|"finish", record) ─▶ owner thread

Times are ``time.monotonic()`` values. The driver stamps ``submitted``; the
workers stamp ``started`` and ``finished`` with their own ``time.monotonic()``,
which on Linux and macOS reads the same system-wide clock (CLOCK_MONOTONIC /
mach_absolute_time) as the driver's, so the values line up without any offset
arithmetic.

Any backend feeds the tracer with its call records; readers (``tracing``,
the widgets, ``%actors``, interrupts) rely on these fields only:

    call_id, kind ("call" | "task" | "init"), label ("Class.method" or the
    function's name), actor_id (None for tasks), status ("pending" |
    "running" | "finished" | "failed" | "cancelled"), submitted, started,
    finished, slot, pid, error, group (the concurrency group of an actor
    call; None for the actor's default group and for tasks), context (the
    output-router context of the caller, None once finished), and owner: what
    ran it, with class_name (None for the task pool), name, is_async,
    max_concurrency, concurrency_groups (``{name: size}`` or None) and pid of
    an actor, or size of the task pool.

Tracing is always on, so its cost per call is a dict insert, a dict pop and a
deque append; listeners are called only while someone (a live widget) listens.
"""
from __future__ import annotations

import collections
import threading
import time

# A fixed origin for showing times to people (ms since the module was loaded).
EPOCH = time.monotonic()


class Tracer:
    """Keeps in-flight and recent finished calls; tells listeners as calls are submitted, start, end."""

    def __init__(self, capacity: int = 200_000):
        self.finished: collections.deque = collections.deque(maxlen=capacity)
        # call_id -> CallRecord submitted and not finished yet (queued or running).
        self.active: dict = {}
        # Replaced, never mutated in place, so the hot paths iterate without a lock.
        self.listeners: tuple = ()
        self._lock = threading.Lock()

    # -- called by the runtime -------------------------------------------------
    def record_submitted(self, record) -> None:
        self.active[record.call_id] = record
        for listener in self.listeners:
            listener("submit", record)

    def record_started(self, record) -> None:
        for listener in self.listeners:
            listener("start", record)

    def record_finished(self, record) -> None:
        # A cancelled call finishes twice: when cancel() fails its refs, and again
        # when its worker reports how it ended (with the worker's own times).
        # The record is the same object, so it is kept once and simply updated.
        if self.active.pop(record.call_id, None) is not None:
            self.finished.append(record)
        for listener in self.listeners:
            listener("finish", record)

    # -- for readers -------------------------------------------------------------
    def add_listener(self, listener) -> None:
        """``listener(event, record)``, called from callers' threads and the I/O thread: keep it tiny."""
        with self._lock:
            self.listeners = self.listeners + (listener,)

    def remove_listener(self, listener) -> None:
        with self._lock:
            # ==, not "is": a bound method is a new object each time it is looked up.
            self.listeners = tuple(x for x in self.listeners if x != listener)

    def snapshot(self) -> list:
        """Every call still known, finished ones first, oldest first.

        ``dict.copy`` and ``deque.copy`` are single C calls, so this is safe
        while other threads record.
        """
        active = self.active.copy()
        done = self.finished.copy()
        # A record may sit in both for an instant (popped and appended by another thread).
        seen = {r.call_id for r in done}
        return list(done) + sorted((r for r in active.values() if r.call_id not in seen),
                                   key=lambda r: r.submitted)

    def clear(self) -> None:
        """Forget finished calls (in-flight ones stay: they will finish)."""
        self.finished.clear()


tracer = Tracer()
