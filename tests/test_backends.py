"""The same programs on both backends: the embedded runtime and a real Ray head node.

Every test here runs twice (``on_backend``): first on the embedded runtime,
then joined to a Ray cluster started with ``ray start --head``, one Ray
session for the whole module (Ray starts slowly).
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from jupyter_actors._api import session
from jupyter_actors._output import OutputRouter
from tests.generator_utils import crash_after_two
from tests.helpers import GUARD, FileEvent, wait_until_started

# Ray starts in 5-30 s, and far slower on a loaded machine.
pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


class Collect(OutputRouter):
    """An output router that keeps the lines with their context, and lets a test wait for them."""

    def __init__(self):
        self.lines: list = []
        self.cond = threading.Condition()
        self.context = "the calling code"

    def capture(self):
        return self.context

    def write(self, context, stream, prefix, text):
        with self.cond:
            for line in text.splitlines():
                self.lines.append((context, prefix, line))
            self.cond.notify_all()

    def wait_for(self, count: int) -> list:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.lines) >= count, GUARD), self.lines
            return list(self.lines)


@pytest.fixture
def collect():
    previous = session.output_router()
    router = Collect()
    session.set_output_router(router)
    yield router
    session.set_output_router(previous)


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def incr(self, k=1):
        self.n += k
        return self.n

    def pid(self):
        return os.getpid()

    def fail(self, message):
        raise ValueError(message)


@ray.remote
class AsyncWaiter:
    """The seed's async actor, with an event in place of the sleep."""

    def __init__(self):
        self.gate = asyncio.Event()
        self.started = 0

    async def run_concurrent(self, total):
        print("started")
        self.started += 1
        if self.started == total:
            self.gate.set()
        await asyncio.wait_for(self.gate.wait(), GUARD)
        print("finished")
        return self.started

    async def echo(self, x):
        return x


@ray.remote
def square(x):
    return x * x


@ray.remote
def bump(counter, times=1):
    """A task that calls an actor it was handed."""
    return ray.get([counter.incr.remote() for _ in range(times)])[-1]


@dataclasses.dataclass
class Box:
    counter: object
    label: str


@ray.remote
def bump_all(holder):
    return [ray.get(c.incr.remote(10)) for c in holder["list"] + [holder["box"].counter]]


@ray.remote
class Supervisor:
    def __init__(self, n):
        self.workers = [Counter.remote(i * 100) for i in range(n)]

    def work(self):
        return ray.get([w.incr.remote() for w in self.workers])


def test_the_backend_is_the_one_asked_for(on_backend):
    """backend_name() and init()'s result say which backend runs."""
    ray.get(square.remote(2), timeout=GUARD)
    assert ray.backend_name() == on_backend
    info = ray.init(ignore_reinit_error=True)
    assert info["backend"] == on_backend
    assert f"backend={on_backend!r}" in repr(info)


def test_actors_tasks_put_get_wait(on_backend):
    """The basic API: actors keep state, tasks run, put/get/wait as in Ray."""
    c = Counter.remote(5)
    assert ray.get(c.incr.remote(), timeout=GUARD) == 6
    assert ray.get(c.incr.remote(k=ray.put(4)), timeout=GUARD) == 10   # a top-level ref arg
    assert ray.get([square.remote(i) for i in range(5)], timeout=GUARD) == [0, 1, 4, 9, 16]
    assert ray.get(square.remote(square.remote(3)), timeout=GUARD) == 81
    refs = [square.remote(i) for i in range(3)]
    ready, not_ready = ray.wait(refs, num_returns=3, timeout=GUARD)
    assert ready == refs and not_ready == []
    assert isinstance(refs[0], ray.ObjectRef)
    assert refs[1].future().result(GUARD) == 1


def test_await_ref_gather_and_futures(on_backend):
    """await ref, asyncio.gather and ref.future() all see the result."""
    a = AsyncWaiter.remote()

    async def main():
        one = await a.echo.remote(1)
        many = await asyncio.gather(*[a.echo.remote(i) for i in range(4)])
        return one, many
    assert asyncio.run(main()) == (1, [0, 1, 2, 3])
    assert a.echo.remote("f").future().result(GUARD) == "f"


