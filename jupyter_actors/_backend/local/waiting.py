"""A thread blocked in ``get()`` reads its own reply (Linux): the I/O thread sleeps on.

    caller thread in get()                         I/O thread (io_loop)
    ──────────────────────                         ────────────────────
    waits in its own epoll on the socket of the    watches every socket with
    worker that runs the call; its watch is        EPOLLEXCLUSIVE too, made again
    EPOLLEXCLUSIVE and made once per thread and    (``requeue``) after each new
    worker, ahead of the I/O thread's              caller's watch: input wakes it
    input while it waits wakes it alone: it        only while no caller waits on
    reads and handles the frames under             that socket
    ``IOLoop.lock``, as the I/O thread would
    a reply handled by another thread wakes it
    through the thread's eventfd

A sync call then wakes one driver thread instead of two (the I/O thread, then
the caller), and the interpreter is not handed from one to the other. While
the machine has cores to spare, the caller first polls for its reply for a
short while (``_spin``) with the I/O thread's watch of that socket off
(``IOLoop.unwatch``; on again when it is done): on an idle machine its core
then does not go to sleep, and waking a sleeping core costs tens of µs.

An event loop that awaits a ref with nothing else to run (no callback ready, no
timer due) does the same for one poll (``poll_for_reply``, from ``await ref``):
the loop first turns once, so its own I/O and other tasks are not held up, then
polls for the reply; only if it has not come by then does the loop sleep and the
I/O thread wake it, as for any await. A reply read there wakes no thread at all,
where the I/O thread's way wakes two (the I/O thread, then the loop).

Handling frames must not stop half-way: in the main thread a Ctrl-C that
lands meanwhile is held back (its handler swapped for the time it takes) and
raised once they are handled. One that lands while a caller polls (at most
``Spin.TIME``) is raised when the poll ends; while it sleeps waiting, a Ctrl-C
ends the wait at once.
"""
from __future__ import annotations

import _signal  # signal.signal() costs ~9 µs (it converts handlers to enums): _signal's ~0.2
import logging
import os
import select
import signal
import threading
from time import monotonic

from ... import _spin
from ..._api import futures as _futures
from ..._api.futures import _DONE, _DONE_LOCK, _Sleeper

_local = threading.local()
_READ = select.EPOLLIN | getattr(select, "EPOLLEXCLUSIVE", 0) if hasattr(select, "epoll") else 0
_SIGINT = int(signal.SIGINT)
_held_back: list = []   # a SIGINT that came while the main thread was handling frames
# Rounds of reading what a full buffer left in the socket before the I/O thread is asked
# to: input that keeps coming (another thread's calls) is the I/O thread's, not this caller's.
_LEFTOVER_ROUNDS = 4
_LOGGER = logging.getLogger("concurrent.futures")


def _forget_in_child() -> None:
    """A forked child shares the parent's epoll and sockets but has no I/O thread: it
    must never read the parent's replies (its get() waits as before)."""
    global _local
    _local = threading.local()
    _futures.caller_waits = None
    _futures.caller_polls = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _hold_back(signum, frame) -> None:
    _held_back.append(frame)


class _Wake:
    """A thread's eventfd, and the done-callback that writes to it. The callback may run
    after its thread ended (a future completed just as it stopped waiting): the fd is
    closed only with this object, which the future's callbacks keep alive."""

    __slots__ = ("fd", "busy")

    def __init__(self):
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.busy = False   # its thread handles frames: it looks at the future after that

    def __call__(self, _future) -> None:
        if not self.busy:
            os.eventfd_write(self.fd, 1)

    def __del__(self):
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)


