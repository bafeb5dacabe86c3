"""Prompts of workers (``breakpoint()``, ``input()``): one session at a time, asked by the router.

    I/O thread                                     a prompt thread per line asked
    ──────────                                     ──────────────────────────────
    PromptOpen: nobody can answer → Reply False,
      and say so once; prompt free → Reply True;
      else the call waits its turn (FIFO)
    PromptLine ─────────────────────────────────▶  router.ask(context, "(Class pid=N) (Pdb) ")
                                                   → Reply(line), or the error: the cell was
                                                   interrupted, the runtime shut down
    PromptClose, or the worker exits → the next waiting session gets Reply True

Two actors that hit breakpoints at once get their prompts one after the other:
the second waits (its call's thread blocked) until the first lets its call go on.
"""
from __future__ import annotations

import collections
import threading

from ..._wire.messages import PromptClose, PromptLine, PromptOpen, Reply
from ..._wire.payloads import serialize
from ...exceptions import TaskCancelledError

_SKIPPED = ("breakpoint() in {label} was skipped: nothing here can answer a debugger prompt "
            "({why}), so the call goes on as with PYTHONBREAKPOINT=0. This is said once.")


class PromptSessions:
    """Which worker call holds the prompt, who waits for it, and the asking threads."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.lock = threading.Lock()
        self.owner = None                           # (conn, call_id) holding the prompt
        self.waiting: collections.deque = collections.deque()  # (conn, PromptOpen)
        self.warned = False
        self.stopped = False
        self.asking: dict = {}                      # conn -> events that end its asks

    def table(self) -> dict:
        return {PromptOpen: self.open, PromptLine: self.line, PromptClose: self.close}

    # -- I/O thread ------------------------------------------------------------------------
    def open(self, conn, m: PromptOpen) -> None:
        record = conn.pending.get(m.call_id)
        context = record.context if record is not None else None
        if self.stopped or not self.runtime.router.can_ask(context):
            if m.kind == "debugger" and not self.warned:
                self.warned = True
                label = record.label if record is not None else "a worker"
                router = self.runtime.router
                router.write(context, "stderr", _prefix(conn, record),
                             _SKIPPED.format(label=label, why=router.why_nobody_answers()))
            conn.send(Reply(m.request_id, True, serialize(False)))
            return
        with self.lock:
            if self.owner is not None:
                self.waiting.append((conn, m))
                return
            self.owner = (conn, m.call_id)
        conn.send(Reply(m.request_id, True, serialize(True)))

    def line(self, conn, m: PromptLine) -> None:
        record = conn.pending.get(m.call_id)
        context = record.context if record is not None else None
        prompt = f"{_prefix(conn, record)} {m.prompt}"
        cancel = threading.Event()
        with self.lock:
            self.asking.setdefault(conn, set()).add(cancel)
        threading.Thread(target=self._ask, args=(conn, m, context, prompt, record, cancel),
                         daemon=True, name="jupyter_actors prompt").start()

    def close(self, conn, m: PromptClose) -> None:
        with self.lock:
            if self.owner != (conn, m.call_id):
                return
            self.owner = None
        self._next()

    def worker_gone(self, conn) -> None:
        with self.lock:
            for cancel in self.asking.pop(conn, ()):
                cancel.set()  # its input box is answered by nobody now
            self.waiting = collections.deque(w for w in self.waiting if w[0] is not conn)
            if self.owner is None or self.owner[0] is not conn:
                return
            self.owner = None
        self._next()

    def shutdown(self) -> None:
        self.stopped = True
        self.runtime.router.abort_prompts("the runtime was shut down")

    # -- helpers ---------------------------------------------------------------------------
    def _next(self) -> None:
        """The prompt is free: the longest-waiting session that is still there gets it."""
        while True:
            with self.lock:
                if self.owner is not None or not self.waiting:
                    return
                conn, m = self.waiting.popleft()
                if conn.exited:
                    continue
                self.owner = (conn, m.call_id)
            conn.send(Reply(m.request_id, True, serialize(True)))
            return

    def _ask(self, conn, m: PromptLine, context, prompt: str, record, cancel) -> None:
        try:
            text = self.runtime.router.ask(context, prompt, m.password, cancel)
            reply = Reply(m.request_id, True, serialize(text))
        except EOFError as exc:
            reply = Reply(m.request_id, False, serialize(EOFError(*exc.args)))
        except BaseException as exc:  # interrupted, or the runtime is going away
            label = record.label if record is not None else "the call"
            error = TaskCancelledError(
                f"{label} was stopped at its debugger or input() prompt: {_why(exc)}")
            reply = Reply(m.request_id, False, serialize(error))
        finally:
            with self.lock:
                asks = self.asking.get(conn)
                if asks is not None:
                    asks.discard(cancel)
                    if not asks:
                        del self.asking[conn]
        conn.send(reply)


def _prefix(conn, record) -> str:
    owner = conn.owner
    if owner is not None and owner.actor_id is not None:
        name = owner.class_name
    elif record is not None:
        name = record.label
    else:
        name = "worker"
    return f"({name} pid={conn.pid})"


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