def test_seed_async_actor_calls_overlap_on_one_loop(on_backend, collect):
    """The seed's first scenario: 4 calls of an async actor all start before any ends."""
    a = AsyncWaiter.remote()
    assert ray.get([a.run_concurrent.remote(4) for _ in range(4)], timeout=GUARD) == [4] * 4
    lines = collect.wait_for(8)
    words = [line for _, _, line in lines]
    assert words == ["started"] * 4 + ["finished"] * 4
    assert all(prefix.startswith("(AsyncWaiter pid=") for _, prefix, _ in lines)
    assert {context for context, _, _ in lines} == {"the calling code"}


def test_threaded_actor_runs_calls_in_submission_order(on_backend):
    """max_concurrency=1 (the default of a threaded actor): calls run one by one, in order."""
    c = Counter.remote()
    assert ray.get([c.incr.remote() for _ in range(50)], timeout=GUARD) == list(range(1, 51))


def test_threaded_max_concurrency_runs_calls_at_once(on_backend):
    """max_concurrency=3: three calls meet at a barrier inside the actor."""
    @ray.remote
    class Meeting:
        def __init__(self):
            self.barrier = threading.Barrier(3, timeout=GUARD)

        def meet(self):
            return self.barrier.wait() >= 0

    m = Meeting.options(max_concurrency=3).remote()
    assert ray.get([m.meet.remote() for _ in range(3)], timeout=GUARD) == [True] * 3


def test_handles_and_refs_travel_anywhere(on_backend):
    """Handles as arguments, nested in containers, and actors that create actors."""
    c = Counter.remote()
    assert ray.get(bump.remote(c, 3), timeout=GUARD) == 3
    d = Counter.remote(1000)
    assert ray.get(bump_all.remote({"list": [c], "box": Box(d, "d")}), timeout=GUARD) == [13, 1010]
    s = Supervisor.remote(2)
    assert ray.get(s.work.remote(), timeout=GUARD) == [1, 101]


def test_named_actors_and_get_actor(on_backend):
    """A named actor is found by name, and calls reach the same actor."""
    c = Counter.options(name="backends-counter").remote(7)
    found = ray.get_actor("backends-counter")
    assert ray.get(found.incr.remote(), timeout=GUARD) == 8
    assert ray.get(c.incr.remote(), timeout=GUARD) == 9
    with pytest.raises(ValueError, match="no-such"):
        ray.get_actor("no-such")


def test_a_remote_exception_is_its_own_class_and_a_task_error(on_backend):
    """Errors arrive as the same types on both backends, with the remote traceback."""
    c = Counter.remote()
    with pytest.raises(ValueError, match="bad input") as info:
        ray.get(c.fail.remote("bad input"), timeout=GUARD)
    assert isinstance(info.value, exceptions.RayTaskError)
    assert "bad input" in info.value.remote_traceback
    assert isinstance(info.value.__cause__, exceptions.RemoteTraceback)


def test_a_killed_actor_fails_its_calls_with_actor_died(on_backend):
    """kill(): later calls fail with ActorDiedError saying it was killed."""
    c = Counter.remote()
    assert ray.get(c.incr.remote(), timeout=GUARD) == 1
    ray.kill(c)
    with pytest.raises(exceptions.ActorDiedError, match="killed"):
        ray.get(c.incr.remote(), timeout=GUARD)