class _Waiter:
    """One thread's epoll (the sockets it waited on and its eventfd), closed with the thread."""

    __slots__ = ("epoll", "wake", "conns", "main", "io", "more", "spin")

    def __init__(self):
        self.epoll = select.epoll()
        self.wake = _Wake()
        self.epoll.register(self.wake.fd, select.EPOLLIN)
        self.conns: dict = {}     # fd -> Connection watched by this thread's epoll
        self.main = threading.current_thread() is threading.main_thread()
        self.io = None            # the IOLoop of the frames being handled
        self.more = False         # a read filled its buffer: the socket may hold more
        self.spin = _spin.Spin()  # polls for a reply before sleeping (_spin)

    def __del__(self):
        epoll = getattr(self, "epoll", None)
        if epoll is not None:
            epoll.close()

    def watch(self, conn, fd: int) -> bool:
        """Watch ``conn`` from now on, ahead of the I/O thread (False: it has exited)."""
        io = conn.io
        with io.lock:  # the socket cannot close meanwhile (exits are handled under it)
            if conn.exited:
                return False
            for old_fd, old in list(self.conns.items()):
                if old.exited:  # its socket closed, which ended its watch
                    del self.conns[old_fd]
            self.conns[fd] = conn
            try:
                self.epoll.register(fd, _READ)
            except FileExistsError:  # watched already (a Ctrl-C cut the last watch short)
                self.epoll.unregister(fd)
                self.epoll.register(fd, _READ)
            # Its exit ends the watch (IOLoop.closed): closing the socket would not while
            # a forked child holds a copy of it, and its end of file would wake us for ever.
            # (The epolls of threads that ended since are closed: they go, or a program
            # that waits from many short-lived threads would pile them up.)
            watchers = conn.watchers
            watchers[:] = [epoll for epoll in watchers if not epoll.closed]
            watchers.append(self.epoll)
        io.call_soon(io.requeue, conn)
        return True

    def post(self, future) -> None:
        """The done-callbacks of a future this thread completed while handling frames:
        wake-ups of waiting threads run here, the rest on the I/O thread, as before
        (a user's callback must not run holding the I/O lock, nor with Ctrl-C held)."""
        callbacks = future._done_callbacks
        rest = []
        for callback in callbacks:
            if type(callback) is _Wake or type(callback) is _Sleeper:
                callback(future)
            else:
                rest.append(callback)
        if rest:
            self.io.call_soon_unlocked(_run_callbacks, future, rest)

    def handle(self, events, held: bool = False) -> None:
        """Read what woke this thread and handle it, all of it, Ctrl-C or not (``held``:
        the caller holds Ctrl-C back already)."""
        handler = _hold_sigint() if self.main and not held else None
        wake = self.wake
        wake.busy = True
        try:
            conns, wake_fd = self.conns, wake.fd
            for fd, _ in events:
                if fd == wake_fd:
                    try:
                        os.eventfd_read(wake_fd)
                    except BlockingIOError:
                        pass
                    continue
                conn = conns.get(fd)
                if conn is None or conn.exited:
                    conns.pop(fd, None)
                    try:
                        self.epoll.unregister(fd)
                    except OSError:
                        pass
                    continue
                self.io = conn.io
                if conn.io.read_here(conn, self.post):
                    self.more = True
        finally:
            wake.busy = False
            if handler is not None:
                _let_sigint(handler)


