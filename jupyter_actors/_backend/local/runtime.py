"""The embedded runtime: worker processes on this machine, wired together.

    caller threads                   I/O thread (io_loop)           spawner thread (spawner)
    ──────────────                   ────────────────────           ────────────────────────
    .remote(): the backend makes     select() over every channel,   fork workers from the
      a record; its actor or the     each process's exit fd and a   zygote (never from the
      task pool sends its frame, or  wake-up socket; frames in go   driver), keep a few idle
      queues it until its worker     to the result handlers         so creating an actor
      and ObjectRef args are ready   (results); a dead worker       does not wait for one
    get / wait / await: futures      fails its calls (actors, tasks)

Nothing here runs on the caller's event loop, so a blocking ``get`` in a
notebook cell cannot deadlock the runtime. This class only wires the pieces
and owns what spans them: cancelling a call, a worker's exit, shutdown.
"""
from __future__ import annotations

import os
import threading

from ...exceptions import ActorDiedError, TaskCancelledError
from .io_loop import IOLoop
from .objects import Lent
from .bars import BarViews
from .prompts import PromptSessions
from .records import CANCELLED, FAILED, FINISHED, RUNNING, CallRecord, fail_record
from .registry import Registry
from .results import ResultHandlers, interruptible, not_interrupted, not_started
from .session_dir import make_session_dir, remove_session_dir
from .spawner import Spawner, kill_process
from .tasks import TaskPool
from ..._wire.messages import CancelCall


class Runtime:
    """Everything one driver session owns; ``shutdown`` undoes all of it."""

    def __init__(self, router, num_cpus: int | None = None, idle_workers: int | None = None,
                 log_to_driver: bool = True, preload: tuple = ()):
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.log_to_driver = log_to_driver
        self.router = router
        self.stopping = False
        self.session_dir = make_session_dir()
        idle = min(2, self.num_cpus) if idle_workers is None else idle_workers
        # The zygote starts first: its start is most of the way to the first actor's
        # first answer, and the rest of this set-up (threads included) overlaps it.
        self.spawner = Spawner(self.session_dir, idle, preload)
        try:
            self.registry = Registry()
            self.lent = Lent(self.registry)
            self.task_pool = TaskPool(self, self.num_cpus)
            self.results = ResultHandlers(self)
            self.prompts = PromptSessions(self)
            handlers = self.results.table()
            handlers.update(self.prompts.table())
            self.bars = BarViews(self)
            handlers.update(self.bars.table())
            self.io = IOLoop(handlers, self.worker_exited, self.results.fail_call)
        except BaseException:
            self.spawner.join()   # no zygote left behind
            remove_session_dir(self.session_dir)
            raise
        self.streams: dict = {}   # call_id -> streams.Feed of a generator call in flight
        self.spawner.start(self.io)

    # -- a worker ended (I/O thread) ---------------------------------------------------
    def worker_exited(self, conn) -> None:
        if conn.exited:
            return
        with conn.lock:
            conn.exited = True
            conn.outbox.clear()
            conn.calls.clear()
        self.io.closed(conn)
        self.lent.worker_gone(conn)
        self.prompts.worker_gone(conn)
        if self.bars.views:
            self.bars.worker_gone(conn)
        self.spawner.exited(conn)
        if conn.owner is not None:
            conn.owner.on_exit(conn)

    # -- cancel ----------------------------------------------------------------------
    def cancel(self, record: CallRecord, force: bool) -> None:
        if record.kind == "task":
            # A task's worker may give it back (or die) meanwhile: the pool
            # moves it under this lock, so the cancel finds where it is now.
            with self.task_pool.lock:
                self._cancel(record, force)
        else:
            self._cancel(record, force)

    def _cancel(self, record: CallRecord, force: bool) -> None:
        if record.status in (FINISHED, FAILED, CANCELLED) or record.cancel_requested:
            return
        conn = record.conn
        if conn is None:  # still queued in the driver: its owner skips it
            fail_record(record, not_started(record))
            return
        if force and record.kind == "task":
            fail_record(record, TaskCancelledError(
                f"{record.label} was cancelled: its worker was killed (force=True)."))
            kill_process(conn)
            return
        if record.status == RUNNING and not interruptible(record):
            fail_record(record, not_interrupted(record))
            return
        # Only the worker knows whether a call it was sent has started (its
        # "start" may still be on the way): it answers "cancelled" for a call
        # it skips, "not_interrupted" for a running threaded call, and ends an
        # async call or remote function by interrupting it; the ref fails on
        # that answer, so whatever the call printed while being cancelled (a
        # finally: block) still comes first.
        record.cancel_requested = True
        conn.send(CancelCall(record.call_id))

    # -- shutdown ----------------------------------------------------------------------
    def shutdown_error(self, actor, lost: int) -> ActorDiedError:
        return ActorDiedError(f"The actor {actor.class_name} ended with the runtime "
                              f"(jupyter_actors.shutdown()); {lost} pending call(s) failed.")

    def shutdown(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.prompts.shutdown()
        conns, waiting = self.spawner.stop()
        for conn in conns:
            kill_process(conn)
        done = threading.Event()

        def finish():
            for conn in conns:
                self.worker_exited(conn)
            done.set()
        self.io.call_soon(finish)
        done.wait(10)
        for callback in waiting:
            callback(None, RuntimeError("the runtime was shut down"))
        for actor in self.registry.all():
            actor.end_with_runtime()
        self.task_pool.end_with_runtime()
        self.io.stop()
        self.spawner.join()
        remove_session_dir(self.session_dir)
