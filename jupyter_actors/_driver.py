"""The driver side of the runtime: worker processes, their channels, the I/O thread.

    caller threads                   I/O thread                     spawner thread
    ──────────────                   ──────────                     ──────────────
    .remote(): pickle the args,      select() over every channel,   start fresh workers
      record the call, send its      each process's exit fd and a   (never a fork of the
      frame, or queue it until its   wake-up socket; frames in:     driver), keep a few idle
      worker and its ObjectRef       results complete refs, lines   so creating an actor
      arguments are ready            go to the output router; a     does not wait for one
    get / wait / await: futures      dead worker fails its calls

Nothing here runs on the caller's event loop, so a blocking ``get`` in a
notebook cell cannot deadlock the runtime.
"""
from __future__ import annotations

import collections
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref

from . import _errors
from ._actor_state import _EXIT_MARKER, ActorState
from ._connection import Connection
from ._output import OutputRouter
from ._records import (CANCELLED, FAILED, FINISHED, PENDING, RUNNING, CallRecord, _count,
                       fail_record, release_inputs)
from ._serialization import deserialize, serialize, session_dir_root, set_session_dir
from ._task_pool import TaskPool
from ._trace import tracer
from .exceptions import ActorDiedError, TaskCancelledError, TaskError, WorkerCrashedError

__all__ = ["ActorState", "CallRecord", "Connection", "Runtime", "TaskPool", "default_router",
           "set_default_router", "CANCELLED", "FAILED", "FINISHED", "PENDING", "RUNNING"]


# -- runtime ------------------------------------------------------------------

