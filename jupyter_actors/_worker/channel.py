"""The worker's end of the socket: thread-safe sends, held-back frames, waiting for input."""
from __future__ import annotations

import select
import socket
import threading
import time

from .._wire import frames
from .._wire.messages import CallFailed, CallOk, CallStarted
from .._wire.messages import new as _new

# The ends of a call that carry its start time (a cancelled call's end does not).
_ENDS_WITH_START = (CallOk, CallFailed)


class Channel:
    """The worker's end of the socket: thread-safe sends; reading threads wait through it.

    ``send_soon`` holds a frame back so that it travels with the next one (a
    short call's "start" and its result then cost one write, and wake the
    driver once). Held results of one plain value each (most calls) are kept
    unencoded until something else goes out: a run of them is then one
    ``CallsOk`` frame, encoded once here and decoded once by the driver.

    One thread at a time writes, outside the lock. Results that other threads
    send meanwhile are not waited for: that thread writes them right after
    (the threads of a threaded actor that end calls together cost one write,
    not a queue of threads waiting for the socket); other frames wait until
    they are written.

    Held frames always go out before any later frame, and the flushing thread
    (see Reading) sends them when nothing else did within ``HOLD``: its waits
    end by then (``wait_readable``). A frame is held only
    while that thread's current wait ends within ``HOLD``, or when that thread
    (an actor's timer thread) can be nudged to cut a longer wait short.

    A call's "start" (``started``) is held the same way but not even encoded
    until something else goes out: when its own result goes first, the start
    is dropped (the result carries the start time), so a short call costs one
    message.
    """

    HOLD = 0.002              # longest a frame is held back, in seconds
    MAX_POLL = 1.0            # the longest wait of a thread watching the socket

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()
        self.held = bytearray()
        self.oks: list = []         # held ends for one CallsOk frame (newer than ``held``)
        self.starts: dict = {}      # call_id -> its held CallStarted (newer than ``held``)
        self.poll_ends: dict = {}   # Poller -> when its current poll ends
        self.writes = 0             # counts writes, so a waiting thread sees activity
        self.corked = 0             # > 0: sends are held until uncork() (see cork)
        # One thread at a time writes, outside the lock; what others send meanwhile
        # is held, and that thread writes it before it stops (see _write).
        self.writing = False
        self.written = threading.Condition(self.lock)  # notified when writing stops
        self.waiting_writers = 0

    def send(self, message) -> None:
        # A result joins the ends held before it (one frame for the run); with
        # none held it is its own frame. (Read without the lock: either way the
        # frames keep their order.)
        end = frames.ok_end(message) if self.oks or self.corked or self.writing else None
        parts = frames.encode(message) if end is None else None
        with self.lock:
            if self.starts:
                self._hold_starts(message)
            if end is not None:
                self.oks.append(end)
                parts = ()
            elif self.corked or self.writing or self.held or self.oks:
                self._close_oks()
                for p in parts:
                    self.held += p
                parts = ()
            if self.corked:
                return
            if self.writing:
                if type(message) in _ENDS_WITH_START:
                    return  # the thread writing now sends it next, with any others
                self.waiting_writers += 1
                while self.writing:  # everything else is written when send returns
                    self.written.wait()
                self.waiting_writers -= 1
                if self.corked:
                    return
            parts = self._start_writing(parts)
            if not parts:
                return
        self._write(parts)

    def send_soon(self, message) -> None:
        """Send ``message`` with the next frame, and within HOLD seconds at the latest."""
        end = frames.ok_end(message)
        parts = frames.encode(message) if end is None else None
        with self.lock:
            if self._may_hold():
                if self.starts:
                    self._hold_starts(message)
                if end is not None:
                    self.oks.append(end)  # encoded with the run it ends up in
                    return
                self._close_oks()
                for p in parts:   # copied: the frame must not change while held
                    self.held += p
                return
        self.send(message)  # no poll ends soon enough: do not hold anything back

    def started(self, call_id, t: float, slot: int) -> None:
        """A call started: say so with the next frame (or within HOLD), unless its result
        is that frame."""
        with self.lock:
            # Starts held already: the flusher is due within HOLD of the first of them.
            if self.starts or self._may_hold():
                self.starts[call_id] = (t, slot)  # a CallStarted only if it is sent
                return
        self.send(_new(CallStarted, (call_id, t, slot)))

    def send_end(self, end: tuple, soon: bool = False, next_start=None) -> None:
        """``send`` (``send_soon`` if ``soon``) of a plain ``CallOk``, given as its
        ``frames.ok_end`` tuple, then ``started(*next_start)`` if given: what most calls
        send, in one step under the lock."""
        with self.lock:
            starts = self.starts
            if starts:
                starts.pop(end[0], None)  # the end carries its start
                if starts and not self.corked:
                    self._hold_starts(None)  # the other calls' starts go first
            self.oks.append(end)
            may_hold = None
            if next_start is not None:
                call_id, t, slot = next_start
                if starts or (may_hold := self._may_hold()):
                    starts[call_id] = (t, slot)   # as started() holds it
                else:
                    self._close_oks()   # it goes now, after the end
                    for p in frames.encode(_new(CallStarted, next_start)):
                        self.held += p
            if self.corked or self.writing:
                return  # taken along by the thread writing now (or by uncork)
            if soon and (may_hold if may_hold is not None else self._may_hold()):
                return  # held: it rides with the next frame, or goes within HOLD
            if self.held or len(self.oks) > 1:
                parts = self._start_writing(())
            else:  # a lone end: the frame of one CallOk
                self.oks.clear()
                parts = self._start_writing([frames.encode_ok(end)])
        self._write(parts)

    def send_ends(self, messages: list) -> None:
        """Send many calls' ends in one write (an async actor's calls that finished
        together). Their own held starts are dropped, the others go first."""
        frames_out = []
        run = []   # consecutive plain ends: one CallsOk frame
        for message in messages:
            end = frames.ok_end(message)
            if end is not None:
                run.append(end)
                continue
            if run:
                frames_out.append(frames.encode_oks(run))
                run = []
            frames_out.extend(frames.encode(message))
        with self.lock:
            starts = self.starts
            if starts:
                for message in messages:
                    if type(message) in _ENDS_WITH_START:
                        starts.pop(message.call_id, None)
                if starts:
                    self._hold_starts(None)
            self._close_oks()
            held = self.held
            for p in frames_out:
                held += p
            self.oks.extend(run)  # later ends may join them
            if self.corked or self.writing:
                return  # (the thread writing now sends them next)
            parts = self._start_writing(())
        self._write(parts)

    def _start_writing(self, parts):
        """This thread becomes the one writing (lock held): what to write, ``parts``
        after what is held; () when there is nothing."""
        if self.held or self.oks:
            self._close_oks()
            parts = [bytes(self.held), *parts]
            self.held.clear()
        if parts:
            self.writing = True
            self.writes += 1
        return parts

    def _write(self, parts) -> None:
        """Write ``parts`` outside the lock, then what other threads held meanwhile;
        then stop being the thread writing. Threads that send while a write is
        under way do not wait for the socket: results are left for this thread to
        take along (one frame for all that ended meanwhile), other frames wait."""
        try:
            while True:
                _sendmsg_all(self.sock, parts)
                with self.lock:
                    if self.corked or not (self.held or self.oks):
                        self._stop_writing()
                        return
                    self._close_oks()
                    parts = [bytes(self.held)]
                    self.held.clear()
                    self.writes += 1
        except BaseException:
            with self.lock:
                self._stop_writing()
            raise

    def _stop_writing(self) -> None:
        self.writing = False
        if self.waiting_writers:
            self.written.notify_all()

    def _may_hold(self) -> bool:
        ends = self.poll_ends
        if not ends:
            return False
        if min(ends.values()) - time.monotonic() <= self.HOLD:
            return True
        # Every flushing thread is in a long wait (the worker was quiet): one that
        # can be nudged cuts it short to HOLD, so the frame may wait for company.
        # (A burst after a pause would otherwise send each call's "start" alone:
        # a write, and a wake-up of the driver, per call.)
        for poller in ends:
            nudge = poller.nudge
            if nudge is not None:
                if not nudge.is_set():
                    nudge.set()
                return True
        return False

    def _hold_starts(self, message) -> None:
        """Encode the held starts into ``held`` before ``message`` (lock held); the start
        of the call that ``message`` ends is dropped, the end carries its time. While
        corked, an end leaves the other starts held (encoded at ``uncork``, unless
        their own ends drop them first)."""
        starts = self.starts
        if type(message) in _ENDS_WITH_START:
            starts.pop(message.call_id, None)
            if self.corked:
                return  # many ends go out together: theirs are dropped as they come
        if starts:
            self._close_oks()
        for call_id, (t, slot) in starts.items():
            for p in frames.encode(_new(CallStarted, (call_id, t, slot))):
                self.held += p
        starts.clear()

    def _close_oks(self) -> None:
        """Encode the held ends as one frame at the end of ``held`` (lock held): done
        before anything else is held or written, so frames keep their order."""
        oks = self.oks
        if oks:
            self.held += frames.encode_oks(oks)
            oks.clear()

    def cork(self) -> None:
        """Hold every send until ``uncork()``, which writes them at once: many results
        ready together (an async actor's calls that finish in one turn of its loop)
        cost one write and one wake-up of the driver."""
        with self.lock:
            self.corked += 1

    def uncork(self) -> None:
        with self.lock:
            self.corked -= 1
            if not self.corked:
                self._send_held()

    def flush(self) -> None:
        """Write everything held, and wait for a write under way (before the worker exits)."""
        with self.lock:
            self.waiting_writers += 1
            while self.writing:
                self.written.wait()
            self.waiting_writers -= 1
            self._send_held()

    def _send_held(self) -> bool:
        """Write the held frames, if any (lock held); whether there were some. While
        another thread writes, that thread sends them next."""
        if self.starts:
            self._hold_starts(None)
        self._close_oks()
        if not self.held:
            return False
        if self.writing:
            return True
        data = bytes(self.held)
        self.held.clear()
        _sendmsg_all(self.sock, [data])
        return True

    def wait_readable(self, poller: "Poller") -> bool:
        """Wait for input; send held frames when their time is up.

        True when the socket is readable. The flushing thread's poll grows
        while the worker is quiet (no input, nothing written) and shrinks
        again on any activity; the other threads' polls stay long.
        """
        if not poller.flushes:
            return bool(poller.wait(self.MAX_POLL))
        with self.lock:
            self.poll_ends[poller] = time.monotonic() + poller.timeout
            writes = self.writes
        ready = poller.wait(poller.timeout)
        with self.lock:
            del self.poll_ends[poller]
            if ready:
                poller.timeout = self.HOLD
                return True
            if poller.nudged():
                poller.timeout = self.HOLD  # something was just held: it waits HOLD at most
                return False
            if self._send_held():
                poller.timeout = self.HOLD
            elif self.writes != writes:
                poller.timeout = self.HOLD
            else:
                poller.timeout = min(poller.timeout * 2, self.MAX_POLL)
        return False


