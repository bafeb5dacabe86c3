"""The pool of worker processes that run remote functions, one call at a time each.

A busy worker is sent up to ``AHEAD`` calls of a brief function (its last run
took under ``BRIEF``), so that it starts the next one without waiting for the
driver (pipelined tasks); longer calls wait for an idle worker, so they spread
over the pool. Calls sent ahead queue in the worker
in order; a cancel of one is answered by the worker ("cancelled" before it
started), a worker whose task waits in ``get`` gives back the ones it has not
started (``CallsReturned``), and when a worker dies only the call it had
started uses up a retry: the task worker sends each call's "start" before
running it, so the driver knows which one that was.
"""
from __future__ import annotations

import collections
import threading
import time

from ..._trace import tracer
from ..._wire.messages import BecomeTaskWorker, DefineFunction, ExitWhenDone
from ...exceptions import WorkerCrashedError
from .connection import Connection
from .records import CANCELLED, PENDING, CallRecord, fail_record, send_record
from .results import not_started
from .spawner import describe_exit, worker_options

# Calls a worker holds at most: the one it runs and those sent ahead of time.
AHEAD = 32
# A busy worker is topped up to AHEAD once it holds no more than this: calls then
# go out a batch at a time (one write, one wake-up of the worker) instead of one
# per finished call.
REFILL_AT = AHEAD // 2
# A function whose last run took less (seconds) is sent ahead to busy workers.
BRIEF = 0.005


