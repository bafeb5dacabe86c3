"""Threads blocked in get() read their workers' replies themselves: results, output and Ctrl-C
behave as when the I/O thread read them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import jupyter_actors as ray
from jupyter_actors._api import session
from jupyter_actors._output import OutputRouter
from tests.helpers import GUARD


class _Lines(OutputRouter):
    """Remembers every line workers print (a router as the Jupyter layer installs one)."""

    def __init__(self):
        self.lines: set = set()
        self.lock = threading.Lock()

    def write(self, context, stream, prefix, text):
        with self.lock:
            self.lines.update(text.splitlines())

    def has(self, line) -> bool:
        with self.lock:
            return line in self.lines


@ray.remote(max_concurrency=4)
class Meeting:
    def __init__(self):
        self.barrier = threading.Barrier(4, timeout=GUARD)

    def meet(self, tag):
        print(f"meet {tag}")
        self.barrier.wait()  # all four calls run at once: four callers wait at once
        return tag

    def echo(self, tag):
        print(f"echo {tag}")
        return tag


@ray.remote
class Solo:
    def echo(self, tag):
        print(f"solo {tag}")
        return tag


@ray.remote
class Doomed:
    """Dies 50 ms after answering ``die_soon``; ``wait`` never answers."""

    def die_soon(self):
        threading.Timer(0.05, os._exit, (3,)).start()
        return "later"

    def wait(self):
        threading.Event().wait(GUARD)


def test_threads_waiting_at_once_each_get_their_own_result_after_its_output():
    ray.init()
    router, previous = _Lines(), session.output_router()
    session.set_output_router(router)
    try:
        shared, solos = Meeting.remote(), [Solo.remote() for _ in range(4)]
        errors = []

        def caller(n):
            try:
                for round_ in range(3):
                    tag = f"{n}-{round_}"
                    # Four callers block on one socket; one reply each, whoever reads it.
                    assert ray.get(shared.meet.remote(tag), timeout=GUARD) == tag
                    assert router.has(f"meet {tag}")
                    for i in range(50):
                        tag = f"{n}-{round_}-{i}"
                        target = shared if i % 2 else solos[n]
                        assert ray.get(target.echo.remote(tag), timeout=GUARD) == tag
                        assert router.has(f"{'echo' if i % 2 else 'solo'} {tag}")
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(GUARD * 2)
        assert not any(t.is_alive() for t in threads), "a caller never got its result"
        assert not errors, errors
    finally:
        session.set_output_router(previous)



@ray.remote
class Gate:
    """Holds a call until the test opens its file event; echoes others at once."""

    def wait_for(self, path):
        from tests.helpers import FileEvent
        assert FileEvent(path).wait(GUARD)
        return "through"

    def echo(self, x):
        return x


def test_get_times_out_while_reading_and_the_ref_stays_usable(events):
    ray.init()
    go = events("go")

    gate = Gate.remote()
    ref = gate.wait_for.remote(go.path)
    try:
        ray.get(ref, timeout=0.05)
    except ray.exceptions.GetTimeoutError:
        pass
    else:
        raise AssertionError("get() returned before the call could end")
    go.set()
    assert ray.get(ref, timeout=GUARD) == "through"


STORM = textwrap.dedent("""
    import os, signal, sys, threading
    import jupyter_actors as ray

    @ray.remote
    class Echo:
        def echo(self, i):
            print(f"line {i}")
            return i

    ray.init()
    actor = Echo.remote()
    main = threading.get_ident()
    in_get = [False]  # set and cleared without a call, where no interrupt can land
    stop = threading.Event()
    lock = threading.Lock()

    def interrupter():
        while not stop.is_set():
            with lock:  # only while the main thread waits in get(), never in .remote()
                if in_get[0]:
                    signal.pthread_kill(main, signal.SIGINT)
            stop.wait(0.0005)

    def nothing():
        pass

    refs, interrupted = {}, 0
    threading.Thread(target=interrupter, daemon=True).start()
    for i in range(3000):
        try:
            ref = actor.echo.remote(i)
            refs[i] = ref
            with lock:
                in_get[0] = True
            try:
                assert ray.get(ref) == i
            finally:
                with lock:
                    in_get[0] = False
            # The interrupter sent its last signal before it let go of the lock: this system
            # call delivers it if it is still pending, and the call after raises it.
            os.getppid()
            nothing()
        except KeyboardInterrupt:
            interrupted += 1
    stop.set()
    # Every call ran and its result arrived, interrupted or not; the actor still answers.
    values = ray.get(list(refs.values()), timeout=30)
    assert values == list(refs), "a result was lost"
    assert ray.get(actor.echo.remote(-1), timeout=30) == -1
    print("interrupted", interrupted, file=sys.stderr)