def test_cancel_a_queued_call_and_get_timeout(on_backend, tmp_path):
    """A queued call that is cancelled never runs; get(timeout) raises GetTimeoutError."""
    gate = FileEvent(tmp_path / "gate")

    @ray.remote
    class Blocked:
        def __init__(self):
            self.ran = []

        def hold(self, path):
            FileEvent(path).wait(GUARD)
            return "held"

        def mark(self, x):
            self.ran.append(x)
            return x

        def marks(self):
            return self.ran

    b = Blocked.remote()
    held = b.hold.remote(gate.path)
    queued = b.mark.remote("queued")
    with pytest.raises(exceptions.GetTimeoutError):
        ray.get(held, timeout=0.2)
    ray.cancel(queued)
    # The cancel reaches the worker on its own: the queued call's ref settles while the
    # call ahead still holds the actor. Opening the gate first would race the cancel.
    ready, _ = ray.wait([queued], timeout=GUARD)
    assert ready == [queued]
    gate.set()
    assert ray.get(held, timeout=GUARD) == "held"
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(queued, timeout=GUARD)
    assert ray.get(b.marks.remote(), timeout=GUARD) == []


def test_bad_input_fails_at_the_call(on_backend):
    """Wrong arguments and unknown methods raise where the user made the mistake."""
    c = Counter.remote()
    with pytest.raises(TypeError, match="incr"):
        c.incr.remote(1, 2, 3)
    with pytest.raises(AttributeError, match="did you mean 'incr'"):
        c.inrc.remote()


def test_the_first_remote_call_starts_the_backend(on_backend):
    """Without init(), the first call starts (or keeps) the session's backend."""
    assert ray.get(square.remote(7), timeout=GUARD) == 49
    assert ray.is_initialized()
    assert ray.backend_name() == on_backend


# -- generators: Ray's streaming generators behind the same ObjectRefGenerator --------------

@ray.remote
def count_up(n, gate_dir=None, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"no item {i}")
        print(f"item {i}")
        yield i
        if gate_dir is not None:  # go on only once the test has taken item i
            assert FileEvent(f"{gate_dir}/{i}").wait(GUARD)


@ray.remote
class Producer:
    """A threaded actor's generators, and one that iterates another actor's."""

    def __init__(self):
        self.produced = 0

    def items(self, n, gate_dir=None):
        for i in range(n):
            self.produced = i + 1
            yield i * 10
            if gate_dir is not None:
                assert FileEvent(f"{gate_dir}/{i}").wait(GUARD)

    def progress(self):
        return self.produced

    def consume(self, other, n):
        return [ray.get(ref) for ref in other.items.remote(n)]


@ray.remote(concurrency_groups={"io": 1})
class Streamer:
    """An async actor's generators: one paused on an event another call sets."""

    def __init__(self):
        self.produced = 0
        self.go_on = asyncio.Event()

    async def items(self, n):
        for i in range(n):
            self.produced = i + 1
            yield i

    def sync_items(self, n):
        yield from range(n)

    @ray.method(concurrency_group="io")
    async def grouped(self):
        yield "io"

    async def until_released(self, n):
        print("paused")
        yield "first"
        await asyncio.wait_for(self.go_on.wait(), GUARD)
        for i in range(n):
            yield i

    async def release(self):
        self.go_on.set()
        return "released"

    async def forever(self):
        yield "started"
        await asyncio.sleep(3600)
        yield "never"

    def progress(self):
        return self.produced

    async def consume(self, other, n):
        return [await ref async for ref in other.items.remote(n)]

    async def sync_next(self, other):
        gen = other.until_released.remote(1)
        next(gen)  # the first item may be there already; the second cannot be
        return next(gen)


def test_generator_items_arrive_as_they_are_yielded(on_backend, tmp_path, collect):
    """A task's and a threaded actor's item refs are ready while the generator still waits
    to yield the next one; its lines reach the calling code; completed() ends it."""
    gen = count_up.remote(3, gate_dir=str(tmp_path / "t"))
    os.mkdir(tmp_path / "t")
    assert isinstance(gen, ray.ObjectRefGenerator)
    out = []
    for i in range(3):
        out.append(ray.get(next(gen), timeout=GUARD))
        FileEvent(tmp_path / "t" / str(i)).set()
    assert out == [0, 1, 2]
    with pytest.raises(StopIteration):
        next(gen)
    assert ray.get(gen.completed(), timeout=GUARD) is None
    assert gen.is_finished()
    lines = collect.wait_for(3)
    assert [line for _, _, line in lines] == ["item 0", "item 1", "item 2"]
    assert {context for context, _, _ in lines} == {"the calling code"}
    actor = Producer.remote()
    os.mkdir(tmp_path / "a")
    out = []
    for i, ref in enumerate(actor.items.remote(3, gate_dir=str(tmp_path / "a"))):
        out.append(ray.get(ref, timeout=GUARD))
        FileEvent(tmp_path / "a" / str(i)).set()
    assert out == [0, 10, 20]


