"""What an interrupted cell leaves behind: its calls that have not started are cancelled.

Interrupting a cell stops the cell waiting (``KeyboardInterrupt`` in ``get``,
``CancelledError`` in ``await``); the actors themselves are not touched. What
the cell had queued would otherwise keep the actor busy long after the user
asked to stop, so once the interrupted cell has ended, every call it submitted
that has not started yet is cancelled (``get`` on its ref raises
``TaskCancelledError``). Calls already running go on and their output still
lands in that cell; stop them with ``cancel(ref)`` or ``kill(actor)``.

A call is matched to its cell by the parent message remembered at
``.remote()`` (see ``cell_output``), so calls made by other cells, or by
threads of earlier cells, are left alone.
"""
from __future__ import annotations

import asyncio
import signal
import threading

from .._api import session
from .._trace import tracer
from .cell_output import CellContext


def wake_loop_on_interrupt() -> None:
    """Make an interrupt end an awaiting cell now, not when the loop next wakes up.

    For a cell with top-level ``await``, ipykernel installs a SIGINT handler
    that cancels the cell through ``IOLoop.add_callback``. Called from the
    loop's own thread, tornado's ``add_callback`` is a plain ``call_soon``
    that does not wake the loop, so a cell awaiting an actor would only see
    the interrupt when some other event arrived. Wrapping the handler that is
    installed while this cell runs with one that also wakes the loop fixes
    that; ipykernel puts its previous handler back when the cell ends, which
    drops the wrapper too. Called at the start of every cell, in its thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler) or handler is signal.default_int_handler \
            or isinstance(handler, _WakingHandler):
        return  # a sync cell: KeyboardInterrupt is raised where the cell waits
    signal.signal(signal.SIGINT, _WakingHandler(handler, loop))


class _WakingHandler:
    """Calls the kernel's SIGINT handler, then wakes the event loop so it acts on it."""

    def __init__(self, handler, loop):
        self.handler = handler
        self.loop = loop

    def __call__(self, signum, frame):
        try:
            self.handler(signum, frame)
        finally:
            try:
                self.loop.call_soon_threadsafe(_nothing)
            except RuntimeError:
                pass  # the loop is closed


def _nothing() -> None:
    pass


def was_interrupted(result) -> bool:
    """True for the ``post_run_cell`` result of a cell that the user interrupted."""
    if result is None:
        # ipykernel runs an async cell as a task; when SIGINT cancels it, the
        # hook is called without a result.
        return True
    error = getattr(result, "error_in_exec", None)
    return isinstance(error, (KeyboardInterrupt, asyncio.CancelledError))


def cancel_queued_calls(cell_msg_id: str | None) -> int:
    """Cancel the calls of that cell that have not started; how many were cancelled.

    The trace knows every call that has not ended, whichever backend runs it.
    """
    backend = session.current_backend()
    if not cell_msg_id or backend is None:
        return 0
    count = 0
    for record in list(tracer.active.copy().values()):
        context = record.context
        if (isinstance(context, CellContext) and context.msg_id == cell_msg_id
                and record.status == "pending" and record.kind != "init"):
            backend.cancel_call(record, False)
            count += 1
    return count
