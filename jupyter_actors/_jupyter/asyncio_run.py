"""``asyncio.run(...)`` typed into a cell, where the kernel's own loop already runs.

Plain ``asyncio.run`` refuses to start when the calling thread runs a loop,
which is always the case in a cell. While the extension is loaded,
``asyncio.run`` is replaced by a wrapper that, in that case only, runs the
coroutine to completion with the real ``asyncio.run`` on a helper thread and
blocks the cell until it ends, exactly as a script would block:

    cell (kernel's loop thread)            helper thread
    ───────────────────────────            ─────────────
    asyncio.run(main())  ──────────────▶   real asyncio.run(main()) on a fresh loop,
    wait for the helper                    in a copy of the cell's contextvars (so
    Ctrl-C: cancel main(), wait for it     prints and .remote() calls belong to the cell)

The kernel's loop is never re-entered, so the next queued cell cannot start
inside this one (the failure mode of re-entrant loop patches), and nothing in
asyncio's internals is patched. Elsewhere (no running loop) the call goes
straight to the real ``asyncio.run``.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import threading

# How long an interrupted cell waits for its coroutine to finish cancelling.
CANCEL_GRACE = 5.0

_original_run = None


def install() -> None:
    """Replace ``asyncio.run`` (idempotent)."""
    global _original_run
    if _original_run is None:
        _original_run = asyncio.run
        asyncio.run = _make_run(_original_run)


def uninstall() -> None:
    """Put the real ``asyncio.run`` back, unless someone replaced ours since."""
    global _original_run
    if _original_run is not None:
        if getattr(asyncio.run, "__jupyter_actors_wrapper__", False):
            asyncio.run = _original_run
        _original_run = None


def _make_run(real_run):
    @functools.wraps(real_run)
    def run(main, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return real_run(main, **kwargs)
        if not asyncio.iscoroutine(main):
            raise ValueError(f"a coroutine was expected, got {main!r}")
        return run_in_helper_thread(real_run, main, kwargs)
    run.__jupyter_actors_wrapper__ = True
    return run


def run_in_helper_thread(real_run, main, kwargs: dict):
    """Run ``main`` with ``real_run`` on a new thread; block (interruptibly) until it ends."""
    state = _HelperRun()
    context = contextvars.copy_context()

    async def tracked():
        state.started(asyncio.current_task())
        return await main

    def target():
        try:
            state.result = context.run(real_run, tracked(), **kwargs)
        except BaseException as exc:  # handed to the cell's thread, which re-raises it
            state.error = exc
        finally:
            state.done.set()

    thread = threading.Thread(target=target, name="jupyter_actors-asyncio.run", daemon=True)
    thread.start()
    try:
        state.done.wait()
    except BaseException:  # KeyboardInterrupt from the kernel's interrupt
        state.cancel()
        state.done.wait(CANCEL_GRACE)
        raise
    if state.error is not None:
        error, state.error = state.error, None
        raise error
    return state.result


class _HelperRun:
    """What the cell's thread knows about the coroutine running on the helper."""

    def __init__(self):
        self.done = threading.Event()
        self.result = None
        self.error = None
        self._lock = threading.Lock()
        self._task = None
        self._loop = None
        self._cancel_requested = False

    def started(self, task) -> None:
        with self._lock:
            self._task, self._loop = task, task.get_loop()
            cancel = self._cancel_requested
        if cancel:
            task.cancel()

    def cancel(self) -> None:
        with self._lock:
            self._cancel_requested = True
            task, loop = self._task, self._loop
        if task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass  # the loop already closed: the run is over
