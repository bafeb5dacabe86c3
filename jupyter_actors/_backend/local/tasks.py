"""The pool of worker processes that run remote functions, one call at a time each."""
from __future__ import annotations

import collections
import threading

from ..._trace import tracer
from ..._wire.messages import BecomeTaskWorker, DefineFunction, ExitWhenDone
from ...exceptions import WorkerCrashedError
from .connection import Connection
from .records import CANCELLED, PENDING, CallRecord, fail_record, send_record
from .spawner import describe_exit, worker_options


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
        self.workers: list = []
        self.idle: list = []
        self.starting = 0
        # Workers waiting in get() for other tasks: they do not count against
        # the pool's size (as Ray lets a blocked task's CPU go), else tasks that
        # wait for tasks would use up the pool and wait for ever.
        self.blocked: set = set()
        self.functions: dict = {}   # func_id -> payload of the function

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

    def _enqueue(self, record: CallRecord) -> None:
        error = record.failed_dep()
        if error is not None:
            fail_record(record, error)
            return
        with self.lock:
            self.queue.append(record)
            self._pump()

    def _pump(self) -> None:
        queue = self.queue
        while queue:
            if queue[0].status == CANCELLED:
                queue.popleft()
                continue
            if not self.idle:
                if len(self.workers) - len(self.blocked) + self.starting < self.size:
                    self.starting += 1
                    self.runtime.spawner.acquire(self._attach)
                return
            record = queue.popleft()
            conn = self.idle.pop()
            if record.target not in conn.defined:
                conn.defined.add(record.target)
                conn.send(DefineFunction(record.target, self.functions[record.target]))
            send_record(conn, record)

    def _attach(self, conn: Connection | None, error: BaseException | None = None) -> None:
        with self.lock:
            self.starting -= 1
            if conn is None:
                for record in list(self.queue):
                    fail_record(record, WorkerCrashedError(f"could not start a worker: {error}"))
                self.queue.clear()
                return
            conn.owner = self
            conn.send(BecomeTaskWorker(worker_options()))
            self.workers.append(conn)
            self.idle.append(conn)
            self._pump()

    def call_done(self, conn: Connection, record: CallRecord) -> None:
        with self.lock:
            limit = record.max_calls
            if limit:
                runs = conn.task_runs[record.target] = conn.task_runs.get(record.target, 0) + 1
                if runs >= limit and conn in self.workers:
                    # max_calls: this worker leaves (after the call it just ran);
                    # a fresh one takes its place.
                    self.workers.remove(conn)
                    conn.send(ExitWhenDone())
            if not conn.exited and not conn.pending and conn in self.workers:
                if len(self.workers) - len(self.blocked) > self.size and not self.queue:
                    # Started while others were blocked, and now one too many: leave.
                    self.workers.remove(conn)
                    conn.send(ExitWhenDone())
                else:
                    self.idle.append(conn)
            self._pump()

    def worker_blocked(self, conn: Connection, blocked: bool) -> None:
        with self.lock:
            if blocked:
                self.blocked.add(conn)
            else:
                self.blocked.discard(conn)
            self._pump()

    def end_with_runtime(self) -> None:
        """shutdown(): fail the calls no worker has taken yet."""
        with self.lock:
            for record in list(self.queue):
                fail_record(record, WorkerCrashedError(
                    f"{record.label} did not run: the runtime was shut down "
                    f"(jupyter_actors.shutdown())."))
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
            retry = [r for r in lost if r.retries_left > 0 and r.status != CANCELLED
                     and not self.runtime.stopping]
            for record in reversed(retry):
                record.retries_left -= 1
                record.status = PENDING
                record.started = None
                self.queue.appendleft(record)
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
