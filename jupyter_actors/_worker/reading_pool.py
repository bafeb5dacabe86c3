"""A threaded actor with max_concurrency N > 1 and no groups: the thread that reads a call runs it.

Of its N threads, one waits for input while the actor is idle and the others
wait each on its own lock. The thread that reads a call runs it: no thread
wake-up stands between a call's frame and its run (a hand-over costs about a
fifth of a short call's round trip; a sync call costs the same wake-ups as
with max_concurrency 1). More calls in the same read go to threads waiting on
their locks, one wake-up after another: each thread woken with a call wakes
the next before it runs its own (which may block), so short calls that the
threads awake run meanwhile wake no one; if no thread is left, a doorbell (a
pipe the reading threads also wait on) wakes a reader. While the reader runs
its call nobody waits for input (a second waiting thread would be woken for
each frame while the first polls for it, ``Spin``): a parked thread reads in
its place when a call waits for the driver (``want_reader``), or when calls
still run as the timer thread wakes (within ``Channel.HOLD``), and the
reader reads again when its call ends. When all N are busy, the thread of
``reading.Reading`` (which never runs calls) reads for them, and it goes
back to waiting on its own lock after a read that finds a thread idle.

Calls start in the order they came (their start is stamped under the lock as
they leave one FIFO backlog); each thread is one slot, 0 to N - 1.
"""
from __future__ import annotations

import collections
import os
import select
import threading
import time

from .._spin import Spin
from .channel import readers_epoll
from .executors import _EXIT, BacklogCalls, SyncExecutor, _IdleSlot

_READ = object()   # a parked thread's order: wait for input
READERS = 1        # threads waiting for input while the actor is idle


