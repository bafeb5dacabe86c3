"""Async and threaded actors interleave exactly as the seed tutorial shows.

Concurrency is proven with events and barriers inside the actors: a call that
needs N calls in flight at once waits for them, so a runtime that runs fewer
concurrently makes the test fail at its guard timeout instead of passing by luck.
"""
from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import numpy as np
import pytest

import jupyter_actors as ray
from tests.helpers import GUARD, FileEvent, value_when_set, wait_until_started


@ray.remote
class Rendezvous:
    """An async actor whose calls each wait until `group` calls are in flight together."""

    def __init__(self, group: int):
        self.group = group
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrived = 0
        self.released = {}

    async def run(self, label: str = "") -> int:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        print("started")
        batch = self.arrived // self.group
        self.arrived += 1
        event = self.released.setdefault(batch, asyncio.Event())
        if self.arrived % self.group == 0:
            event.set()
        await asyncio.wait_for(event.wait(), 30)
        print("ended")
        self.in_flight -= 1
        return batch

    def stats(self) -> int:
        return self.max_in_flight


def test_four_calls_all_start_before_any_finishes(capfd):
    """Seed: 4 x run_concurrent print 4 "started" then 4 "finished"."""
    actor = Rendezvous.remote(4)
    assert ray.get([actor.run.remote() for _ in range(4)], timeout=GUARD) == [0, 0, 0, 0]
    lines = capfd.readouterr().out.splitlines()
    assert [line.split(") ", 1)[1] for line in lines] == ["started"] * 4 + ["ended"] * 4
    pid = actor._describe()["pid"]
    assert all(line.startswith(f"(Rendezvous pid={pid}) ") for line in lines)
    assert ray.get(actor.stats.remote(), timeout=GUARD) == 4


def test_five_tasks_start_at_once():
    actor = Rendezvous.remote(5)
    ray.get([actor.run.remote() for _ in range(5)], timeout=GUARD)
    assert ray.get(actor.stats.remote(), timeout=GUARD) == 5


def test_max_concurrency_two_runs_eight_calls_two_at_a_time(capfd):
    """Seed: calls run in pairs, in submission order, never three in flight.

    (The exact started/started/ended/ended text of the seed, which comes from
    equal sleeps, is checked on the seed's own code in test_demo.py.)
    """
    actor = Rendezvous.options(max_concurrency=2).remote(2)
    batches = ray.get([actor.run.remote() for _ in range(8)], timeout=GUARD)
    assert batches == [0, 0, 1, 1, 2, 2, 3, 3]
    words = [line.split(") ", 1)[1] for line in capfd.readouterr().out.splitlines()]
    in_flight = [words[:i + 1].count("started") - words[:i + 1].count("ended")
                 for i in range(len(words))]
    assert words[:2] == ["started", "started"] and max(in_flight) == 2 and in_flight[-1] == 0
    assert ray.get(actor.stats.remote(), timeout=GUARD) == 2


def test_sync_methods_of_an_async_actor_run_on_its_event_loop():
    @ray.remote
    class Mixed:
        async def loop_thread(self):
            return threading.get_ident()

        def sync_thread(self):
            asyncio.get_running_loop()  # raises if not on the loop
            return threading.get_ident()

    actor = Mixed.remote()
    assert ray.get(actor.sync_thread.remote(), timeout=GUARD) == \
        ray.get(actor.loop_thread.remote(), timeout=GUARD)


@ray.remote
class TaskProbe:
    def __init__(self):
        # Set by each call: no call may see another call's value.
        self.request_id = contextvars.ContextVar("request_id")

    async def probe(self, value: int) -> tuple:
        task = asyncio.current_task()
        seen = self.request_id.get(None)
        self.request_id.set(value)
        await asyncio.wait_for(asyncio.sleep(0), 30)  # needs a task on Python 3.12+
        if value % 2:   # half of the calls suspend on a timeout of their own too
            async with asyncio.timeout(30):
                await asyncio.sleep(0)
        return task.get_name(), seen, self.request_id.get(), task is asyncio.current_task()


@pytest.mark.skipif(not hasattr(asyncio, "timeout"), reason="asyncio.timeout: Python 3.11+")
def test_each_async_call_is_a_task_of_its_own_with_its_own_context():
    """Calls that finish without suspending start at once, yet each is a real asyncio
    task from its first line (current_task(), timeouts) with its own context copy."""
    actor = TaskProbe.remote()
    results = ray.get([actor.probe.remote(i) for i in range(20)], timeout=GUARD)
    names = [name for name, _, _, _ in results]
    assert len(set(names)) == 20
    assert [(seen, own, same) for _, seen, own, same in results] == \
        [(None, i, True) for i in range(20)]


