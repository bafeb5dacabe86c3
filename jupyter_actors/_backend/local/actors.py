"""One actor as the driver sees it: its worker, its queue of calls, how it ended."""
from __future__ import annotations

import collections
import threading
import time

from ..._trace import tracer
from ..._wire.messages import ExitWhenDone
from ...exceptions import ActorDiedError, ActorUnavailableError, PendingCallsLimitExceeded
from .connection import Connection
from .records import (CANCELLED, FAILED, FINISHED, PENDING, RUNNING, CallRecord, fail_record,
                      send_record)
from .spawner import describe_exit, kill_process

class ActorState:
    """One actor: its worker, the calls waiting to be sent, and how it ended."""

    def __init__(self, runtime, actor_id: str, class_name: str, name, is_async: bool,
                 max_concurrency: int, named_key=None, max_pending_calls: int = -1,
                 concurrency_groups: dict | None = None, max_restarts: int = 0,
                 max_task_retries: int = 0):
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
        self.exit_how = ""                # how it ended itself: "sys.exit(3)", "exit_actor()"
        self.exited_on_purpose = False    # exit_actor(), sys.exit() or sys.exit(0)
        self.terminating = None           # the __ray_terminate__ call, once sent
        # Restarts: the constructor's record (to run it again), how many are allowed
        # (-1: for ever) and made, and how many times a lost call may be sent again.
        self.max_restarts = max_restarts
        self.max_task_retries = max_task_retries
        self.call_retries = 10**9 if max_task_retries == -1 else max_task_retries
        self.restarts = 0
        # (class payload, worker options, args, deps, exported, context) of the constructor
        self.creation: tuple | None = None
        self.restart_on_kill = False      # kill(no_restart=False) is a crash to recover from
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
            conn = self.conn
            if not self.queue and conn is not None and not record.deps \
                    and self.terminating is None and record.target != TERMINATE:
                # Nothing ahead of it, nothing to wait for.
                if record.kind == "call" and not record.exported:
                    conn.send_call(record)  # (send_record's path for most calls)
                else:
                    send_record(conn, record)
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
        conn = self.conn if self.terminating is None else None  # nothing after the end
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
            if record.target == TERMINATE and record.kind == "call":
                # After every call sent before it; the worker finishes them, then exits.
                self.terminating = record
                record.conn, record.pid = conn, conn.pid
                conn.pending[record.call_id] = record
                conn.send(ExitWhenDone())
                continue
            send_record(conn, record)

    def run_again(self, record: CallRecord) -> None:
        """A call that failed and has retries left (retry_exceptions) goes first in line."""
        with self.lock:
            if not self.alive:
                fail_record(record, self.death)
                return
            record.status, record.started, record.finished = PENDING, None, None
            self.queue.appendleft(record)
            self._pump()

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
            if self.alive and self._may_restart():
                self._restart(conn)
                return
            lost = list(conn.pending.values()) + [r for r in self.queue if r is not _EXIT_MARKER]
            conn.pending.clear()
            self.queue.clear()
            terminate, self.terminating = self.terminating, None
            if not self.alive:
                error = self.death
            else:
                how = self._how(conn)
                if self.restarts:
                    how += (f"; it was restarted {self.restarts} time(s), its max_restarts="
                            f"{self.max_restarts}")
                if self.runtime.stopping:
                    error = self.runtime.shutdown_error(self, len(lost))
                elif self.death_cause is not None:
                    what = f"{self.class_name}.__init__ raised {self.death_summary}"
                    error = ActorDiedError(f"The actor {self.class_name} (pid={conn.pid}) died: "
                                           f"{what}; {len(lost)} pending call(s) failed.")
                elif self.exited_on_purpose:
                    error = ActorDiedError(
                        f"The actor {self.class_name} (pid={conn.pid}) exited on purpose "
                        f"({self.exit_how}); {len(lost)} pending call(s) failed.")
                elif terminate is not None:
                    # Its own ref fails too, as in Ray: the actor is gone.
                    error = ActorDiedError(
                        f"The actor {self.class_name} (pid={conn.pid}) was ended by "
                        f"__ray_terminate__ after the calls before it; {len(lost) - 1} later "
                        f"call(s) failed.")
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

    def _how(self, conn: Connection) -> str:
        """How the worker ended, for messages: a kill, sys.exit(N), a signal or exit code."""
        if self.restart_on_kill:
            return "was killed by jupyter_actors.kill(no_restart=False)"
        if self.killed:
            return "was killed by jupyter_actors.kill()"
        return f"exited with {self.exit_how}" if self.exit_how else describe_exit(conn.returncode)

    def _may_restart(self) -> bool:
        """A crash (not an exit on purpose, a kill or a failed constructor) with restarts left."""
        if self.creation is None or self.runtime.stopping or self.death_cause is not None:
            return False
        if self.killed or self.exited_on_purpose or self.releasing or self.terminating:
            return False
        return self.max_restarts == -1 or self.restarts < self.max_restarts

    def _restart(self, conn: Connection) -> None:
        """Run the constructor again in a new worker; calls lost in the crash go again while
        they have retries left, the others fail (caller holds lock)."""
        self.restarts += 1
        self.conn = None
        how = self._how(conn)
        self.restart_on_kill, self.exit_how = False, ""
        sent = [r for r in conn.pending.values() if r.kind == "call"]
        # Calls sent behind a constructor that never finished cannot have run: they wait
        # for the next process without using a retry (Ray holds them back until then).
        never_ran = any(r.kind == "init" for r in conn.pending.values())
        conn.pending.clear()
        again, lost = [], []
        for record in sent:
            if never_ran and not record.cancel_requested:
                record.status, record.conn = PENDING, None
                again.append(record)
            elif record.retries_left != 0 and not record.cancel_requested:
                record.retries_left -= 1
                record.status, record.started, record.conn, record.slot = PENDING, None, None, None
                again.append(record)
            else:
                lost.append(record)
        cls_payload, options, args, deps, exported, context = self.creation
        init = CallRecord("init", f"{self.class_name}.__init__",
                          (cls_payload, dict(options, restarts=self.restarts)), self, args, deps,
                          1, context, exported)
        self.queue.extendleft(reversed([init] + again))
        tracer.record_submitted(init)
        error = ActorUnavailableError(
            f"The actor {self.class_name} (pid={conn.pid}) {how}; it is being restarted "
            f"(restart {self.restarts} of "
            f"{'unlimited' if self.max_restarts == -1 else self.max_restarts}). This call "
            f"may or may not have run; give it max_task_retries to have it sent again.")
        for record in lost:
            fail_record(record, error)
        self.runtime.spawner.acquire(self.attach)

    def _die(self, error: ActorDiedError, lost: list) -> None:
        self.alive = False
        self.death = error
        self.creation = None
        self.runtime.registry.forget_name(self)
        for record in lost:
            fail_record(record, error)

    def kill(self, no_restart: bool = True) -> None:
        with self.lock:
            if not self.alive:
                return
            if not no_restart and self.conn is not None and self._restarts_left():
                # The exit restarts it, as a crash would; calls made from now on wait
                # for the new process instead of going to the dying one.
                self.restart_on_kill = True
                conn, self.conn = self.conn, None
                kill_process(conn)
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

    def _restarts_left(self) -> bool:
        return self.creation is not None and (self.max_restarts == -1
                                              or self.restarts < self.max_restarts)

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
                "restarts": self.restarts, "max_restarts": self.max_restarts,
                "restarting": self.alive and self.conn is None and self.restarts > 0,
                "failed": self.counts[FAILED] + self.counts[CANCELLED],
                # Killed counts as dead at once, before the I/O thread sees the exit.
                "alive": self.alive and not self.killed,
                "death": (str(self.death) if self.death else
                          "killed by jupyter_actors.kill()" if self.killed else None)}


_EXIT_MARKER = object()
TERMINATE = "__ray_terminate__"   # the method that ends an actor after its queued calls
