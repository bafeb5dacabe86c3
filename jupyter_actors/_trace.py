"""Timing of every call, kept by the driver for timelines.

    caller thread        I/O thread                          readers
    ─────────────        ──────────                          ───────
    record_submitted ─┐  record_started ─┐                   tracing.timeline(): snapshot()
                      ├─ record_finished ┴─▶ in flight ─▶ rows  widgets: a listener that only
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

Tracing is always on, so a call pays only for what a timeline needs later: a
set add when it is submitted and, when it ends, its plain fields added to a
flat list (a run of results that ended together is recorded in one step, out
of flight with two C calls for the whole run). The trace holds no record after its
call ended, so records die with their refs, as they would without tracing;
``snapshot`` rebuilds the rich form (``FinishedCall``) when someone reads.
Listeners are called only while someone (a live widget) listens.
"""
from __future__ import annotations

import collections
import logging
import operator
import threading
import time

from ._trace_chunks import ROW_FIELDS, WIDTH, Chunk

_LOGGER = logging.getLogger(__name__)

# A fixed origin for showing times to people (ms since the module was loaded).
EPOCH = time.monotonic()


class Tracer:
    """Keeps in-flight and finished calls; tells listeners as calls are submitted, start, end.

    A finished call's row (the values of ``ROW_FIELDS``) goes end to end into
    one flat list, the open chunk. Every ``chunk`` calls the rows in it are
    packed into a ``Chunk`` of columns and cut from its front, in place: a row
    another thread adds meanwhile lands behind them and stays (a row is added
    whole, by one C call). A full trace is a few objects per chunk, which cost
    garbage collections nothing.
    """

    def __init__(self, capacity: int = 200_000):
        self._set_capacity(capacity)
        self._in_flight: set = set()      # records submitted and not finished yet
        # Replaced, never mutated in place, so the hot paths iterate without a lock.
        self.listeners: tuple = ()
        self._lock = threading.Lock()     # guards listeners and the chunks
        self._rows: list = []             # the open chunk: rows end to end (never replaced)
        self._packed: collections.deque = collections.deque()   # Chunks, oldest first
        self._kept = 0                    # calls in _packed
        # call_id -> row: calls whose record changed after they ended (a cancelled
        # call, when its worker reports how it ended; a Ray call whose worker's
        # times came after Ray's reply). Readers take these over the rows.
        self._later: dict = {}
        self._later_limit = self._chunk   # prune _later when it grows past this
        self._bind_hooks()

    # -- called by the runtime -------------------------------------------------
    # record_submitted(record), record_finished(record) and record_run_finished(records)
    # (the calls of one run of results, ended together, after their refs were set) are
    # bound by _bind_hooks: while nobody listens, the set's own add (one C call),
    # _finished and _run_finished; otherwise the same and a word to every listener.

    def _tell(self, event: str, record) -> None:
        for listener in self.listeners:
            try:
                listener(event, record)
            except Exception:  # a listener must never stop or fail the call it hears of
                _LOGGER.exception("a trace listener failed on %r of %r", event, record)

    def _submitted_and_tell(self, record) -> None:
        self._in_flight.add(record)
        self._tell("submit", record)

    def record_started(self, record) -> None:
        if self.listeners:
            self._tell("start", record)

    def _finished(self, record) -> None:
        in_flight = self._in_flight
        if record in in_flight:
            rows = self._rows
            # The row first, then out of flight: a snapshot meanwhile finds it in one.
            # (Attributes read by the interpreter: the specialised slot reads cost a
            # third of operator.attrgetter's generic ones; the tuple is freed at once.)
            rows += (record.call_id, record.kind, record.label, record.actor_id, record.status,
                     record.submitted, record.started, record.finished, record.slot,
                     record.pid, record.group, record.owner, record.error)
            in_flight.discard(record)
            if len(rows) >= self._seal_at:
                self._seal()
        elif record.status in _ENDED:
            # Finished once already: a cancelled call finishes when cancel() fails its
            # refs, and again when its worker reports how it ended (with the worker's
            # times); the newer fields win when read.
            self._later[record.call_id] = _row_of(record)

    def _finished_and_tell(self, record) -> None:
        self._finished(record)
        self._tell("finish", record)

    def _run_finished(self, records: list, numbers=None) -> None:
        """``record_finished`` for a run of calls that ended together, in one step.

        ``numbers``: the run's call ids, started and finished times and slots, four
        columns (arrays of machine numbers) in the order of ``records``, when the
        run's message brought them so. A long run of one method's calls (the usual
        pipelined run) becomes a chunk at once, without a row per call, and keeps
        those columns as they are."""
        in_flight = self._in_flight
        if not in_flight.issuperset(records):  # (some finished before: one by one)
            for record in records:
                self._finished(record)
            return
        rows = self._rows
        if len(records) < RUN_CHUNK or not self._run_chunk(records, numbers):
            for record in records:
                rows += (record.call_id, record.kind, record.label, record.actor_id,
                         record.status, record.submitted, record.started, record.finished,
                         record.slot, record.pid, record.group, record.owner, record.error)
        in_flight.difference_update(records)
        if len(rows) >= self._seal_at:
            self._seal()

    def _run_chunk(self, records: list, numbers) -> bool:
        """Keep a run of calls as one chunk of its own; False if they differ in more than
        their ids, times and slots (or the lock is busy): then as rows."""
        chunk = Chunk.of_run(records, numbers)
        if chunk is None or not self._lock.acquire(False):  # (never wait: see _seal)
            return False
        try:
            rows = self._rows
            end = len(rows)
            if end:  # older calls first
                self._seal_rows(rows, end)
            self._packed.append(chunk)
            self._kept += chunk.total
            self._forget(max(self.capacity - self._chunk, 0))
        finally:
            self._lock.release()
        return True

    def _run_finished_and_tell(self, records: list, numbers=None) -> None:
        for record in records:
            self._finished_and_tell(record)

    def _seal(self, wait: bool = False) -> None:
        """Pack the open chunk's rows and forget the oldest calls beyond ``capacity``."""
        # From a call's end never wait: the lock's holder may be this very thread (a
        # finalizer that ends a call, run by a garbage collection inside the lock). The
        # open chunk then grows a little, and a later end packs it.
        if not self._lock.acquire(wait):
            return
        try:
            rows = self._rows
            end = len(rows)  # whole rows: each is added by one C call
            if end < self._seal_at and not wait:
                return  # another thread packed them
            if end:
                self._seal_rows(rows, end)
            self._forget(max(self.capacity - self._chunk, 0))  # room for the open chunk
        finally:
            self._lock.release()

    def _seal_rows(self, rows: list, end: int) -> None:
        """Pack ``rows[:end]`` into a chunk and cut them off (lock held)."""
        try:
            self._packed.append(Chunk(rows, end))
            self._kept += end // WIDTH
        except Exception:  # never let the trace stop a call: lose these rows instead
            _LOGGER.exception("the trace could not keep %d calls", end // WIDTH)
        del rows[:end]

    def _forget(self, keep: int) -> None:
        """Forget the oldest calls until ``keep`` are left in the sealed chunks (lock held)."""
        packed = self._packed
        later = self._later
        while self._kept > keep and packed:
            chunk = packed[0]
            drop = min(self._kept - keep, chunk.total - chunk.first)
            if later:
                for call_id in chunk.call_ids(chunk.first)[:drop]:
                    later.pop(call_id, None)
            if drop == chunk.total - chunk.first:
                packed.popleft()
            else:
                chunk.first += drop
            self._kept -= drop
        if len(later) > self._later_limit:
            # Let go of calls no longer in the trace (or never in it).
            known = set()
            for chunk in packed:
                known.update(chunk.call_ids(chunk.first))
            known.update(self._rows[::WIDTH])
            self._later = {k: v for k, v in later.items() if k in known}
            self._later_limit = max(self._chunk, 2 * len(self._later))

    # -- for readers -------------------------------------------------------------
    @property
    def active(self) -> dict:
        """call_id -> record of every call submitted and not finished yet (a new dict)."""
        # A call of a run of results is finished (its status says so, its refs are set)
        # a moment before the run is recorded: it is not active any more.
        return {r.call_id: r for r in self._in_flight.copy() if r.status not in _ENDED}

    def add_listener(self, listener) -> None:
        """``listener(event, record)``, called from callers' threads and the I/O thread: keep it tiny."""
        with self._lock:
            self.listeners = self.listeners + (listener,)
            self._bind_hooks()

    def remove_listener(self, listener) -> None:
        with self._lock:
            # ==, not "is": a bound method is a new object each time it is looked up.
            self.listeners = tuple(x for x in self.listeners if x != listener)
            self._bind_hooks()

    def _bind_hooks(self) -> None:
        if self.listeners:
            self.record_submitted = self._submitted_and_tell
            self.record_finished = self._finished_and_tell
            self.record_run_finished = self._run_finished_and_tell
        else:
            self.record_submitted = self._in_flight.add
            self.record_finished = self._finished
            self.record_run_finished = self._run_finished

    def snapshot(self) -> list:
        """Every call still known, finished ones first, oldest first.

        Finished calls come back as ``FinishedCall``s, built here from their rows:
        the rich form costs the reader, not the calls. Copies of lists, sets and
        dicts are single C calls, so this is safe while other threads record.
        """
        with self._lock:
            # In flight first: a call ending meanwhile has its row in the copies below.
            in_flight = self._in_flight.copy()
            chunks = [(chunk, chunk.first) for chunk in self._packed]
            rows = self._rows.copy()
            later = self._later.copy()
        chunks.append((Chunk(rows, len(rows)), 0))
        out = []
        for chunk, first in chunks:
            out += chunk.calls(later, first)
        if in_flight:
            # A call may sit in both for an instant (its row added, not yet out of flight).
            ids = {r.call_id for r in in_flight}
            seen = set()
            for chunk, first in chunks:
                seen.update(ids.intersection(chunk.call_ids(first)))
            out += sorted((r for r in in_flight if r.call_id not in seen),
                          key=lambda r: r.submitted)
        return out

    def resize(self, capacity: int) -> None:
        """Remember at most ``capacity`` finished calls from now on."""
        self._set_capacity(capacity)
        self._seal(wait=True)

    def _set_capacity(self, capacity: int) -> None:
        self.capacity = capacity                          # finished calls remembered
        self._chunk = max(1, min(CHUNK, capacity // 4))   # calls per chunk
        self._seal_at = self._chunk * WIDTH               # ... as items of the open list

    def clear(self) -> None:
        """Forget finished calls (in-flight ones stay: they will finish)."""
        with self._lock:
            del self._rows[:]
            self._packed.clear()
            self._kept = 0
            self._later.clear()
            self._later_limit = self._chunk


# Calls per chunk: the oldest calls are forgotten a chunk at a time.
CHUNK = 1024
# A run of results at least this long is kept as a chunk of its own.
RUN_CHUNK = 64
# The newest finished calls a backend keeps findable by key, for its workers' late
# reports (Ray's times may come after a call ended).
RECENT = 4096

_row_of = operator.attrgetter(*ROW_FIELDS)  # one C call: the tuple of them
_ENDED = frozenset(("finished", "failed", "cancelled"))


tracer = Tracer()