class TaskPool:
    """Workers that run remote functions, one call at a time each."""

    # What the trace reads of an owner (see _trace): the pool is no actor.
    actor_id = None
    class_name = None

    def __init__(self, runtime, size: int):
        self.runtime = runtime
        self.size = size
        self.lock = threading.RLock()
        self.queue: collections.deque = collections.deque()
        # Tasks submitted inside workers run before the driver's queued ones: a
        # task that waits for its subtasks gets them done first (depth first),
        # instead of the pool starting a worker for every queued parent.
        self.nested: collections.deque = collections.deque()
        self.workers: list = []
        self.idle: list = []
        self.starting = 0
        # Workers waiting in get() for other tasks: they do not count against
        # the pool's size (as Ray lets a blocked task's CPU go), else tasks that
        # wait for tasks would use up the pool and wait for ever. What they wait
        # for runs first (``nested``); the driver's own tasks still run at most
        # ``size`` at a time, so a burst of waiting tasks does not start a
        # process for each.
        self.blocked: set = set()
        self.top_running = 0        # the driver's tasks (not nested) sent and not done
        self.functions: dict = {}   # func_id -> payload of the function
        self.brief: dict = {}       # func_id -> whether its last run took under BRIEF

    def define(self, func_id, payload) -> None:
        self.functions[func_id] = payload

    def submit(self, record: CallRecord) -> None:
        tracer.record_submitted(record)
        if record.deps and not record.deps_ready():
            remaining = [len(record.deps)]
            lock = threading.Lock()

            def one_done(_f):
                with lock:
                    remaining[0] -= 1
                    last = remaining[0] == 0
                if last:
                    self._enqueue(record)
            for dep in record.deps:
                dep._future.add_done_callback(one_done)
            return
        self._enqueue(record)

    def run_again(self, record: CallRecord) -> None:
        """A call that failed and has retries left (retry_exceptions) goes first in line."""
        with self.lock:
            record.status, record.started, record.finished = PENDING, None, None
            (self.nested if record.nested else self.queue).appendleft(record)
            self._pump()

    def _enqueue(self, record: CallRecord) -> None:
        error = record.failed_dep()
        if error is not None:
            fail_record(record, error)
            return
        with self.lock:
            (self.nested if record.nested else self.queue).append(record)
            self._pump()

    def _pump(self) -> None:
        filling: dict = {}  # busy workers being topped up in this pass: conn -> may take more
        while True:
            if self.nested:
                queue = self.nested
            elif self.queue and self.top_running < self.size * AHEAD:
                queue = self.queue
            else:
                return
            record = queue[0]
            if record.status == CANCELLED or record.cancel_requested:
                queue.popleft()
                fail_record(record, not_started(record))
                continue
            if self.idle:
                conn = self.idle.pop()
            elif len(self.workers) - len(self.blocked) + self.starting < self.size:
                self.starting += 1
                self.runtime.spawner.acquire(self._attach)
                return
            else:
                conn = self._ahead_target(record, filling)
                if conn is None:
                    return
            queue.popleft()
            if not record.nested:
                self.top_running += 1
            if record.target not in conn.defined:
                conn.defined.add(record.target)
                conn.send(DefineFunction(record.target, self.functions[record.target]))
            send_record(conn, record)

    def _ahead_target(self, record: CallRecord, filling: dict):
        """The busy worker to send ``record`` ahead to (fewest calls held), or None.

        Only calls of brief functions, to a worker that holds only such calls
        and whose current call has not run long: a call never waits behind a
        long one while another worker could take it. Never to a waiting
        worker, nor with max_calls (a worker leaves after that many runs).
        A worker is topped up once it is down to REFILL_AT calls; ``filling``
        keeps, for this pass of ``_pump``, what was found of each worker (its
        calls only change by the brief ones sent to it meanwhile).
        """
        brief = self.brief
        if record.nested or record.max_calls or not brief.get(record.target):
            return None
        now = time.monotonic()
        best = None
        for conn in self.workers:
            held = conn.pending
            if (len(held) >= AHEAD or conn in self.blocked or conn.exited
                    or (best is not None and len(held) >= len(best.pending))):
                continue
            ok = filling.get(conn)
            if ok is None:
                if len(held) > REFILL_AT:
                    continue
                filling[conn] = ok = self._takes_ahead(conn, now)
            if ok:
                best = conn
        return best

    def _takes_ahead(self, conn: Connection, now: float) -> bool:
        """Whether the busy worker ``conn`` holds only brief calls, none of them long."""
        brief = self.brief
        # A copy in one step: the I/O thread takes finished calls out meanwhile.
        calls = tuple(conn.pending.values())
        if any(r.max_calls or not brief.get(r.target) for r in calls):
            return False
        running = calls[0] if calls else None
        # Monotonic clocks are the machine's: the worker's "start" compares.
        return not (running is not None and running.started is not None
                    and now - running.started > BRIEF)

    def calls_returned(self, conn: Connection, call_ids) -> None:
        """A worker whose task waits gave back calls it had not started: run them elsewhere."""
        with self.lock:
            returned = [conn.pending.pop(call_id) for call_id in call_ids
                        if call_id in conn.pending]
            for record in reversed(returned):
                record.conn = None
                record.pid = None
                if not record.nested:
                    self.top_running -= 1
                (self.nested if record.nested else self.queue).appendleft(record)
            self._pump()

    def _attach(self, conn: Connection | None, error: BaseException | None = None) -> None:
        with self.lock:
            self.starting -= 1
            if conn is None:
                for record in list(self.nested) + list(self.queue):
                    fail_record(record, WorkerCrashedError(f"could not start a worker: {error}"))
                self.nested.clear()
                self.queue.clear()
                return
            conn.owner = self
            conn.send(BecomeTaskWorker(worker_options()))
            self.workers.append(conn)
            self.idle.append(conn)
            self._pump()

    def call_done(self, conn: Connection, record: CallRecord) -> None:
        with self.lock:
            if not record.nested:
                self.top_running -= 1
            if record.started is not None and record.finished is not None:
                self.brief[record.target] = record.finished - record.started < BRIEF
            limit = record.max_calls
            if limit:
                runs = conn.task_runs[record.target] = conn.task_runs.get(record.target, 0) + 1
                if runs >= limit and conn in self.workers:
                    # max_calls: this worker leaves (after the call it just ran);
                    # a fresh one takes its place.
                    self.workers.remove(conn)
                    conn.send(ExitWhenDone())
            if not conn.exited and not conn.pending and conn in self.workers:
                # Workers started while others were blocked stay for later tasks:
                # letting them go would start a new process at the next burst.
                self.idle.append(conn)
            self._pump()

    def worker_blocked(self, conn: Connection, blocked: bool, awaited: list) -> None:
        """A worker waits in get() (or goes on); the queued tasks it waits for run first.

        ``conn`` may be an actor's: then only the promotion applies.
        """
        with self.lock:
            if conn in self.workers:
                if blocked:
                    self.blocked.add(conn)
                else:
                    self.blocked.discard(conn)
            for record in awaited:
                if record in self.queue:
                    self.queue.remove(record)
                    record.nested = True
                    self.nested.append(record)
            self._pump()

    def end_with_runtime(self) -> None:
        """shutdown(): fail the calls no worker has taken yet."""
        with self.lock:
            for record in list(self.nested) + list(self.queue):
                fail_record(record, WorkerCrashedError(
                    f"{record.label} did not run: the runtime was shut down "
                    f"(jupyter_actors.shutdown())."))
            self.nested.clear()
            self.queue.clear()

    def on_exit(self, conn: Connection) -> None:
        with self.lock:
            if conn in self.workers:
                self.workers.remove(conn)
            if conn in self.idle:
                self.idle.remove(conn)
            self.blocked.discard(conn)
            lost = list(conn.pending.values())
            conn.pending.clear()
            self.top_running -= sum(1 for r in lost if not r.nested)
            # Calls sent ahead that never started run elsewhere and keep their
            # retries; only the call that was running uses one up.
            unstarted = [r for r in lost if r.started is None and r.status != CANCELLED
                         and not r.cancel_requested and not self.runtime.stopping]
            retry = [r for r in lost if r.started is not None and r.retries_left > 0
                     and r.status != CANCELLED and not self.runtime.stopping]
            for record in reversed(retry + unstarted):
                if record.started is not None:
                    record.retries_left -= 1
                record.status = PENDING
                record.started = None
                record.conn = None
                (self.nested if record.nested else self.queue).appendleft(record)
            retry += unstarted
            how = describe_exit(conn.returncode)
            for record in lost:
                if record in retry:
                    continue
                if self.runtime.stopping:
                    error = WorkerCrashedError(
                        f"{record.label} (pid={conn.pid}) was stopped before it returned: the "
                        f"runtime was shut down (jupyter_actors.shutdown()).")
                else:
                    error = WorkerCrashedError(f"The worker running {record.label} "
                                               f"(pid={conn.pid}) {how} before the call returned.")
                fail_record(record, error)
            if not self.runtime.stopping:
                self._pump()