@ray.remote
class Recorder:
    """A threaded actor that records the order calls ran in and the most at once."""

    def __init__(self, parties: int = 0):
        self.order = []
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(parties) if parties else None

    def step(self, i: int, arg=None) -> int:
        assert arg is None or (arg == 7 if type(arg) is int else (arg == i).all())
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.order.append(i)
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        with self.lock:
            self.running -= 1
        return threading.get_ident()

    def report(self):
        return self.order, self.most


def test_threaded_actor_default_runs_calls_one_at_a_time_in_submission_order():
    actor = Recorder.remote()
    ray.get([actor.step.remote(i) for i in range(100)], timeout=GUARD)
    order, most = ray.get(actor.report.remote(), timeout=GUARD)
    assert order == list(range(100)) and most == 1


def test_calls_sent_in_a_burst_keep_their_order_whatever_their_arguments():
    """Calls submitted in a loop are queued and written as runs; calls whose frames
    go on their own (an array argument, a ref argument) keep their place among them."""
    actor = Recorder.remote()
    ready = ray.put(7)
    refs = []
    for i in range(300):
        if i % 50 == 10:
            refs.append(actor.step.remote(i, np.full(1000, i)))  # out-of-band buffers
        elif i % 50 == 30:
            refs.append(actor.step.remote(i, ready))  # a ref argument
        else:
            refs.append(actor.step.remote(i))
    assert len(set(ray.get(refs, timeout=GUARD))) == 1
    order, most = ray.get(actor.report.remote(), timeout=GUARD)
    assert order == list(range(300)) and most == 1


def test_a_worker_reads_all_its_socket_holds_at_one_wake_up():
    """A worker's reading threads are woken once per arrival of input (edge-triggered),
    so one read must take all the socket holds, even past the decoder's buffer: what it
    left would wake nobody. Frames bigger than the buffer, all in the socket already,
    come out of one read."""
    import socket

    from jupyter_actors._wire import frames, messages
    from jupyter_actors._wire.payloads import serialize
    from jupyter_actors._worker.reading import Reading

    blobs = [serialize(np.full(frames.FrameDecoder._CHUNK + 1000 * i, i, dtype=np.uint8))
             for i in range(3)]
    data = b"".join(b"".join(bytes(memoryview(p).cast("B")) for p in frames.encode(
        messages.CallOk(i, (blob,), 1.0, 2.0, 0))) for i, blob in enumerate(blobs))
    left, right = socket.socketpair()
    try:
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * len(data))
        right.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * len(data))
        left.settimeout(GUARD)
        left.sendall(data)  # all of it in the socket before the one read
        reading = Reading(None, right, frames.FrameDecoder())
        batch = reading._read()
    finally:
        left.close()
        right.close()
    assert [m.call_id for m in batch] == [0, 1, 2]


def test_a_burst_of_calls_nobody_waits_for_still_reaches_the_worker(tmp_path):
    """Calls queued in a burst are written when the caller waits for a result, or when
    the burst is over: here the caller never waits on a ref, and the last call of
    the burst still runs (it signals through a file)."""
    @ray.remote
    class Marker:
        def mark(self, i, path):
            if path is not None:
                open(path, "w").close()

    actor = Marker.remote()
    ray.get(actor.mark.remote(0, None), timeout=GUARD)  # the worker is up
    done = FileEvent(tmp_path / "last")
    refs = [actor.mark.remote(i, None) for i in range(20)]
    refs.append(actor.mark.remote(20, done.path))
    assert done.wait(GUARD)
    assert ray.get(refs, timeout=GUARD) == [None] * 21


def test_a_running_threaded_call_is_seen_started_and_its_worker_keeps_reading(tmp_path):
    """max_concurrency=1: the thread that reads a call runs it, so another must read meanwhile.

    While the first call runs, the driver hears that it started, the ref it
    waits for is answered (the answer arrives only after the call began), and
    calls sent meanwhile wait their turn and run after it, in order.
    """
    gate = FileEvent(tmp_path / "gate")
    when = ray.remote(value_when_set)

    @ray.remote
    class Waiter:
        def __init__(self):
            self.log = []

        def wait_for(self, refs):
            self.log.append("first")
            self.log.append(ray.get(refs[0]))
            return self.log[-1]

        def then(self, i):
            self.log.append(i)
            return list(self.log)

    actor = Waiter.remote()
    assert ray.get(actor.then.remote("ready"), timeout=GUARD) == ["ready"]  # constructor done
    first = actor.wait_for.remote([when.remote(gate.path, "late value")])
    later = [actor.then.remote(i) for i in range(3)]
    wait_until_started(first)
    assert not first.done() and not any(ref.done() for ref in later)
    gate.set()
    assert ray.get(first, timeout=GUARD) == "late value"
    assert ray.get(later, timeout=GUARD)[-1] == ["ready", "first", "late value", 0, 1, 2]


