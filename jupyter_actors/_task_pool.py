"""The pool of worker processes that run remote functions, one call at a time each."""
from __future__ import annotations

import collections
import threading

from . import _errors
from ._connection import Connection
from ._records import CANCELLED, PENDING, CallRecord, fail_record, send_record
from ._trace import tracer
from .exceptions import WorkerCrashedError

class TaskPool:
    """Workers that run remote functions, one call at a time each."""

    def __init__(self, runtime, size: int):
        self.runtime = runtime
        self.size = size
        self.lock = threading.RLock()
        self.queue: collections.deque = collections.deque()
        self.workers: list = []
        self.idle: list = []
        self.starting = 0
        self.functions: dict = {}   # func_id -> payload

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
                if len(self.workers) + self.starting < self.size:
                    self.starting += 1
                    self.runtime.acquire_worker(self._attach)
                return
            record = queue.popleft()
            conn = self.idle.pop()
            if record.target not in conn.defined:
                conn.defined.add(record.target)
                conn.send(("define", record.target, self.functions[record.target]))
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
            conn.send(("tasks", self.runtime.worker_options()))
            self.workers.append(conn)
            self.idle.append(conn)
            self._pump()

    def call_done(self, conn: Connection) -> None:
        with self.lock:
            if not conn.exited and not conn.pending:
                self.idle.append(conn)
            self._pump()

    def on_exit(self, conn: Connection) -> None:
        with self.lock:
            if conn in self.workers:
                self.workers.remove(conn)
            if conn in self.idle:
                self.idle.remove(conn)
            lost = list(conn.pending.values())
            conn.pending.clear()
            retry = [r for r in lost if r.retries_left > 0 and r.status != CANCELLED
                     and not self.runtime.stopping]
            for record in reversed(retry):
                record.retries_left -= 1
                record.status = PENDING
                record.started = None
                self.queue.appendleft(record)
            how = _errors.describe_exit(conn.returncode)
            for record in lost:
                if record not in retry:
                    fail_record(record, WorkerCrashedError(
                        f"The worker running {record.label} (pid={conn.pid}) {how} "
                        f"before the call returned."))
            if not self.runtime.stopping:
                self._pump()