class _Makes:
    """Generator methods: one prints each item, then waits for the test to let it go on."""

    def items(self, n, gate_dir=None):
        for i in range(n):
            print(f"item {i}")
            yield i
            if gate_dir is not None:
                assert FileEvent(f"{gate_dir}/{i}").wait(GUARD)

    def pairs(self, n):
        for i in range(n):
            yield i, i


@ray.remote
class Maker(_Makes):
    pass


@ray.remote
class AsyncMaker(_Makes):
    async def ready(self):
        return True


def test_generator_with_a_fixed_num_returns_is_one_call_until_its_last_item(
        on_backend, tmp_path, collect):
    """num_returns=N on a generator: N refs, one per item (Ray's static generators). The
    items are made inside the call: their lines reach the calling code as they are printed,
    and the call runs until the generator ends; fewer items than N is Ray's ValueError."""
    maker, async_maker = Maker.remote(), AsyncMaker.remote()
    seen = 0
    for name, make in (("task", count_up), ("threaded", maker.items),
                       ("async", async_maker.items)):
        gates = tmp_path / name
        os.mkdir(gates)
        first, second = make.options(num_returns=2).remote(2, gate_dir=str(gates))
        seen += 1
        context, _, line = collect.wait_for(seen)[-1]
        assert (context, line) == ("the calling code", "item 0")
        wait_until_started(first)
        assert first._owner.finished is None   # the generator waits to make item 1
        FileEvent(gates / "0").set()
        seen += 1
        assert collect.wait_for(seen)[-1][2] == "item 1"
        FileEvent(gates / "1").set()
        assert ray.get([first, second], timeout=GUARD) == [0, 1]
        assert first._owner.status == "finished" and second._owner is first._owner
    assert ray.get(maker.pairs.options(num_returns=3).remote(3), timeout=GUARD) == [
        (0, 0), (1, 1), (2, 2)]
    assert ray.get(maker.pairs.options(num_returns=1).remote(1), timeout=GUARD) == (0, 0)
    for make in (count_up, maker.pairs, async_maker.pairs):
        refs = make.options(num_returns=2).remote(1)
        with pytest.raises(ValueError, match="num_returns=2"):
            ray.get(refs, timeout=GUARD)


def test_async_generator_interleaves_with_other_calls(on_backend):
    """A paused async generator lets another call release it; async for takes the rest;
    the trace has the call, finished, and one Timeline bar for it. Sync generators and
    generators in a concurrency group run on an async actor too."""
    actor = Streamer.remote()

    async def main():
        gen = actor.until_released.remote(3)
        first = await gen.__anext__()
        assert await first == "first"
        assert await actor.release.remote() == "released"
        return [await ref async for ref in gen]
    assert asyncio.run(asyncio.wait_for(main(), GUARD)) == [0, 1, 2]
    assert [ray.get(r, timeout=GUARD) for r in actor.sync_items.remote(3)] == [0, 1, 2]
    assert [ray.get(r, timeout=GUARD) for r in actor.grouped.remote()] == ["io"]
    deadline = time.monotonic() + GUARD
    while True:   # Ray's log stream brings the worker's times a moment after the items
        (record,) = [r for r in ray.tracing.select(actor)
                     if r.label == "Streamer.until_released"]
        if record.pid is not None or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert record.status == "finished" and record.pid is not None
    bars = [e for e in ray.timeline(actor)
            if e["ph"] == "X" and e["name"].startswith("Streamer.until_released")]
    assert len(bars) == 1