@pytest.mark.parametrize("after_a_pause", [False, True])
def test_an_async_actor_blocked_by_a_method_still_reports_that_it_started(tmp_path,
                                                                          after_a_pause):
    """The loop reads the socket itself, so a method that blocks it blocks reading too;
    the call's "start" must still reach the driver while it blocks (the live timeline).

    After a pause the worker's flushing thread is in its longest wait, and a
    "start" held back for company must cut that wait short.
    """
    gate = FileEvent(tmp_path / "gate")

    @ray.remote
    class Blocker:
        async def block(self, path):
            from tests.helpers import FileEvent
            FileEvent(path).wait(30)   # a blocking wait inside async def: the loop stops
            return "unblocked"

        async def after(self):
            return "after"

    actor = Blocker.remote()
    assert ray.get(actor.after.remote(), timeout=GUARD) == "after"  # constructor done
    if after_a_pause:
        time.sleep(1.5)  # not a synchronisation: the worker goes quiet (Channel.MAX_POLL)
    blocked = actor.block.remote(gate.path)
    later = actor.after.remote()
    wait_until_started(blocked)
    assert not blocked.done() and not later.done()
    gate.set()
    assert ray.get([blocked, later], timeout=GUARD) == ["unblocked", "after"]


@pytest.mark.parametrize("n", [2, 4])
def test_threaded_actor_with_max_concurrency_runs_n_calls_in_parallel_threads(n):
    """A barrier of n parties inside the method passes only if n calls run at once."""
    actor = Recorder.options(max_concurrency=n).remote(n)
    # Once the constructor has run, so the calls arrive together at a waiting actor.
    assert ray.get(actor.report.remote(), timeout=GUARD) == ([], 0)
    threads = ray.get([actor.step.remote(i) for i in range(2 * n)], timeout=GUARD)
    assert len(set(threads)) == n
    assert ray.get(actor.report.remote(), timeout=GUARD)[1] == n


def test_seed_threaded_actor_example(capfd):
    @ray.remote
    class ThreadedActor:
        def task_1(self): print("I'm running in a thread!")
        def task_2(self): print("I'm running in another thread!")

    a = ThreadedActor.options(max_concurrency=2).remote()
    assert ray.get([a.task_1.remote(), a.task_2.remote()], timeout=GUARD) == [None, None]
    out = capfd.readouterr().out
    assert "(ThreadedActor pid=" in out
    assert sorted(line.split(") ", 1)[1] for line in out.splitlines()) == \
        ["I'm running in a thread!", "I'm running in another thread!"]


def test_remote_functions_run_in_parallel_workers():
    """With two workers in the pool, two tasks meet at a barrier they could not pass alone."""
    ray.init(num_cpus=2)

    @ray.remote
    def meet(path_prefix, i):
        import os
        from tests.helpers import FileEvent
        FileEvent(f"{path_prefix}-{i}").set()
        other = FileEvent(f"{path_prefix}-{1 - i}")
        return other.wait(30), os.getpid()

    import tempfile
    prefix = tempfile.mktemp()
    (ok0, pid0), (ok1, pid1) = ray.get([meet.remote(prefix, 0), meet.remote(prefix, 1)],
                                       timeout=GUARD)
    assert ok0 and ok1 and pid0 != pid1


def test_threaded_actor_with_many_threads_runs_them_all_when_file_descriptors_are_few():
    """max_concurrency as high as the file-descriptor limit (1024 on many systems): no
    thread may need a descriptor of its own to wait for calls, or the threads that
    cannot get one are lost and the calls handed to them never run.

    The constructor lowers the limit to what the worker has open plus a few, as a
    worker near the common limit would be; a barrier of n parties inside the method
    passes only if all n threads run calls.
    """
    n = 24

    @ray.remote
    class FewDescriptors:
        def __init__(self, parties: int):
            import os
            import resource
            self.barrier = threading.Barrier(parties)
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (len(os.listdir("/dev/fd")) + 4, hard))

        def step(self) -> int:
            self.barrier.wait(timeout=30)
            return threading.get_ident()

    actor = FewDescriptors.options(max_concurrency=n).remote(n)
    threads = ray.get([actor.step.remote() for _ in range(n)], timeout=GUARD)
    assert len(set(threads)) == n
