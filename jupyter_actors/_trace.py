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
deque append, and later turning the record into a compact tuple (see RECENT);
listeners are called only while someone (a live widget) listens.
"""
from __future__ import annotations

import collections
import operator
import threading
import time

# A fixed origin for showing times to people (ms since the module was loaded).
EPOCH = time.monotonic()


class Tracer:
    """Keeps in-flight and recent finished calls; tells listeners as calls are submitted, start, end."""

    def __init__(self, capacity: int = 200_000):
        self._set_capacity(capacity)
        # The newest finished records, oldest first (see RECENT).
        self.finished: collections.deque = collections.deque()
        # call_id -> CallRecord submitted and not finished yet (queued or running).
        self.active: dict = {}
        # Replaced, never mutated in place, so the hot paths iterate without a lock.
        self.listeners: tuple = ()
        self._lock = threading.Lock()
        # Older finished calls, compact: tuples of _COMPACT_FIELDS and an owner key.
        self._old: collections.deque = collections.deque()
        self._owners: dict = {}           # id(owner) -> owner, of compact calls
        self._owners_pruned_at = 64       # prune the owners when there are more than this
        self._errors: dict = {}           # call_id -> error, of compact calls that failed
        self._compacting = threading.Lock()

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
            finished = self.finished
            finished.append(record)
            if len(finished) >= self._compact_at:
                self._compact()
        for listener in self.listeners:
            listener("finish", record)

    def _compact(self, wait: bool = False) -> None:
        """Turn finished records older than the newest RECENT into compact tuples, and
        forget the oldest calls beyond ``capacity``."""
        if not self._compacting.acquire(wait):
            return  # another thread is at it
        try:
            finished, old, owners, errors = self.finished, self._old, self._owners, self._errors
            keep = self._keep
            while len(finished) > keep:
                r = finished.popleft()
                owner = r.owner
                key = id(owner)  # (stable: the table keeps the owner alive)
                owners[key] = owner
                if r.error is not None:
                    errors[r.call_id] = r.error
                old.append(_compact_fields(r) + (key,))
            # Room for the records that come before the next compaction.
            while old and len(old) > self.capacity - self._compact_at:
                errors.pop(old.popleft()[0], None)
            if len(owners) > self._owners_pruned_at:
                # Let go of owners no compact call names any more (rarely: a scan).
                named = {t[-1] for t in old}
                for key in [k for k in owners if k not in named]:
                    del owners[key]
                self._owners_pruned_at = max(64, 2 * len(owners))
        finally:
            self._compacting.release()

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
        with self._compacting:  # the compact and the recent calls as one consistent pair
            old = self._old.copy()
            done = self.finished.copy()
            owners = self._owners.copy()
            errors = self._errors.copy()
        active = self.active.copy()
        # A record may sit in both for an instant (popped and appended by another thread).
        seen = {r.call_id for r in done}
        return ([FinishedCall(t, owners[t[-1]], errors.get(t[0])) for t in old] + list(done)
                + sorted((r for r in active.values() if r.call_id not in seen),
                         key=lambda r: r.submitted))

    def resize(self, capacity: int) -> None:
        """Remember at most ``capacity`` finished calls from now on."""
        self._set_capacity(capacity)
        self._compact(wait=True)

    def _set_capacity(self, capacity: int) -> None:
        self.capacity = capacity          # finished calls remembered, records and compact
        self._keep = min(RECENT, capacity // 4)   # records kept as they are
        self._compact_at = 2 * self._keep         # compact when this many records wait

    def clear(self) -> None:
        """Forget finished calls (in-flight ones stay: they will finish)."""
        with self._compacting:
            self.finished.clear()
            self._old.clear()
            self._owners.clear()
            self._errors.clear()


# The newest finished calls stay as their records (a cancelled call's record is updated
# once more when its worker reports how it ended). Older ones are kept as tuples of plain
# numbers and strings, which the garbage collector does not track: with a long trace of
# records, every full collection walked them all (about 1 us a record), several times
# over each record's life in the trace, which cost pipelined calls microseconds each.
RECENT = 4096

_COMPACT_FIELDS = ("call_id", "kind", "label", "actor_id", "status", "submitted", "started",
                   "finished", "slot", "pid", "group")

_compact_fields = operator.attrgetter(*_COMPACT_FIELDS)  # one C call: the tuple of them


class FinishedCall:
    """An older finished call, as ``snapshot`` gives it: the fields readers use (see the
    module docstring), rebuilt from its compact tuple."""

    __slots__ = _COMPACT_FIELDS + ("owner", "error", "context")

    def __init__(self, values: tuple, owner, error):
        (self.call_id, self.kind, self.label, self.actor_id, self.status, self.submitted,
         self.started, self.finished, self.slot, self.pid, self.group) = values[:-1]
        self.owner = owner
        self.error = error
        self.context = None

    def __repr__(self) -> str:
        return f"<FinishedCall {self.label} {self.status} call_id={self.call_id}>"


tracer = Tracer()