class ReadingPoolExecutor(BacklogCalls, SyncExecutor):
    """N threads that read calls and run what they read (see the module's text)."""

    def __init__(self, worker, max_concurrency: int, on_exit):
        super().__init__(worker, max_concurrency, None)
        self.on_exit = on_exit        # called, in a thread that saw "exit" last, to leave
        # Calls read (``submit``, under the read lock) and not yet started: a reader
        # starts or hands them out just after (_after_read / run_pending).
        self.backlog: collections.deque = collections.deque()
        self.busy = 0                 # threads given a call, at most max_concurrency
        self.readers = 0              # threads waiting for input (or told to)
        self.parked: list = []        # _IdleSlot of threads waiting for a call or a turn to read
        self.started = False
        # The reading thread reads while the constructor runs, and whenever all
        # N threads are busy; otherwise it waits on this lock.
        self.reader_active = True
        self.reader_wake = threading.Lock()
        self.reader_wake.acquire()
        self.bell_in, self.bell_out = os.pipe()
        os.set_blocking(self.bell_in, False)
        os.set_blocking(self.bell_out, False)
        self.epoll = None    # (Linux) the one epoll the threads wait on, made in run()

    def run(self) -> None:
        """The instance exists: N threads (this one is slot 0) read and run calls."""
        slots = [_IdleSlot() for _ in range(self.max_concurrency)]
        self.epoll = readers_epoll(self.worker.reading.sock, self.bell_in)
        with self.lock:
            self.started = True
            self.readers = min(READERS, len(slots))
            self.parked = slots[self.readers:][::-1]   # lowest slot on top
        for slot in range(1, self.max_concurrency):
            threading.Thread(target=self._serve, args=(slot, slots[slot]), daemon=True,
                             name=f"actor-slot-{slot}").start()
        self._serve(0, slots[0])

    def _serve(self, slot: int, me: _IdleSlot) -> None:
        wait = _waiter(self.worker.reading.sock, self.bell_in, self.epoll)
        read_once = self.worker.reading.read_once
        bell_in = self.bell_in
        if slot >= READERS:
            item = self._park(me)
        else:
            item = self._after_read(me)  # calls that queued while the constructor ran
        while True:
            while item is not None:
                item = self._run_calls(item, slot, me)
            readable, rung = wait()
            if rung:
                try:
                    os.read(bell_in, 1)
                except BlockingIOError:
                    pass  # another idle thread answered this ring
            if readable:
                read_once()
            item = self._after_read(me)

    def _after_read(self, me: _IdleSlot):
        """What this reading thread does next: a call to run, or None (read on)."""
        with self.lock:
            item = self._take()
            if item is not None and item is not _EXIT:
                self.readers -= 1
            ring = self._hand_out()
        if ring:
            self._ring()
        return item

    def want_reader(self) -> None:
        """Calls run and no thread waits for input (see the module's text): a parked
        thread reads now."""
        with self.lock:
            if self.readers or not self.parked or self.busy >= self.max_concurrency:
                return
            promoted = self.parked.pop()
            promoted.call = _READ
            self.readers += 1
            promoted.wake.release()

    def _run_calls(self, item, slot: int, me: _IdleSlot):
        """Run the call, then those waiting; None when this thread should read.

        As in ``InlineExecutor._drain``, the next call is taken before the end of the
        one before is sent, and its start goes out with that end in one step; the
        thread's place among the busy ones is kept until its last end is out, so no
        other thread starts a call in its place before that. The end is written at
        once, never held back for the next call's company: that call may hold the
        GIL (a long C call) and keep the timer thread from sending it.
        """
        if item is _EXIT:
            self.on_exit()
        call, start = item
        lock, running = self.lock, self.running
        self.worker.channel.started(call.call_id, start, slot)
        while True:
            try:
                outcome, *values = self._call(call, slot, start)  # values: kept until sent
            except KeyboardInterrupt:
                outcome = None  # raised after the call ended (it is not interruptible)
            with lock:
                running.discard(call.call_id)
                self.busy -= 1
                item = self._take()
                if item is None:
                    self.busy += 1  # still this thread's until its end is out
            if item is None or item is _EXIT:
                self._finish(outcome, False)
                outcome = values = None  # nothing of the call outlives its end
                if item is _EXIT:
                    self.on_exit()
                break
            call, start = item
            self._finish(outcome, False, (call.call_id, start, slot))
            outcome = values = None  # nothing of the call outlives its end
        with lock:
            self.busy -= 1
            item = self._take()
            if item is not None:
                return item
            if self.readers < READERS:
                self.readers += 1
                return None
            self.parked.append(me)
        return self._park(me)

    def _park(self, me: _IdleSlot):
        me.wake.acquire()
        item = me.call
        if item is _READ:
            return None
        # Woken with a call: wake the next parked thread if calls are still waiting
        # (before running this one, which may block), so each call that may start
        # gets a thread, one wake-up after another. Short calls run meanwhile by the
        # threads awake empty the backlog first: no wake-up for each parked thread.
        with self.lock:
            ring = self._hand_out()
        if ring:
            self._ring()
        return item

    def run_pending(self) -> None:
        """After a read by the reading thread (``Reading.thread_loop``): hand out the
        calls read, and wait on its lock while a thread is idle."""
        with self.lock:
            if not self.started:
                return
            item = self._take(reader=True)
            ring = self._hand_out()
            idle = self.busy < self.max_concurrency
            if idle:
                self.reader_active = False
        if item is _EXIT:
            self.on_exit()
        if ring:
            self._ring()
        if idle:
            self.reader_wake.acquire()  # until all N threads are busy again

    def _head(self):
        """The first call waiting that was not cancelled meanwhile, or _EXIT, or None
        (lock held; cancelled calls are dropped: cancel() has answered for them)."""
        backlog, queued = self.backlog, self.queued
        while backlog:
            call = backlog[0]
            if call is _EXIT or call.call_id in queued:
                return call
            backlog.popleft()
        return None

    def _take(self, reader: bool = False):
        """``(call, start)`` for the next call to start, or None, or _EXIT when "exit" is
        next and nothing runs (lock held). The reading thread only takes "exit"."""
        call = self._head()
        if call is None:
            return None
        if call is _EXIT:
            return _EXIT if not self.busy else None  # the last call to end leaves
        if reader or self.busy >= self.max_concurrency:
            return None
        self.backlog.popleft()
        self.queued.discard(call.call_id)
        self.running.add(call.call_id)
        self.busy += 1
        if self.busy == self.max_concurrency and not self.reader_active:
            self.reader_active = True   # all busy: the reading thread reads for them
            self.reader_wake.release()
        # Stamped under the lock: calls start in the order they came.
        return call, time.monotonic()

    def _hand_out(self) -> bool:
        """Give a parked thread the next call that may start (lock held; that thread
        passes the next one on: see ``_park``); whether calls that may start are left
        for the threads waiting for input (ring the doorbell)."""
        if self.busy >= self.max_concurrency:
            return False
        call = self._head()
        if call is None or call is _EXIT:
            return False
        if not self.parked:
            return True
        me = self.parked.pop()
        me.call = self._take()
        me.wake.release()
        return False

    def _ring(self) -> None:
        try:
            os.write(self.bell_out, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of rings: idle threads are on their way


def _waiter(sock, bell: int, epoll):
    """``wait() -> (socket readable, doorbell rung)`` for one idle thread."""
    fileno = sock.fileno()
    if epoll is not None:
        # Linux: the threads' one epoll (channel.readers_epoll): input wakes one of the
        # idle threads, once; a ring wakes one (another, if more rings are left).
        spin = Spin()   # (a thread that ran a call polls a little for the next)
        poll = epoll.poll

        def wait():
            events = (spin.due() and spin.poll(poll)) or poll()
            if not events:
                return False, False
            if len(events) == 2:
                return True, True
            return (events[0][0] == fileno), (events[0][0] == bell)
        return wait
    if hasattr(select, "poll"):
        poll = select.poll()
        poll.register(fileno, select.POLLIN)
        poll.register(bell, select.POLLIN)

        def wait():
            fds = [fd for fd, _ in poll.poll()]
            return fileno in fds, bell in fds
        return wait

    def wait():
        fds = select.select([fileno, bell], [], [])[0]
        return fileno in fds, bell in fds
    return wait