def test_generator_error_is_its_item_then_iteration_stops(on_backend):
    """Items before the error are values; the next ref raises it; then StopIteration."""
    gen = count_up.remote(5, fail_at=2)
    assert [ray.get(next(gen), timeout=GUARD) for _ in range(2)] == [0, 1]
    with pytest.raises(ValueError, match="no item 2") as info:
        ray.get(next(gen), timeout=GUARD)
    assert isinstance(info.value, exceptions.TaskError)
    with pytest.raises(StopIteration):
        next(gen)
    assert ray.get(gen.completed(), timeout=GUARD) is None


def test_cancel_or_kill_ends_a_running_generator(on_backend):
    """cancel(gen): the last ref raises TaskCancelledError; kill(actor): ActorDiedError."""
    actor = Streamer.remote()
    gen = actor.forever.remote()
    assert ray.get(next(gen), timeout=GUARD) == "started"
    ray.cancel(gen)
    (last,) = list(gen)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(last, timeout=GUARD)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(gen.completed(), timeout=GUARD)
    gen = actor.forever.remote()
    assert ray.get(next(gen), timeout=GUARD) == "started"
    ray.kill(actor)
    (last,) = list(gen)
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(last, timeout=GUARD)


def test_generators_consumed_inside_workers_and_with_async_for(on_backend):
    """Actors and tasks iterate other calls' generators; the driver with async for."""
    streamer, producer = Streamer.remote(), Producer.remote()
    assert ray.get(streamer.consume.remote(producer, 4), timeout=GUARD) == [0, 10, 20, 30]
    assert ray.get(Producer.remote().consume.remote(producer, 3), timeout=GUARD) == [0, 10, 20]
    assert ray.get(Streamer.remote().consume.remote(streamer, 3), timeout=GUARD) == [0, 1, 2]

    @ray.remote
    def total(n):
        return sum(ray.get(ref) for ref in count_up.remote(n))
    assert ray.get(total.remote(5), timeout=GUARD) == 10

    async def main():
        return [await ref async for ref in count_up.remote(4)]
    assert asyncio.run(asyncio.wait_for(main(), GUARD)) == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="async for"):
        ray.get(streamer.sync_next.remote(Streamer.remote()), timeout=GUARD)


def test_dynamic_num_returns_gives_a_ref_to_the_item_refs(on_backend):
    """num_returns="dynamic": one ref whose value holds a ref per item (an error last)."""
    value = ray.get(count_up.options(num_returns="dynamic").remote(3), timeout=GUARD)
    assert isinstance(value, ray.DynamicObjectRefGenerator) and len(value) == 3
    assert [ray.get(r, timeout=GUARD) for r in value] == [0, 1, 2]
    dynamic = Producer.remote().items.options(num_returns="dynamic").remote(2)
    assert [ray.get(r, timeout=GUARD) for r in ray.get(dynamic, timeout=GUARD)] == [0, 10]
    first, failed = ray.get(count_up.options(num_returns="dynamic").remote(5, fail_at=1),
                            timeout=GUARD)
    assert ray.get(first, timeout=GUARD) == 0
    with pytest.raises(ValueError, match="no item 1"):
        ray.get(failed, timeout=GUARD)


def test_backpressure_pauses_the_generator_until_items_are_taken(on_backend):
    """_generator_backpressure_num_objects=1: the producer waits for the consumer (on Ray
    one item more is made: the one held ready for next()); wait([gen]) sees an item."""
    ahead = 1 if on_backend == "local" else 2
    actor = Streamer.remote()
    gen = actor.items.options(_generator_backpressure_num_objects=1).remote(6)
    for taken in range(3):
        ready, _ = ray.wait([gen], timeout=GUARD)
        assert ready == [gen] and gen.next_ready()
        assert taken + 1 <= ray.get(actor.progress.remote(), timeout=GUARD) <= taken + ahead
        next(gen)
    assert len(list(gen)) == 3
    gen = actor.items.options(_generator_backpressure_num_objects=1).remote(5)
    ray.wait([gen], timeout=GUARD)
    done = gen.completed()
    del gen
    assert ray.get(done, timeout=GUARD) is None   # dropped: nobody holds the producer back
    assert ray.get(actor.progress.remote(), timeout=GUARD) == 5


