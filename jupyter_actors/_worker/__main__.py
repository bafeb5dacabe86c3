"""The worker process: one actor, or a slot of the remote-function pool.

Forked by the zygote (``zygote.py``, started as ``python -c "from
jupyter_actors._worker.__main__ import main; main()" zygote CONTROL_FD
LIFELINE_FD PPID``) with its end of a socketpair received as FD, or,
where fork is unavailable, started as ``python -m jupyter_actors._worker FD
PPID`` with it inherited. Threads:

    remote functions,        async actor                    threaded actor
    concurrency groups       ───────────                    ──────────────
    ─────────────────────    main thread: the event loop    N threads (two when
    reader thread: frames    reads the socket and runs      max_concurrency is 1)
    → queue(s) → the         every method                   that each read and run
    threads that run them                                   what they read; one
                                                            waits for input, the
                                                            rest stay parked

Handing each call from a reading thread to a running one costs a thread
wake-up, about a fifth of a short call's round trip, so actors skip it (see
Reading, InlineExecutor and ReadingPoolExecutor). Only one thread waits for
input, so a frame wakes one thread; a parked thread takes over reading when
the running call waits for the driver (get, wait, a prompt, a generator's
backpressure) or is still running when the timer thread next wakes (within
a few milliseconds), so a long call holds up neither cancels nor other calls
for longer than that. Before an actor's constructor has run, a reader thread
reads for it (the constructor may get() a ref argument), and in actors the
timer thread also sends frames held back too long (Channel.send_soon).

Results, output lines and look-ups go back on the same socket under a lock;
each call's output lines are sent before its result. The modules beside this
one: ``channel`` (sending), ``reading`` (receiving and dispatch), ``roles``
(actor or task worker), ``executors`` and ``async_executor`` (running calls),
``calls`` (arguments and results), ``capture`` (stdout/stderr), ``worker``
(what they share).
"""
from __future__ import annotations

import _thread
import os
import signal
import socket
import sys

from .. import _ids
from .._api import refs as _refs
from .._api import session
from .._wire import frames
from .._wire.messages import BecomeTaskWorker, CreateActor
from .._wire.payloads import set_session_dir
from . import calls
from .channel import Channel
from .client import ClientBackend
from .reading import driver_gone, first_messages
from .roles import run_actor, run_tasks
from .streams import Producer
from .worker import Worker


def die_with_parent(parent_pid: int) -> None:
    """On Linux, ask the kernel to kill us if the driver dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes   # here: the zygote asks only after its first fork (zygote.py)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:
            pass
    if os.getppid() != parent_pid:
        os._exit(0)


def watch_lifeline(lifeline_fd: int) -> None:
    """A forked worker's driver is not its parent: end when the driver's end of the
    lifeline closes (the driver exited or was killed)."""
    def wait():
        try:
            while os.read(lifeline_fd, 1):
                pass
        except OSError:
            pass
        driver_gone()
    # A bare thread: threading's start() waits until the new thread has run, and on a
    # busy machine that wait was a large part of a worker's start; this one has nothing
    # to do before the driver ends.
    _thread.start_new_thread(wait, ())


def main() -> None:
    os.environ.pop("JUPYTER_ACTORS_WORKER", None)  # not for processes a worker starts
    if sys.argv[1] == "zygote":
        from .zygote import serve
        control_fd, lifeline_fd, driver_pid = (int(arg) for arg in sys.argv[2:5])
        serve(control_fd, lifeline_fd, driver_pid, run, die_with_parent)
        return
    fd, parent_pid = int(sys.argv[1]), int(sys.argv[2])
    die_with_parent(parent_pid)
    run(fd, parent_pid)


def run(fd: int, parent_pid: int, lifeline_fd: int | None = None) -> None:
    """Be a worker on the socket ``fd`` for the driver ``parent_pid``."""
    if lifeline_fd is not None:
        watch_lifeline(lifeline_fd)
    # The driver handles Ctrl-C; a worker never dies of the kernel's SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_session_dir(os.environ.get("JUPYTER_ACTORS_SESSION_DIR"))
    sock = socket.socket(fileno=fd)
    channel = Channel(sock)
    worker = Worker(channel)
    sys.stdout = worker.stdout
    sys.stderr = worker.stderr
    worker.prompts.install()
    worker.bars.install()
    _ids.use_process_prefix()  # ids picked here must not clash with the driver's
    client = worker.client = ClientBackend(worker)
    worker.producer = calls.stream_producer = Producer(worker)
    session.use_backend(client, parent_pid)
    _refs.IN_WORKER = True
    _refs.set_resolver(client.ref_arrived)
    decoder = frames.FrameDecoder()
    batch = first_messages(sock, decoder)
    if not batch:
        driver_gone()
    first, early = batch[0], batch[1:]
    if type(first) is CreateActor:
        run_actor(worker, sock, decoder, first, early)
    elif type(first) is BecomeTaskWorker:
        run_tasks(worker, sock, decoder, first, early)
    else:
        driver_gone()


if __name__ == "__main__":
    main()