class Runtime:
    """Everything one driver session owns; ``shutdown`` undoes all of it."""

    def __init__(self, num_cpus: int | None = None, idle_workers: int | None = None,
                 log_to_driver: bool = True):
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.idle_target = min(2, self.num_cpus) if idle_workers is None else idle_workers
        self.log_to_driver = log_to_driver
        self.router = default_router
        _sweep_abandoned_sessions(session_dir_root())
        self.session_dir = tempfile.mkdtemp(prefix=f"jupyter_actors-{os.getpid()}-",
                                            dir=session_dir_root())
        set_session_dir(self.session_dir)
        self.stopping = False
        self.lock = threading.Lock()
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._io_calls: collections.deque = collections.deque()
        self.conns: set = set()
        self.idle: list = []
        self.waiting: collections.deque = collections.deque()
        self.spawning = 0
        self.actors: weakref.WeakSet = weakref.WeakSet()
        self.named: dict = {}
        self.task_pool = TaskPool(self, self.num_cpus)
        self._spawn_requests: "collections.deque" = collections.deque()
        self._spawn_cv = threading.Condition()
        self._handlers = {
            "start": self._on_start, "ok": self._on_ok,
            "err": self._on_err, "cancelled": self._on_cancelled,
            "not_interrupted": self._on_not_interrupted, "out": self._on_out,
            "init_ok": self._on_init_ok, "init_err": self._on_init_err,
            "lookup": self._on_lookup,
        }
        self.io_thread = threading.Thread(target=self._io_loop, name="jupyter_actors-io",
                                          daemon=True)
        self.spawner = threading.Thread(target=self._spawn_loop, name="jupyter_actors-spawner",
                                        daemon=True)
        self.io_thread.start()
        self.spawner.start()
        with self.lock:
            for _ in range(self.idle_target):
                self._request_spawn()

    # -- workers ------------------------------------------------------------
    def worker_options(self) -> dict:
        return {"sys_path": [p for p in sys.path if p], "cwd": os.getcwd()}

    def acquire_worker(self, callback) -> None:
        """Hand a started worker to ``callback(conn)``: an idle one now, or the next one started."""
        with self.lock:
            if self.stopping:
                conn = None
            elif self.idle:
                conn = self.idle.pop()
                self._request_spawn()  # keep the idle pool topped up
            else:
                self.waiting.append(callback)
                self._request_spawn()
                return
        if conn is None:
            callback(None, RuntimeError("the runtime was shut down"))
        else:
            callback(conn)

    def _request_spawn(self) -> None:
        # Caller holds self.lock.
        needed = len(self.waiting) + self.idle_target - len(self.idle)
        while self.spawning < needed:
            self.spawning += 1
            with self._spawn_cv:
                self._spawn_requests.append(True)
                self._spawn_cv.notify()

    def _spawn_loop(self) -> None:
        while True:
            with self._spawn_cv:
                while not self._spawn_requests:
                    self._spawn_cv.wait()
                request = self._spawn_requests.popleft()
            if request is None:
                return
            try:
                conn = self._start_worker()
                error = None
            except Exception as exc:  # e.g. the interpreter cannot start
                conn, error = None, exc
            with self.lock:
                self.spawning -= 1
                if self.stopping:
                    callback = None
                elif self.waiting:
                    callback = self.waiting.popleft()
                else:
                    callback = None
                    if conn is not None:
                        self.idle.append(conn)
            if conn is not None and self.stopping:
                self.kill_process(conn)
            elif callback is not None:
                callback(conn, error) if conn is None else callback(conn)

    def _start_worker(self) -> Connection:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["JUPYTER_ACTORS_SESSION_DIR"] = self.session_dir
        # A kernel's inline plotting backend means nothing in a worker.
        env.pop("MPLBACKEND", None)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_actors._worker", str(child.fileno()),
                 str(os.getpid())],
                pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL,
                cwd=os.getcwd(),
                # Its own process group: a kernel interrupt (SIGINT to the
                # kernel's group) must not kill a worker still starting up,
                # before it ignores SIGINT. EOF and the parent-death signal
                # still end it with the driver.
                start_new_session=True)
        finally:
            child.close()
        parent.setblocking(False)
        conn = Connection(self, proc, parent)
        if hasattr(os, "pidfd_open"):
            try:
                conn.pidfd = os.pidfd_open(proc.pid)
            except OSError:
                conn.pidfd = None
        with self.lock:
            self.conns.add(conn)
        self.call_in_io(self._register, conn)
        return conn

    def _register(self, conn: Connection) -> None:
        if conn.exited:
            return
        self.selector.register(conn.sock, selectors.EVENT_READ, conn)
        if conn.pidfd is not None:
            self.selector.register(conn.pidfd, selectors.EVENT_READ, ("exit", conn))

    def watch_writable(self, conn: Connection) -> None:
        if conn.exited:
            return
        if not conn.flush():
            self.selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def kill_process(self, conn: Connection) -> None:
        try:
            conn.proc.kill()
        except OSError:
            pass

    # -- I/O thread ----------------------------------------------------------
    def call_in_io(self, fn, *args) -> None:
        self._io_calls.append((fn, args))
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or we are closing

    def _io_loop(self) -> None:
        selector = self.selector
        while True:
            for key, mask in selector.select():
                data = key.data
                if data is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    while self._io_calls:
                        fn, args = self._io_calls.popleft()
                        if fn is None:
                            return
                        fn(*args)
                elif type(data) is tuple:
                    self._on_exit(data[1])
                else:
                    if mask & selectors.EVENT_READ:
                        self._read(data)
                    if mask & selectors.EVENT_WRITE and not data.exited and data.flush():
                        selector.modify(data.sock, selectors.EVENT_READ, data)

    def _read(self, conn: Connection) -> None:
        try:
            messages = conn.decoder.read(conn.sock)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            messages = None
        if messages is None:
            self._on_exit(conn)
            return
        handlers = self._handlers
        for message in messages:
            try:
                handlers[message[0]](conn, message)
            except Exception as exc:  # a bug here must not stop the I/O thread
                print(f"jupyter_actors: error handling {message[0]!r}: {exc!r}", file=sys.__stderr__)

    def _on_exit(self, conn: Connection) -> None:
        if conn.exited:
            return
        with conn.lock:
            conn.exited = True
            conn.outbox.clear()
        for fileobj in (conn.sock, conn.pidfd):
            if fileobj is not None:
                try:
                    self.selector.unregister(fileobj)
                except (KeyError, ValueError):
                    pass
        try:
            conn.returncode = conn.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            conn.proc.kill()
            conn.returncode = conn.proc.wait()
        conn.sock.close()
        if conn.pidfd is not None:
            os.close(conn.pidfd)
        conn.pins.clear()
        with self.lock:
            self.conns.discard(conn)
            if conn in self.idle:
                self.idle.remove(conn)
                if not self.stopping:
                    self._request_spawn()
        if conn.owner is not None:
            conn.owner.on_exit(conn)

    # -- messages from workers (I/O thread) ----------------------------------
    def _on_start(self, conn, message) -> None:
        record = conn.pending.get(message[1])
        if record is None:
            return
        record.started = message[2]
        record.slot = message[3]
        if record.status == PENDING:
            record.status = RUNNING
        tracer.record_started(record)

    def _finish(self, conn, call_id):
        record = conn.pending.pop(call_id, None)
        if record is not None:
            # The worker is done with it; the trace keeps the record a while,
            # so it must not keep the worker's connection or the cell alive.
            record.conn = record.context = None
        if record is not None and isinstance(record.owner, TaskPool):
            record.owner.call_done(conn)
        return record

    def _on_ok(self, conn, message) -> None:
        _, call_id, payloads, start, end, slot = message
        record = self._finish(conn, call_id)
        if record is None:
            return
        record.started, record.finished, record.slot = start, end, slot
        if record.status == CANCELLED:
            tracer.record_finished(record)
            return
        values = []
        for payload in payloads:
            try:
                values.append(deserialize(payload))
            except Exception as exc:
                error = TaskError(f"could not unpickle the result of {record.label}: "
                                  f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
                fail_record(record, error)
                return
        record.status = FINISHED
        _count(record)
        refs, record.refs = record.refs, ()
        release_inputs(record)
        tracer.record_finished(record)
        # Last: a caller blocked in get() wakes here, and should find this
        # thread about to let go of the interpreter, not still busy.
        for ref, payload, value in zip(refs, payloads, values):
            ref._payload = payload
            if not ref._future.done():
                ref._future.set_result(value)

    def _on_err(self, conn, message) -> None:
        _, call_id, error, start, end, slot = message
        record = self._finish(conn, call_id)
        if record is None:
            return
        record.started, record.finished, record.slot = start, end, slot
        if record.status == CANCELLED:
            tracer.record_finished(record)
            return
        remote = _errors.remote_exception(error, record.label, conn.pid)
        if record.cancel_requested and _interruptible(record):
            # The interrupt surfaced as an exception.
            cancelled = TaskCancelledError(f"{record.label} was interrupted while running.")
            cancelled.__cause__ = remote
            fail_record(record, cancelled)
            return
        fail_record(record, remote)

    def _on_cancelled(self, conn, message) -> None:
        record = self._finish(conn, message[1])
        if record is None:
            return
        record.finished = message[2]
        if record.status == CANCELLED:
            tracer.record_finished(record)
        elif record.started is None:
            fail_record(record, _not_started(record))
        else:
            fail_record(record, TaskCancelledError(
                f"{record.label} was interrupted while running."))

    def _on_not_interrupted(self, conn, message) -> None:
        """A threaded actor's call was running when cancelled: it runs on, its ref fails now."""
        record = conn.pending.get(message[1])
        if record is not None:
            fail_record(record, _not_interrupted(record))

    def _on_out(self, conn, message) -> None:
        if not self.log_to_driver:
            return
        _, call_id, stream, text = message
        record = conn.pending.get(call_id)
        context = record.context if record is not None else None
        owner = conn.owner
        if isinstance(owner, ActorState):
            name = owner.class_name
        elif record is not None:
            name = record.label
        else:
            name = "worker"
        self.router.write(context, stream, f"({name} pid={conn.pid})", text)

    def _on_init_ok(self, conn, message) -> None:
        record = conn.pending.pop(message[1], None)
        if record is not None:
            record.status = FINISHED
            record.finished = time.monotonic()
            refs, record.refs = record.refs, ()
            for ref in refs:
                ref._future.set_result(None)
            release_inputs(record)
            tracer.record_finished(record)  # else it stays in tracer.active for ever

    def _on_init_err(self, conn, message) -> None:
        actor = conn.owner
        record = conn.pending.pop(message[1], None)
        cause = _errors.remote_exception(message[2], f"{actor.class_name}.__init__", conn.pid)
        actor.death_cause = cause
        if record is not None:
            fail_record(record, cause)
        # The worker exits next; its exit fails the other calls with ActorDiedError.

    def _on_lookup(self, conn, message) -> None:
        _, lookup_id, ref_id = message
        ref = conn.pins.get(ref_id)
        if ref is None:
            error = serialize(KeyError(f"ObjectRef {ref_id:032x} is not known to the driver"))
            conn.send(("ref", lookup_id, False, error))
            return

        def answer(fut):
            exc = fut.exception()
            if exc is None:
                conn.send(("ref", lookup_id, True, ref._payload))
            else:
                try:
                    payload = serialize(exc)
                except Exception:
                    payload = serialize(TaskError(str(exc)))
                conn.send(("ref", lookup_id, False, payload))
        ref._future.add_done_callback(answer)

    # -- names -----------------------------------------------------------------
    def forget_name(self, actor: ActorState) -> None:
        if actor.named_key is not None:
            with self.lock:
                entry = self.named.get(actor.named_key)
                if entry is not None and entry[0] is actor:
                    del self.named[actor.named_key]

    # -- cancel ------------------------------------------------------------------
    def cancel(self, record: CallRecord, force: bool) -> None:
        if record.status in (FINISHED, FAILED, CANCELLED) or record.cancel_requested:
            return
        conn = record.conn
        if conn is None:  # still queued in the driver: its owner skips it
            fail_record(record, _not_started(record))
            return
        if force and isinstance(record.owner, TaskPool):
            fail_record(record, TaskCancelledError(
                f"{record.label} was cancelled: its worker was killed (force=True)."))
            self.kill_process(conn)
            return
        if record.status == RUNNING and not _interruptible(record):
            fail_record(record, _not_interrupted(record))
            return
        # Only the worker knows whether a call it was sent has started (its
        # "start" may still be on the way): it answers "cancelled" for a call
        # it skips, "not_interrupted" for a running threaded call, and ends an
        # async call or remote function by interrupting it; the ref fails on
        # that answer, so whatever the call printed while being cancelled (a
        # finally: block) still comes first.
        record.cancel_requested = True
        conn.send(("cancel", record.call_id))

    # -- shutdown -------------------------------------------------------------
    def shutdown(self) -> None:
        with self.lock:
            if self.stopping:
                return
            self.stopping = True
            conns = list(self.conns)
            self.idle.clear()
            waiting = list(self.waiting)
            self.waiting.clear()
        for conn in conns:
            self.kill_process(conn)
        done = threading.Event()

        def finish():
            for conn in conns:
                self._on_exit(conn)
            done.set()
        self.call_in_io(finish)
        done.wait(10)
        for callback in waiting:
            callback(None, RuntimeError("the runtime was shut down"))
        for actor in list(self.actors):
            with actor.lock:
                if actor.alive:
                    lost = [r for r in actor.queue if r is not _EXIT_MARKER]
                    actor.queue.clear()
                    actor._die(ActorDiedError(
                        f"The actor {actor.class_name} ended with the runtime "
                        f"(jupyter_actors.shutdown()); {len(lost)} pending call(s) failed."), lost)
        with self.task_pool.lock:
            for record in list(self.task_pool.queue):
                fail_record(record, WorkerCrashedError("the runtime was shut down"))
            self.task_pool.queue.clear()
        self.call_in_io(None)
        self.io_thread.join(5)
        with self._spawn_cv:
            self._spawn_requests.append(None)
            self._spawn_cv.notify()
        self.spawner.join(5)
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
        shutil.rmtree(self.session_dir, ignore_errors=True)
        set_session_dir(None)


def _interruptible(record: CallRecord) -> bool:
    """Async actor calls and remote functions can be interrupted; threaded actor calls cannot."""
    owner = record.owner
    return not isinstance(owner, ActorState) or owner.is_async


def _not_started(record: CallRecord) -> TaskCancelledError:
    return TaskCancelledError(f"{record.label} was cancelled before it started.")


def _not_interrupted(record: CallRecord) -> TaskCancelledError:
    return TaskCancelledError(f"{record.label} was running; a threaded actor's call is not "
                              "interrupted and runs to its end.")


def _sweep_abandoned_sessions(root: str) -> None:
    """Remove shared-memory folders of drivers that died without cleaning up.

    A driver killed with SIGKILL takes its workers with it (parent-death
    signal) before anyone can remove its folder; the folder name carries the
    driver's pid, so the next runtime on this machine removes it.
    """
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != "jupyter_actors" or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        try:
            os.kill(pid, 0)
            continue  # its driver still runs (or the pid was reused: leave it)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        except OSError:
            continue  # another user's process: not ours to judge


default_router = OutputRouter()


def set_default_router(router) -> None:
    """Install the router new runtimes use (the Jupyter integration calls this)."""
    global default_router
    default_router = router

