"""The future behind a ref, and how threads and event loops wait on it.

``RefFuture`` is the ``concurrent.futures.Future`` a backend completes for
each ref, made cheap for the per-call path: no lock until a thread waits, a
blocked ``get()`` sleeps on a plain lock that the completion releases, and an
``await`` in an event loop is woken with one wake-up of its loop for a run of
refs completed together (``_loop_waiter``).
"""
from __future__ import annotations

import concurrent.futures
import functools
import logging
import sys
import threading
import weakref
from _thread import allocate_lock as _allocate_lock
from concurrent.futures._base import CANCELLED as _CANCELLED
from concurrent.futures._base import CANCELLED_AND_NOTIFIED as _CANCELLED_AND_NOTIFIED
from concurrent.futures._base import FINISHED as _FINISHED
from concurrent.futures._base import PENDING as _PENDING

from .._spin import Spin, cores_spare

_DONE = frozenset({_CANCELLED, _CANCELLED_AND_NOTIFIED, _FINISHED})
# Guards the change to done and the done-callback list of every RefFuture (held briefly).
_DONE_LOCK = threading.Lock()
_LOGGER = logging.getLogger("concurrent.futures")

# A thread that handles frames for the I/O thread (local/waiting.py) sets ``post`` here:
# the done-callbacks of the futures it completes then go through post(future), which runs
# only the wake-ups of waiting threads itself and hands the rest to the I/O thread.
handling = threading.local()

# How a thread blocked in get() may wait by reading the worker's reply itself, set by a
# backend that can (local/waiting.py): caller_waits(owner, future, timeout) is True once
# the future is done, False when the timeout passed, None to wait as usual (result()).
caller_waits = None
# How an event loop with nothing else to run may poll for a reply a short while before
# it waits (local/waiting.py): caller_polls(owner, future) is True once the future is
# done, False when it is not yet, None when polling does not pay now.
caller_polls = None
# Set by a backend that puts off writing calls while more keep coming (local
# io_loop.py): called before a thread or an event loop waits for a ref, so that
# the calls still queued go out now.
before_wait = None


class RefFuture(concurrent.futures.Future):
    """The future behind a ref: a ``concurrent.futures.Future`` that makes its
    lock only when a thread first waits on it.

    Most refs are done before anyone waits (a pipelined ``get``, ``await``):
    they never pay for a ``threading.Condition``. Becoming done and adding a
    done-callback share one module lock, so a callback is never missed; a
    thread that waits makes the condition, and whoever completes the future
    after that notifies it. A ref is cancelled with ``cancel(ref)``, never
    through its future: ``cancel()`` here returns False.
    """

    # A new future is pending: its fields start as these class attributes, so making
    # one runs no Python code (not Future.__init__, which makes the lock). Each is set
    # on the instance when it changes.
    __init__ = object.__init__
    _state = _PENDING
    _result = None
    _exception = None
    _done_callbacks = None   # a list once a callback is added (see add_done_callback)
    _lazy_condition = None   # made when a thread first waits
    _waiter_list = None      # made when concurrent.futures.wait first uses it

    @property
    def _waiters(self):
        """The waiters of ``concurrent.futures.wait``: a list made when first used."""
        waiters = self._waiter_list
        if waiters is None:
            with _DONE_LOCK:  # one list, even if two threads get here at once
                if self._waiter_list is None:
                    self._waiter_list = []
                waiters = self._waiter_list
        return waiters

    @property
    def _condition(self):
        condition = self._lazy_condition
        if condition is None:
            with _DONE_LOCK:  # one condition, even if two threads get here at once
                if self._lazy_condition is None:
                    self._lazy_condition = threading.Condition()
                condition = self._lazy_condition
        return condition

    def done(self) -> bool:
        return self._state in _DONE

    def cancel(self) -> bool:
        return False

    def result(self, timeout=None):
        if self._state != _FINISHED and not self._sleep(timeout):
            raise concurrent.futures.TimeoutError()
        exc = self._exception
        if exc is None:
            return self._result
        try:
            raise exc
        finally:
            exc = None  # no cycle through the traceback

    def exception(self, timeout=None):
        if self._state != _FINISHED and not self._sleep(timeout):
            raise concurrent.futures.TimeoutError()
        return self._exception

    def _sleep(self, timeout) -> bool:
        """Block until done (True) or ``timeout`` seconds passed (False).

        The sleeper is a plain lock that a done-callback releases: one wake-up,
        without the condition (and its Python-level notify) that a
        ``concurrent.futures`` waiter would use. Ctrl-C interrupts the wait.
        """
        if before_wait is not None:
            before_wait()
        sleeper = _Sleeper()
        with _DONE_LOCK:
            if self._state in _DONE:
                return True
            if self._done_callbacks is None:
                self._done_callbacks = [sleeper]
            else:
                self._done_callbacks.append(sleeper)
        lock = sleeper.lock
        if timeout is None:
            woken = lock.acquire()
        elif timeout > 0:
            woken = lock.acquire(True, timeout)
        else:
            woken = lock.acquire(False)
        if not woken:
            with _DONE_LOCK:
                if self._state not in _DONE:
                    self._done_callbacks.remove(sleeper)
                    return False
        return True

    def add_done_callback(self, fn) -> None:
        with _DONE_LOCK:
            if self._state not in _DONE:
                if self._done_callbacks is None:
                    self._done_callbacks = [fn]
                else:
                    self._done_callbacks.append(fn)
                return
        try:
            fn(self)
        except Exception:
            _LOGGER.exception("exception calling callback for %r", self)

    def set_result(self, result) -> None:
        if not self._settle(result, None):
            raise concurrent.futures.InvalidStateError(f"{self._state}: {self!r}")

    def set_exception(self, exception) -> None:
        if not self._settle(None, exception):
            raise concurrent.futures.InvalidStateError(f"{self._state}: {self!r}")

    def _settle(self, result, exception) -> bool:
        """Done with this result or exception: wake the waiters, then run the callbacks.
        False (and nothing changes) when it was done already."""
        with _DONE_LOCK:
            if self._state in _DONE:
                return False
            self._result = result
            self._exception = exception
            self._state = _FINISHED
            condition = self._lazy_condition
        if condition is not None:  # someone waits
            with condition:
                for waiter in self._waiters:
                    if exception is None:
                        waiter.add_result(self)
                    else:
                        waiter.add_exception(self)
                condition.notify_all()
        if self._done_callbacks:  # (none are added once done: see add_done_callback)
            post = getattr(handling, "post", None)
            if post is None:
                self._invoke_callbacks()
            else:
                post(self)
        return True