def test_wait_takes_generators_and_refs_together(on_backend, tmp_path):
    """A generator is ready in wait() when next() would not block."""
    gen = count_up.remote(2, gate_dir=str(tmp_path))
    blocked = ray.remote(lambda path: FileEvent(path).wait(GUARD)).remote(str(tmp_path / "x"))
    ready, not_ready = ray.wait([blocked, gen], timeout=GUARD)
    assert ready == [gen] and not_ready == [blocked]
    next(gen)
    for name in ("0", "1", "x"):
        FileEvent(tmp_path / name).set()
    assert ray.get(blocked, timeout=GUARD) is True
    assert len(list(gen)) == 1


# -- retries set per method or per call ----------------------------------------------------

@ray.remote
class Flaky:
    """Fails its first calls; a method's or a call's retry options run it again."""

    def __init__(self):
        self.attempts = 0

    @ray.method(retry_exceptions=[ConnectionError], max_task_retries=2)
    def until_third(self):
        self.attempts += 1
        if self.attempts < 3:
            raise ConnectionError(f"attempt {self.attempts}")
        return self.attempts

    def fails_first(self, times, kind=ValueError):
        self.attempts += 1
        if self.attempts <= times:
            raise kind(f"attempt {self.attempts}")
        return self.attempts


class _Introspects:
    """Asks the runtime context where it runs."""

    def facts(self):
        context = ray.get_runtime_context()
        return context.get_actor_id(), context.get_actor_name(), context.get_task_id()

    def own_handle(self):
        return ray.get_runtime_context().current_actor

    def leave(self):
        ray.actor.exit_actor()


@ray.remote
class Introspective(_Introspects):
    pass


@ray.remote
class AsyncIntrospective(_Introspects):
    async def ready(self):
        return True


@ray.remote
def task_facts():
    context = ray.get_runtime_context()
    return context.get_actor_id(), context.get_task_id() is not None


def test_runtime_context_current_actor_and_exit_actor_inside_actors(on_backend):
    """Inside an actor the runtime context names the actor, its name and each call;
    current_actor is a handle that reaches the same actor; exit_actor() ends it: that call
    and the ones after fail with ActorDiedError. In a task there is no actor; in the driver
    exit_actor() is a TypeError."""
    for kind, cls in (("threaded", Introspective), ("async", AsyncIntrospective)):
        actor = cls.options(name=f"introspective-{kind}").remote()
        actor_id, name, task_id = ray.get(actor.facts.remote(), timeout=GUARD)
        assert isinstance(actor_id, str) and actor_id and name == f"introspective-{kind}"
        again = ray.get(actor.facts.remote(), timeout=GUARD)
        assert again[0] == actor_id and again[2] not in (None, task_id)
        same = ray.get(actor.own_handle.remote(), timeout=GUARD)
        assert ray.get(same.facts.remote(), timeout=GUARD)[:2] == (actor_id, name)
        with pytest.raises(exceptions.ActorDiedError):
            ray.get(actor.leave.remote(), timeout=GUARD)
        with pytest.raises(exceptions.ActorDiedError):
            ray.get(actor.facts.remote(), timeout=GUARD)
    assert ray.get(task_facts.remote(), timeout=GUARD) == (None, True)
    assert ray.get_runtime_context().get_actor_id() is None
    with pytest.raises(TypeError, match="inside an actor"):
        ray.actor.exit_actor()


@ray.remote(max_restarts=1)
class Phoenix:
    """An actor that may crash once and be restarted."""

    def pid(self):
        return os.getpid()

    def crash(self):
        os._exit(1)


