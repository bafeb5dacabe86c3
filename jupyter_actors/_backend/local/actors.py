"""One actor as the driver sees it: its worker, its queue of calls, how it ended."""
from __future__ import annotations

import collections
import threading
import time

from ..._trace import tracer
from ..._wire.messages import ExitWhenDone
from ...exceptions import ActorDiedError, PendingCallsLimitExceeded
from .connection import Connection
from .records import (CANCELLED, FAILED, FINISHED, PENDING, RUNNING, CallRecord, fail_record,
                      send_record)
from .spawner import describe_exit, kill_process

class ActorState:
    """One actor: its worker, the calls waiting to be sent, and how it ended."""

    def __init__(self, runtime, actor_id: str, class_name: str, name, is_async: bool,
                 max_concurrency: int, named_key=None, max_pending_calls: int = -1,
                 concurrency_groups: dict | None = None):
        self.runtime = runtime
        self.actor_id = actor_id
        self.class_name = class_name
        self.name = name
        self.named_key = named_key
        self.is_async = is_async
        self.max_concurrency = max_concurrency
        self.concurrency_groups = concurrency_groups   # {name: size}, or None
        self.max_pending_calls = max_pending_calls
        self.lock = threading.RLock()
        self.conn: Connection | None = None
        self.queue: collections.deque = collections.deque()
        self.alive = True
        self.death: ActorDiedError | None = None
        self.death_cause: BaseException | None = None
        self.death_summary = ""           # "KeyError: 'no config'" of a failed constructor
        self.killed = False
        self.releasing = False
        self.exited_on_purpose = False    # the actor called exit_actor()
        self.counts = collections.Counter()
        self.created = time.monotonic()

    @property
    def pid(self):
        return self.conn.pid if self.conn else None

    def check_pending_limit(self) -> None:
        """Raise at the caller when ``max_pending_calls`` calls have not finished yet."""
        limit = self.max_pending_calls
        if limit < 0:
            return
        with self.lock:
            conn = self.conn
            sent = list(conn.pending.values()) if conn is not None else []
            pending = sum(1 for r in self.queue if r is not _EXIT_MARKER and r.kind == "call")
            pending += sum(1 for r in sent if r.kind == "call")
        if pending >= limit:
            raise PendingCallsLimitExceeded(
                f"The actor {self.class_name} already has {pending} pending call(s), its "
                f"max_pending_calls={limit}; wait for some to finish (get/wait) before "
                f"submitting more.")

    def submit(self, record: CallRecord) -> None:
        tracer.record_submitted(record)
        with self.lock:
            if not self.alive:
                fail_record(record, self.death)
                return
            if self.killed:
                fail_record(record, ActorDiedError(
                    f"The actor {self.class_name} (pid={self.pid}) was killed by "
                    f"jupyter_actors.kill()."))
                return
            self.queue.append(record)
            self._pump()

    def attach(self, conn: Connection | None, error: BaseException | None = None) -> None:
        with self.lock:
            if conn is None:
                self._die(ActorDiedError(
                    f"{self.class_name} could not start a worker process: {error}"), [])
                return
            if not self.alive:
                kill_process(conn)
                return
            conn.owner = self
            self.conn = conn
            self._pump()

    def _pump(self) -> None:
        """Send queued calls in submission order while the head is ready (caller holds lock)."""
        queue = self.queue
        conn = self.conn
        while queue and conn is not None:
            record = queue[0]
            if record is _EXIT_MARKER:
                queue.popleft()
                conn.send(ExitWhenDone())
                continue
            if record.status == CANCELLED:
                queue.popleft()
                continue
            if not record.deps_ready():
                if not record.waiting:
                    record.waiting = True
                    for dep in record.deps:
                        dep._future.add_done_callback(self._dep_done)
                return
            queue.popleft()
            error = record.failed_dep()
            if error is not None:
                fail_record(record, error)
                continue
            send_record(conn, record)

    def _dep_done(self, _future) -> None:
        with self.lock:
            if self.alive:
                self._pump()

    def release(self) -> None:
        """The last handle is gone: finish what is queued, then exit."""
        with self.lock:
            if not self.alive or self.releasing:
                return
            self.releasing = True
            # The marker rides the same queue, so "exit" leaves after every call.
            self.queue.append(_EXIT_MARKER)
            self._pump()

    def on_exit(self, conn: Connection) -> None:
        """The worker process ended (I/O thread)."""
        with self.lock:
            lost = list(conn.pending.values()) + [r for r in self.queue if r is not _EXIT_MARKER]
            conn.pending.clear()
            self.queue.clear()
            if not self.alive:
                error = self.death
            else:
                how = ("was killed by jupyter_actors.kill()" if self.killed
                       else describe_exit(conn.returncode))
                if self.runtime.stopping:
                    error = self.runtime.shutdown_error(self, len(lost))
                elif self.death_cause is not None:
                    what = f"{self.class_name}.__init__ raised {self.death_summary}"
                    error = ActorDiedError(f"The actor {self.class_name} (pid={conn.pid}) died: "
                                           f"{what}; {len(lost)} pending call(s) failed.")
                elif self.exited_on_purpose:
                    error = ActorDiedError(
                        f"The actor {self.class_name} (pid={conn.pid}) exited on purpose "
                        f"(exit_actor()); {len(lost)} pending call(s) failed.")
                elif self.releasing and not lost:
                    error = ActorDiedError(f"The actor {self.class_name} (pid={conn.pid}) exited "
                                           f"after its last handle was dropped.")
                else:
                    error = ActorDiedError(
                        f"The actor {self.class_name} (pid={conn.pid}) {how}; "
                        f"{len(lost)} pending call(s) failed.")
                error.__cause__ = self.death_cause
                self._die(error, lost)
                return
        for record in lost:
            fail_record(record, error)

    def _die(self, error: ActorDiedError, lost: list) -> None:
        self.alive = False
        self.death = error
        self.runtime.registry.forget_name(self)
        for record in lost:
            fail_record(record, error)

    def kill(self) -> None:
        with self.lock:
            if not self.alive:
                return
            self.killed = True
            self.runtime.registry.forget_name(self)
            conn = self.conn
            if conn is None:
                lost = [r for r in self.queue if r is not _EXIT_MARKER]
                self.queue.clear()
                self._die(ActorDiedError(
                    f"The actor {self.class_name} was killed by jupyter_actors.kill() before it "
                    f"started; {len(lost)} pending call(s) failed."), lost)
                return
        kill_process(conn)

    def end_with_runtime(self) -> None:
        """shutdown(): fail what never reached the worker (the worker's exit fails the rest)."""
        with self.lock:
            if self.alive:
                lost = [r for r in self.queue if r is not _EXIT_MARKER]
                self.queue.clear()
                self._die(self.runtime.shutdown_error(self, len(lost)), lost)

    def describe(self) -> dict:
        conn = self.conn
        sizes = {None: self.max_concurrency, **(self.concurrency_groups or {})}
        running = dict.fromkeys(sizes, 0)
        queued = dict.fromkeys(sizes, 0)
        if conn is not None:
            for record in list(conn.pending.values()):
                if record.status == RUNNING:
                    running[record.group] += 1
                elif record.status == PENDING:
                    queued[record.group] += 1
        for record in list(self.queue):
            if record is not _EXIT_MARKER:
                queued[record.group] += 1
        groups = [{"name": name, "max_concurrency": size, "running": running[name],
                   "queued": queued[name]} for name, size in sizes.items()]
        running, queued = sum(running.values()), sum(queued.values())
        return {"actor_id": self.actor_id, "class_name": self.class_name, "name": self.name, "pid": self.pid,
                "kind": "async" if self.is_async else "threaded",
                "max_concurrency": self.max_concurrency, "groups": groups, "running": running,
                "queued": queued, "done": self.counts[FINISHED],
                "failed": self.counts[FAILED] + self.counts[CANCELLED],
                # Killed counts as dead at once, before the I/O thread sees the exit.
                "alive": self.alive and not self.killed,
                "death": (str(self.death) if self.death else
                          "killed by jupyter_actors.kill()" if self.killed else None)}


_EXIT_MARKER = object()