""")


def test_ctrl_c_storm_during_sync_calls_loses_no_result_and_no_output():
    proc = subprocess.run([sys.executable, "-c", STORM], capture_output=True, text=True,
                          timeout=GUARD * 4, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    interrupted = int(proc.stderr.split("interrupted")[-1])
    assert interrupted > 0, "no interrupt landed in get(): the test proved nothing"
    lines = [line.split(") ", 1)[1] for line in proc.stdout.splitlines()]
    assert lines == [f"line {i}" for i in range(3000)] + ["line -1"]


def test_ctrl_c_storm_with_the_io_thread_reading_every_reply():
    """JUPYTER_ACTORS_CALLERS_READ=0: the path of systems where callers cannot read."""
    env = dict(os.environ, JUPYTER_ACTORS_CALLERS_READ="0")
    proc = subprocess.run([sys.executable, "-c", STORM], capture_output=True, text=True,
                          timeout=GUARD * 4, env=env,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line.split(") ", 1)[1] for line in proc.stdout.splitlines()]
    assert lines == [f"line {i}" for i in range(3000)] + ["line -1"]


def test_done_callbacks_run_on_the_io_thread_not_in_the_reading_caller(events):
    """A callback of a ref's future runs where it did before callers read their replies (the
    I/O thread, without its lock): one that blocks holds up neither the caller nor Ctrl-C."""
    ray.init()
    go = events("go")

    gate = Gate.remote()
    assert ray.get(gate.echo.remote(0), timeout=GUARD) == 0  # this thread watches its socket
    ref = gate.wait_for.remote(go.path)
    seen, release, finished = [], threading.Event(), threading.Event()

    def callback(_future):
        seen.append(threading.current_thread().name)
        release.wait(GUARD)
        finished.set()

    ref.future().add_done_callback(callback)
    go.set()
    assert ray.get(ref, timeout=GUARD) == "through"
    # The callback still blocks, and this thread's calls go on.
    assert ray.get(gate.echo.remote(7), timeout=GUARD) == 7
    release.set()
    assert finished.wait(GUARD)
    assert seen == ["jupyter_actors-io"]


def test_a_caller_polling_for_its_reply_gets_it_its_output_and_its_actors_death(events,
                                                                               monkeypatch):
    """A caller that polls for its reply before sleeping (forced here: the machine counts as
    idle and a poll lasts long) gets each result after its output; meanwhile the I/O thread
    does not watch that socket, and it watches it again after: a ref nobody waits for
    still completes, and an actor that dies while a caller polls fails its call at once."""
    from jupyter_actors import _spin
    monkeypatch.setattr(_spin._cores, "spare", lambda now: True)
    monkeypatch.setattr(_spin.Spin, "TIME", 0.2)
    ray.init()
    router, previous = _Lines(), session.output_router()
    session.set_output_router(router)
    try:
        solo = Solo.remote()
        for i in range(200):
            assert ray.get(solo.echo.remote(i), timeout=GUARD) == i
            assert router.has(f"solo {i}")
        gate, go = Gate.remote(), events("go")
        assert ray.get(gate.echo.remote(0), timeout=GUARD) == 0
        ref = gate.wait_for.remote(go.path)  # nobody waits on it: the I/O thread reads it
        go.set()
        assert ref.future().result(timeout=GUARD) == "through"

        doomed = Doomed.remote()
        assert ray.get(doomed.die_soon.remote(), timeout=GUARD) == "later"
        with pytest.raises(ray.exceptions.ActorDiedError):
            ray.get(doomed.wait.remote(), timeout=GUARD)
    finally:
        session.set_output_router(previous)


FORK = textwrap.dedent("""
    import multiprocessing, os, sys
    import jupyter_actors as ray
    from tests.helpers import FileEvent

    @ray.remote
    class Gate:
        def wait_for(self, path):
            assert FileEvent(path).wait(30)
            return "value"

        def echo(self, x):
            return x

    def child(ref, queue):
        try:
            queue.put("waiting")
            queue.put(("got", ray.get(ref, timeout=2)))
        except BaseException as exc:
            queue.put(("raised", type(exc).__name__))

    ray.init()
    gate = Gate.remote()
    for i in range(3):  # the main thread watches its socket, ahead of the I/O thread
        assert ray.get(gate.echo.remote(i), timeout=30) == i
    path = sys.argv[1]
    ref = gate.wait_for.remote(path)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(ref, queue))
    process.start()
    assert queue.get(timeout=30) == "waiting"  # the reply comes while the child waits
    FileEvent(path).set()
    print(queue.get(timeout=30))
    process.join(30)
    print(ray.get(ref, timeout=30), ray.get(gate.echo.remote(3), timeout=30))