def test_a_call_lost_in_a_crash_fails_as_unavailable_and_the_restarted_actor_answers(on_backend):
    """With restarts left, the call running when the process died fails with
    ActorUnavailableError (a RayActorError, as Ray's); the handle then reaches the
    restarted process."""
    phoenix = Phoenix.remote()
    first = ray.get(phoenix.pid.remote(), timeout=GUARD)
    with pytest.raises(exceptions.ActorUnavailableError, match="may or may not have run"):
        ray.get(phoenix.crash.remote(), timeout=GUARD)
    deadline = time.monotonic() + 4 * GUARD
    while True:   # on Ray, calls sent while it restarts are unavailable too
        try:
            assert ray.get(phoenix.pid.remote(), timeout=GUARD) != first
            break
        except exceptions.ActorUnavailableError:
            assert time.monotonic() < deadline, "the actor never came back"
            time.sleep(0.1)


def test_retries_set_per_method_and_per_call(on_backend):
    """@method(retry_exceptions=..., max_task_retries=...) and .options(...) run a call that
    raised again, on both backends; an exception not listed, or no retry option, fails."""
    assert ray.get(Flaky.remote().until_third.remote(), timeout=GUARD) == 3
    retried = Flaky.remote().fails_first.options(retry_exceptions=True, max_task_retries=1)
    assert ray.get(retried.remote(1), timeout=GUARD) == 2
    listed = Flaky.remote().fails_first.options(retry_exceptions=[KeyError], max_task_retries=3)
    with pytest.raises(ValueError, match="attempt 1"):
        ray.get(listed.remote(1), timeout=GUARD)
    with pytest.raises(ValueError, match="attempt 1"):
        ray.get(Flaky.remote().fails_first.remote(1), timeout=GUARD)


# -- calls made inside workers, in the driver's trace ---------------------------------------

@ray.remote
class Tally:
    def add(self):
        return 1


@ray.remote
def add_thrice(tally):
    return sum(ray.get([tally.add.remote() for _ in range(3)]))


@ray.remote
class TallyOwner:
    """An actor that makes an actor of its own and calls it."""

    def __init__(self):
        self.tally = Tally.remote()

    def work(self):
        return ray.get(self.tally.add.remote())


def test_calls_made_inside_workers_are_traced(on_backend):
    """Task → actor and actor → actor calls (and an actor made inside an actor) are in the
    trace and the Timeline with their pids, as the calls the driver made."""
    since = time.monotonic()
    tally, owner = Tally.remote(), TallyOwner.remote()
    assert ray.get([add_thrice.remote(tally), owner.work.remote()], timeout=GUARD) == [3, 1]

    def traced():
        return [r for r in ray.tracing.select(since=since) if r.label == "Tally.add"
                and r.status == "finished" and r.pid is not None and r.started is not None]

    def made():
        return [r for r in ray.tracing.select(kinds=("init",), since=since)
                if r.label == "Tally.__init__"]
    deadline = time.monotonic() + GUARD
    # On Ray the workers' reports reach the driver through Ray's log stream, a moment later.
    while (len(traced()) < 4 or len(made()) < 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    adds = traced()
    assert len(adds) == 4 and len(made()) == 2
    assert sum(1 for r in adds if r.actor_id == tally._actor_id) == 3
    bars = [e for e in ray.timeline(since=since)
            if e["ph"] == "X" and e["name"].startswith("Tally.add")]
    assert len(bars) == 4


def test_generator_items_once_across_a_retry_and_an_unpicklable_item(on_backend, tmp_path):
    """A task generator whose worker dies after two items taken is retried, and the consumer
    sees each item once; an item that cannot be pickled fails at that item."""
    gen = crash_after_two.remote(str(tmp_path))
    assert [ray.get(next(gen), timeout=GUARD) for _ in range(2)] == [0, 1]
    FileEvent(tmp_path / "taken").set()
    assert [ray.get(ref, timeout=GUARD) for ref in gen] == [2, 3]
    assert FileEvent(tmp_path / "crashed").is_set()

    @ray.remote
    def unpicklable():
        yield "fine"
        yield threading.Lock()
    gen = unpicklable.remote()
    assert ray.get(next(gen), timeout=GUARD) == "fine"
    with pytest.raises(TypeError, match="pickle.*lock"):
        ray.get(next(gen), timeout=GUARD)
    assert list(gen) == []