class _Sleeper:
    """A thread blocked in ``RefFuture.result``: released when the future is done."""

    __slots__ = ("lock",)

    def __init__(self):
        self.lock = _allocate_lock()
        self.lock.acquire()

    def __call__(self, _future) -> None:
        self.lock.release()


class _LoopWakeups:
    """Refs completed in other threads, passed to one event loop: one wake-up for a run.

    ``call_soon_threadsafe`` writes to the loop's wake-up socket on every call;
    a thread completing many refs at once (the I/O thread reading a batch of
    results) wakes the loop once, and the loop marks every waiter done.
    """

    def __init__(self, loop):
        self.loop = loop
        self.lock = threading.Lock()
        self.ready: list = []
        self.scheduled = False

    def done(self, waiter, _future) -> None:
        with self.lock:
            self.ready.append(waiter)
            if self.scheduled:
                return
            self.scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._release)
        except RuntimeError:
            pass  # that loop is closed: nobody is waiting any more

    def _release(self) -> None:
        with self.lock:
            ready, self.ready = self.ready, []
            self.scheduled = False
        for waiter in ready:
            if not waiter.done():
                waiter.set_result(None)


_wakeups: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _wakeups_of(loop) -> _LoopWakeups:
    """The loop's _LoopWakeups: an attribute of the loop where it takes one (asyncio's
    loops do), else kept beside it (weakly: it goes with the loop)."""
    with _DONE_LOCK:  # one per loop, even if two of its tasks get here at once
        wakeups = getattr(loop, "_jupyter_actors_wakeups", None) or _wakeups.get(loop)
        if wakeups is None:
            wakeups = _LoopWakeups(loop)
            try:
                loop._jupyter_actors_wakeups = wakeups
            except AttributeError:  # a loop without a __dict__ (uvloop)
                _wakeups[loop] = wakeups
    return wakeups


def _loop_waiter(fut: concurrent.futures.Future) -> asyncio.Future:
    """A future of the running loop, done (with None) once ``fut`` is done."""
    asyncio = sys.modules["asyncio"]  # imported: a loop runs (a worker that never awaits
    loop = asyncio.get_running_loop()    # starts without it)
    if before_wait is not None:
        before_wait()
    wakeups = getattr(loop, "_jupyter_actors_wakeups", None)
    if wakeups is None:
        wakeups = _wakeups_of(loop)
    waiter = loop.create_future()
    fut.add_done_callback(functools.partial(wakeups.done, waiter))
    return waiter


def poll_in_loop(owner, fut):
    """(``await ref``) Where the running loop has nothing else to do, let it turn once
    (its I/O, callbacks that came meanwhile) while the worker runs the call, then poll
    for the reply a short while (``caller_polls``) instead of going to sleep: on an idle
    machine a core that slept takes tens of µs to wake, and the reply would wake two
    threads (the I/O thread, then the loop). Yields what a bare ``yield`` in a task does."""
    loop = sys.modules["asyncio"].get_running_loop()
    if not _loop_idle(loop) or not cores_spare():
        return  # (polling is off, or the machine has no core to spare now: no turn either)
    if before_wait is not None:
        before_wait()  # the call goes out now
    yield  # (a task takes a bare yield as one turn of its loop)
    polls = caller_polls  # (None once the session ended meanwhile)
    if polls is not None and fut._state not in _DONE and _loop_idle(loop):
        polls(owner, fut)


def _loop_idle(loop) -> bool:
    """Whether an asyncio loop has nothing to run now: no callback ready, no timer due
    within a poll. (Other loops, uvloop's, are never polled in.)"""
    ready = getattr(loop, "_ready", None)
    if ready is None or ready:
        return False
    scheduled = loop._scheduled
    return not scheduled or scheduled[0]._when > loop.time() + max(Spin.TIME, 0.001)


def loop_running() -> bool:
    """Whether an event loop runs in this thread. Where asyncio was never imported none
    can: the driver's API leaves asyncio unimported (a sixth of its import) until used."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