""")


def test_a_forked_child_never_takes_the_parents_reply(tmp_path):
    """A child forked from the driver shares its sockets and epolls: its get() must not
    read them (it waits as before, for a reply that is not its own)."""
    proc = subprocess.run([sys.executable, "-c", FORK, str(tmp_path / "go")],
                          capture_output=True, text=True, timeout=GUARD * 4,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    child, parent = proc.stdout.splitlines()[-2:]
    assert child == "('raised', 'GetTimeoutError')"
    assert parent == "value 3"


CTRL_C_WHILE_REWATCHING = textwrap.dedent("""
    import os, signal, sys, threading, time
    import jupyter_actors as ray
    from jupyter_actors import _spin
    from jupyter_actors._api import session
    from jupyter_actors._backend.local import waiting

    _spin._cores.spare = lambda now: True   # the machine counts as idle: callers poll
    _spin.Spin.due = lambda self: True

    @ray.remote(max_concurrency=2)
    class Gate:
        def hold(self):
            threading.Event().wait(30)

        def echo(self, x):
            return x

    ray.init()
    gate = Gate.remote()
    for i in range(3):   # the main thread watches the actor's socket
        assert ray.get(gate.echo.remote(i), timeout=30) == i
    io = session.backend().runtime.io
    main = threading.main_thread().ident
    holding, release = threading.Event(), threading.Event()

    def hold_io_lock():   # on the I/O thread, which holds its lock while it runs this
        holding.set()
        release.wait(30)

    def press_ctrl_c(record):
        deadline = time.monotonic() + 30
        # The caller polls (the watch is off) and has read the call's start: it waits
        # in poll() now, and takes the I/O lock next when its get times out.
        while not (io.unwatched and record.started is not None):
            assert time.monotonic() < deadline
            time.sleep(0.001)
        io.call_soon(hold_io_lock)
        assert holding.wait(30)
        # The caller's get times out and gives the watch back: it waits for the lock.
        while sys._current_frames()[main].f_code.co_name != "rewatch":
            assert time.monotonic() < deadline
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)
        while sys._current_frames()[main].f_code.co_name == "rewatch" \\
                and not waiting._held_back:   # the Ctrl-C has reached the main thread
            assert time.monotonic() < deadline
            time.sleep(0.001)
        release.set()

    held = gate.hold.remote()
    threading.Thread(target=press_ctrl_c, args=(held._owner,), daemon=True).start()
    try:
        ray.get(held, timeout=3)
        print("no Ctrl-C")
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    ref = gate.echo.remote("read by the I/O thread")   # nobody waits in get() for it
    print(ref.future().result(timeout=10))