class Poller:
    """One thread's wait for input on the worker's socket (``sock=None``: only a timed wait).

    Only a ``flushes`` poller wakes on time to send held-back frames: one
    is enough, and a threaded actor with many threads must not have them
    all waking every HOLD seconds while it is busy.
    """

    def __init__(self, sock: socket.socket | None, flushes: bool, shared=None):
        self.flushes = flushes
        self.timeout = Channel.HOLD
        self.nudge = None   # set: a frame was held while this poller waited long
        if sock is None:
            nudge = self.nudge = threading.Event()
            self.wait = lambda timeout: nudge.wait(timeout) and False  # never "readable"
        elif shared is not None:
            # Linux: the readers' one epoll (readers_epoll): input wakes one thread.
            self.wait = shared.poll
        elif hasattr(select, "poll"):
            poll = select.poll()
            poll.register(sock, select.POLLIN)
            self.wait = lambda timeout: poll.poll(timeout * 1000)
        else:
            self.wait = lambda timeout: select.select([sock], [], [], timeout)[0]

    def nudged(self) -> bool:
        """Whether the wait just ended was cut short by a held frame (and re-arm)."""
        nudge = self.nudge
        if nudge is None or not nudge.is_set():
            return False
        nudge.clear()
        return True


def readers_epoll(sock: socket.socket, *others: int):
    """Linux: one epoll for all the threads that wait for input on ``sock``; None elsewhere.

    The socket is in it edge-triggered, so input wakes one waiting thread and
    is reported once: with an epoll per thread, a thread that was busy when
    input came finds it in its own epoll as well, and two threads wake for one
    frame and fight over it (and over the GIL). Whoever is woken must read
    until the socket is empty (``Reading``). ``others`` (a doorbell) are
    level-triggered.
    """
    if not hasattr(select, "EPOLLET"):
        return None
    try:
        epoll = select.epoll()
    except OSError:
        return None  # no descriptor left: each thread polls on its own
    try:
        # Exclusive too: another epoll that also watches the socket (the reading
        # pool's and the reading thread's) is not woken for the same input.
        epoll.register(sock, select.EPOLLIN | select.EPOLLET |
                       getattr(select, "EPOLLEXCLUSIVE", 0))
    except OSError:  # a kernel without EPOLLEXCLUSIVE (before 4.5)
        epoll.register(sock, select.EPOLLIN | select.EPOLLET)
    for fd in others:
        epoll.register(fd, select.EPOLLIN)
    return epoll


def _sendmsg_all(sock: socket.socket, parts: list) -> None:
    sent = sock.sendmsg(parts)
    if len(parts) == 1 and type(parts[0]) is bytes and sent == len(parts[0]):
        return  # the common frame: one piece of bytes, written whole
    views = [memoryview(p).cast("B") for p in parts]
    while views and sent >= views[0].nbytes:
        sent -= views[0].nbytes
        views.pop(0)
    if sent and views:
        views[0] = views[0][sent:]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= views[0].nbytes:
            sent -= views[0].nbytes
            views.pop(0)
        if sent and views:
            views[0] = views[0][sent:]