def wait_for_reply(owner, future, timeout, sleep: bool = True) -> bool | None:
    """Wait for ``future``, which a frame from the worker that runs ``owner`` completes,
    reading that worker's socket in this thread. True: done; False: ``timeout`` passed;
    None: not a call this can wait for here (wait as usual).

    ``sleep=False`` (an event loop with nothing else to do, ``poll_for_reply``): only
    poll for it for a short while, where that pays; False when it did not come, None
    when polling does not pay now."""
    conn = getattr(owner, "conn", None)
    io = getattr(conn, "io", None)
    if io is None or not io.callers_read:
        return None
    waiter = getattr(_local, "waiter", None)
    if waiter is None:
        if io.thread is threading.current_thread():
            return None  # a done-callback on the I/O thread (which holds the lock)
        waiter = _local.waiter = _Waiter()
    elif waiter.wake.busy:
        return None  # a callback run while this thread handles frames: no reading here
    spin = waiter.spin
    if not sleep and not spin.due():
        return None
    fd = conn.sock.fileno()
    if waiter.conns.get(fd) is not conn and (fd < 0 or not waiter.watch(conn, fd)):
        return None
    wake = waiter.wake
    poll, handle = waiter.epoll.poll, waiter.handle
    done = unwatched = False
    try:
        deadline = None if timeout is None else monotonic() + timeout
        # While this thread polls, the I/O thread's watch of the socket is off: input for
        # a thread that is not asleep in poll() would wake the I/O thread instead.
        if not sleep or (timeout is None or timeout > spin.TIME) and spin.due():
            # Ctrl-C is held back from the unwatch to the rewatch after a poll that saw
            # the reply (a poll lasts ≤ Spin.TIME), so that it cannot land half-way (while
            # waiting for the I/O lock, or between the unwatch and ``unwatched``), which
            # would leave the input unread for good, and so that a sync call swaps the
            # handler twice rather than six times (each is a system call).
            handler = _hold_sigint() if waiter.main else None
            try:
                unwatched = io.unwatch(conn)
                if unwatched:

                    def step(_timeout) -> bool:
                        events = poll(0)
                        if events:
                            handle(events, True)
                        return future._state in _DONE
                    spin.poll(step)
                    if not sleep or future._state in _DONE:
                        io.rewatch(conn)
                        unwatched = False
            finally:
                if handler is not None:
                    _let_sigint(handler)  # (a Ctrl-C held raises here: rewatched below)
        if not sleep:
            if future._state not in _DONE:
                _hand_back_rest(waiter)
                return False
        # From here on a reply another thread reads wakes this one (a poll looked at
        # the future's state each time).
        if future._state not in _DONE:
            future.add_done_callback(wake)
        if deadline is None:
            while future._state not in _DONE:
                handle(poll())
        else:
            while future._state not in _DONE:
                left = deadline - monotonic()
                if left <= 0:
                    _hand_back_rest(waiter)
                    return False
                events = poll(left)
                if events:
                    handle(events)
        done = True
        conn.waited = True  # its next call is not held back for a burst (Connection.send)
        # Input that came while this thread was not waiting in poll() woke the I/O
        # thread, and what woke this thread was read, unless a read filled its buffer:
        # that rest would wake nobody else.
        if waiter.more:
            for _ in range(_LEFTOVER_ROUNDS):
                waiter.more = False
                events = poll(0)
                if not events:
                    return True
                handle(events)
            waiter.more = False
            _hand_back(waiter)
        return True
    except BaseException:
        # Ctrl-C right after the wait took its events, before they were read: the I/O
        # thread reads them (it was not woken for them).
        _hand_back(waiter)
        raise
    finally:
        if not done:
            with _DONE_LOCK:
                callbacks = future._done_callbacks
                if future._state not in _DONE and callbacks and wake in callbacks:
                    callbacks.remove(wake)
        if unwatched:  # last: a Ctrl-C held meanwhile is raised here
            _rewatch(io, conn, waiter.main)


def poll_for_reply(owner, future) -> bool | None:
    """(An event loop with nothing else to run, about to wait for ``future``) Poll for
    the reply a short while, reading it in this thread, where that pays: its core then
    stays awake for it, and neither the I/O thread nor the loop has to be woken. True:
    done; False: not yet; None: polling does not pay now."""
    return wait_for_reply(owner, future, None, sleep=False)


def _hold_sigint():
    """(Main thread) From now on a Ctrl-C is held back, not raised: the handler to give
    back to ``_let_sigint``, or None when there is no Python handler (nothing raises)."""
    handler = _signal.getsignal(_SIGINT)
    if not callable(handler):
        return None
    _signal.signal(_SIGINT, _hold_back)  # (a pending one runs its handler first)
    _held_back.clear()  # (one left by a Ctrl-C that came twice at once was raised)
    return handler


def _let_sigint(handler) -> None:
    """Give Ctrl-C its handler back, and raise one that came meanwhile."""
    _signal.signal(_SIGINT, handler)
    if _held_back:
        frame = _held_back.pop()
        _held_back.clear()
        handler(_SIGINT, frame)


def _rewatch(io, conn, main: bool) -> None:
    """``io.rewatch(conn)``, whole: a Ctrl-C raised half-way (while it waits for the I/O
    lock) would leave the worker's input unread for good; it is raised after."""
    handler = _hold_sigint() if main else None
    try:
        io.rewatch(conn)
    finally:
        if handler is not None:
            _let_sigint(handler)


def _hand_back(waiter) -> None:
    """Have the I/O thread read what this thread's sockets hold."""
    for conn in list(waiter.conns.values()):
        if not conn.exited:
            conn.io.call_soon(_read_rest, conn)


def _hand_back_rest(waiter) -> None:
    """This thread stops waiting: what a read that filled its buffer left in the socket
    is the I/O thread's now (it was not woken for it)."""
    if waiter.more:
        waiter.more = False
        _hand_back(waiter)


def _run_callbacks(future, callbacks) -> None:
    """(I/O thread) Done-callbacks of a future a caller completed, run where they used to."""
    for callback in callbacks:
        try:
            callback(future)
        except Exception:
            _LOGGER.exception("exception calling callback for %r", future)


def _read_rest(conn) -> None:
    """(I/O thread) Input a caller left to it: read all that is there."""
    if not conn.exited:
        conn.io._read(conn, until_empty=True)