""")


def test_a_ctrl_c_while_a_caller_gives_back_the_watch_it_polled_with_is_raised_after():
    """A caller that polled for its reply took the I/O thread's watch of that socket
    off; a Ctrl-C that lands while it waits for the I/O lock to put the watch back is
    raised once the watch is back: a ref nobody waits on in get() still completes."""
    done = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_REWATCHING], capture_output=True,
                          text=True, timeout=GUARD * 2, cwd=os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__))))
    assert done.stdout.split("\n")[:2] == ["KeyboardInterrupt", "read by the I/O thread"], \
        done.stdout + done.stderr


def test_an_event_loop_polling_for_its_reply_still_turns_and_gets_each_result_after_its_output(
        events, monkeypatch):
    """``await ref`` in a loop with nothing else to run polls for the reply in the loop's
    own thread (forced here: the machine counts as idle and a poll lasts long). Each such
    await lets the loop turn once first, so the loop's own I/O and its other tasks still
    run between awaits; results come after their output, a ref nobody awaits still
    completes (the I/O thread watches the socket again), a timed-out await leaves its ref
    usable, and an actor that dies while the loop polls fails the await at once."""
    import asyncio
    import socket

    from jupyter_actors import _spin
    from jupyter_actors._api import futures
    monkeypatch.setattr(_spin._cores, "spare", lambda now: True)
    monkeypatch.setattr(_spin.Spin, "TIME", 0.2)
    ray.init()
    polled = []
    plain_polls = futures.caller_polls

    def counting_polls(owner, future):
        got = plain_polls(owner, future)
        polled.append(got)
        return got
    monkeypatch.setattr(futures, "caller_polls", counting_polls)
    router, previous = _Lines(), session.output_router()
    session.set_output_router(router)
    solo, gate = Solo.remote(), Gate.remote()
    ours, theirs = socket.socketpair()

    async def main():
        loop = asyncio.get_running_loop()
        for i in range(100):
            assert await solo.echo.remote(i) == i
            assert router.has(f"solo {i}")
        assert True in polled  # the loop read replies itself

        # Another task waits for input on a socket that has some already: it runs while
        # the first keeps awaiting refs (a poll never starts while it is ready to run).
        theirs.sendall(b"x")
        received = loop.create_future()
        loop.add_reader(ours.fileno(), lambda: received.done() or received.set_result(
            ours.recv(1)))
        awaits = 0
        while not received.done() and awaits < 1000:
            assert await solo.echo.remote(awaits) == awaits
            awaits += 1
        loop.remove_reader(ours.fileno())
        assert received.done() and received.result() == b"x", awaits

        go = events("go")
        waiting = gate.wait_for.remote(go.path)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(waiting, timeout=0.5)
        unawaited = gate.echo.remote("unawaited")
        go.set()
        assert await asyncio.wait_for(waiting, GUARD) == "through"
        assert await asyncio.wrap_future(unawaited.future()) == "unawaited"

        doomed = Doomed.remote()
        assert await doomed.die_soon.remote() == "later"
        with pytest.raises(ray.exceptions.ActorDiedError):
            await asyncio.wait_for(doomed.wait.remote(), GUARD)

    try:
        asyncio.run(asyncio.wait_for(main(), GUARD * 2))
    finally:
        session.set_output_router(previous)
        ours.close()
        theirs.close()


def test_threads_that_waited_and_ended_leave_no_watch_behind(events):
    """Each thread that waits for a reply watches the worker's socket with an epoll of its
    own; once the thread has ended, that epoll is closed and the next thread to start
    watching drops it: short-lived threads that call get() (or run asyncio.run and
    await) do not pile up with the worker's connection."""
    ray.init()
    gate, go = Gate.remote(), events("go")
    assert ray.get(gate.echo.remote(-1), timeout=GUARD) == -1   # its worker is up
    held = gate.wait_for.remote(go.path)
    conn = held._owner.conn   # the worker's connection (a pending call's)
    assert conn is not None
    go.set()
    assert ray.get(held, timeout=GUARD) == "through"

    got = []
    for i in range(30):
        thread = threading.Thread(
            target=lambda i=i: got.append(ray.get(gate.echo.remote(i), timeout=GUARD)))
        thread.start()
        thread.join(GUARD)
        assert not thread.is_alive()
    assert got == list(range(30))
    # The main thread's watch, and at most the last thread's (closed, dropped next time).
    assert len(conn.watchers) <= 2, len(conn.watchers)
