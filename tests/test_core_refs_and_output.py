"""ObjectRefs as futures in every kind of loop, refs as arguments, and worker output."""
from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import weakref

import pytest

import jupyter_actors as ray
from tests.helpers import GUARD, FileEvent, value_when_set


@ray.remote
def some_task():
    return 1


@ray.remote
def add(a, b):
    return a + b


@ray.remote
class Echo:
    def echo(self, value):
        return value

    def talk(self, n):
        for i in range(n):
            print(f"line {i}")
        print("partial line without newline", end="")
        print("to stderr", file=sys.stderr)
        return n


@ray.remote
class AsyncEcho:
    async def echo(self, value):
        return value

    async def await_nested(self, refs):
        return [await ref for ref in refs]

    async def gather_nested(self, refs):
        return await asyncio.gather(*refs)

    async def blocking_get(self, refs):
        return ray.get(refs[0])


def test_seed_objectrefs_as_asyncio_futures():
    """The seed's await / asyncio.wait / wrap_future snippets, inside asyncio.run."""
    async def main():
        assert await some_task.remote() == 1
        done, pending = await asyncio.wait([some_task.remote(), some_task.remote()])
        assert len(done) == 2 and not pending
        assert [d.result() for d in done] == [1, 1]
        assert await asyncio.gather(*[some_task.remote() for _ in range(10)]) == [1] * 10
        fut: asyncio.Future = asyncio.wrap_future(some_task.remote().future())
        assert await fut == 1
        assert await asyncio.wait_for(some_task.remote(), GUARD) == 1
        return "ok"
    assert asyncio.run(main()) == "ok"


def test_asyncio_wait_takes_refs_directly():
    """On 3.11+ asyncio.wait returns the refs themselves (3.10 wraps them in tasks)."""
    async def main():
        refs = [some_task.remote() for _ in range(3)]
        done, pending = await asyncio.wait(refs, timeout=GUARD,
                                           return_when=asyncio.ALL_COMPLETED)
        assert not pending and [d.result() for d in done] == [1, 1, 1]
        if sys.version_info >= (3, 11):
            assert done == set(refs)
        first, rest = await asyncio.wait(refs, return_when=asyncio.FIRST_COMPLETED)
        assert len(first) == 3 and not rest  # all were already done
    asyncio.run(main())


def test_a_timed_out_await_leaves_the_ref_usable(events):
    """asyncio.wait_for cancels its own wrapper, never the ref that others share."""
    @ray.remote
    def gated(path):
        from tests.helpers import FileEvent
        return FileEvent(path).wait(30)

    gate = events("gate")
    ref = gated.remote(gate.path)

    async def impatient():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ref, 0.05)
    asyncio.run(impatient())
    gate.set()
    assert ray.get(ref, timeout=GUARD) is True


def test_seed_objectrefs_as_concurrent_futures():
    refs = [some_task.remote() for _ in range(4)]
    futs = [ref.future() for ref in refs]
    results = [f.result() for f in concurrent.futures.as_completed(futs, timeout=GUARD)]
    assert results == [1, 1, 1, 1]


def test_refs_are_awaitable_from_another_thread_and_loop():
    ref = some_task.remote()
    out = []

    async def wait_in_this_loop():
        return await asyncio.wait_for(ref.as_future(), GUARD)

    def other_thread():
        out.append(asyncio.run(wait_in_this_loop()))
    t = threading.Thread(target=other_thread)
    t.start()
    t.join(GUARD)
    assert out == [1] and ray.get(ref, timeout=GUARD) == 1


def test_errors_reach_await_too():
    @ray.remote
    def fail():
        raise KeyError("missing")

    async def main():
        with pytest.raises(KeyError):
            await fail.remote()
        with pytest.raises(KeyError):
            await asyncio.gather(fail.remote())
    asyncio.run(main())


def test_top_level_ref_arguments_are_resolved_before_the_call():
    first = add.remote(1, 2)
    assert ray.get(add.remote(first, ray.put(10)), timeout=GUARD) == 13
    actor = Echo.remote()
    assert ray.get(actor.echo.remote(add.remote(2, 2)), timeout=GUARD) == 4
    assert ray.get(actor.echo.remote(value=ray.put("kw")), timeout=GUARD) == "kw"


def test_a_failed_ref_argument_fails_the_call_with_that_error():
    @ray.remote
    def fail():
        raise ZeroDivisionError("nope")
    with pytest.raises(ZeroDivisionError):
        ray.get(add.remote(fail.remote(), 1), timeout=GUARD)


def test_calls_waiting_for_ref_arguments_keep_submission_order(events):
    """A call whose argument is not ready holds back later calls to the same actor."""
    when = ray.remote(value_when_set)

    @ray.remote
    class Log:
        def __init__(self):
            self.seen = []

        def push(self, v):
            self.seen.append(v)
            return list(self.seen)

    gate = events("gate")
    log = Log.remote()
    first = log.push.remote(when.remote(gate.path, "late argument"))
    second = log.push.remote("no argument")
    done, _ = ray.wait([second], timeout=0.2)
    assert done == []  # held back behind `first`
    gate.set()
    assert ray.get(second, timeout=GUARD) == ["late argument", "no argument"]
    assert ray.get(first, timeout=GUARD) == ["late argument"]


def test_nested_refs_stay_refs_and_can_be_awaited_inside_an_async_actor():
    actor = AsyncEcho.remote()
    refs = [add.remote(i, i) for i in range(3)] + [ray.put(100)]
    assert ray.get(actor.await_nested.remote(refs), timeout=GUARD) == [0, 2, 4, 100]
    assert ray.get(actor.gather_nested.remote(refs), timeout=GUARD) == [0, 2, 4, 100]


def test_nested_refs_can_be_got_inside_a_threaded_actor_and_returned():
    @ray.remote
    class Getter:
        def get_all(self, refs):
            return ray.get(refs)

        def give_back(self, refs):
            return refs

    actor = Getter.remote()
    refs = [add.remote(1, 1), ray.put("x")]
    assert ray.get(actor.get_all.remote(refs), timeout=GUARD) == [2, "x"]
    back = ray.get(actor.give_back.remote(refs), timeout=GUARD)
    assert ray.get(back, timeout=GUARD) == [2, "x"]


def test_get_inside_an_async_actor_says_to_await_instead():
    actor = AsyncEcho.remote()
    with pytest.raises(RuntimeError, match="await ref"):
        ray.get(actor.blocking_get.remote([ray.put(1)]), timeout=GUARD)
    assert ray.get(actor.echo.remote(5), timeout=GUARD) == 5


def test_output_is_prefixed_and_arrives_before_the_result(capfd):
    """Every line, a trailing partial line included, is shown before get() returns."""
    actor = Echo.remote()
    assert ray.get(actor.talk.remote(3), timeout=GUARD) == 3
    captured = capfd.readouterr()
    prefix = f"(Echo pid={actor._describe()['pid']}) "
    assert captured.out.splitlines() == [prefix + "line 0", prefix + "line 1", prefix + "line 2",
                                         prefix + "partial line without newline"]
    assert captured.err.splitlines() == [prefix + "to stderr"]
    assert "\x1b[" not in captured.out  # no colour codes when stdout is not a terminal


def test_task_output_is_prefixed_with_the_function_name(capfd):
    @ray.remote
    def chatty():
        import os
        print("hello from a task")
        return os.getpid()

    pid = ray.get(chatty.remote(), timeout=GUARD)
    assert capfd.readouterr().out == f"(chatty pid={pid}) hello from a task\n"


def test_constructor_output_is_shown_too(capfd):
    @ray.remote
    class Loud:
        def __init__(self):
            print("constructed")

        def ping(self):
            return "pong"

    actor = Loud.remote()
    assert ray.get(actor.ping.remote(), timeout=GUARD) == "pong"
    assert capfd.readouterr().out == f"(Loud pid={actor._describe()['pid']}) constructed\n"


def test_numpy_arrays_round_trip_and_are_copied_at_call_time():
    np = pytest.importorskip("numpy")
    actor = Echo.remote()
    small = np.arange(1000)
    big = np.arange(4 * 1024 * 1024, dtype=np.uint8)  # 4 MiB: through shared memory
    ref_small, ref_big = actor.echo.remote(small), actor.echo.remote(big)
    small[:] = -1  # mutating after .remote() must not change what the actor got
    big[:] = 7
    out_small, out_big = ray.get([ref_small, ref_big], timeout=GUARD)
    assert out_small.tolist() == list(range(1000))
    assert (out_big == np.arange(4 * 1024 * 1024, dtype=np.uint8)).all()
    out_big[:10] = 1  # results are writable
    big_put = ray.put(np.ones(2 * 1024 * 1024))
    assert ray.get(actor.echo.remote(big_put), timeout=GUARD).sum() == 2 * 1024 * 1024


class Boxed:
    """Bytes pickled inside the call's own frame (not as an out-of-band buffer)."""

    def __init__(self, data):
        self.data = data


def test_big_values_inside_objects_arrive_whole_when_written_in_pieces():
    # 24 MiB frames take many writes of the socket's buffer each; calls queued
    # behind the first one are written after its rest, piece by piece.
    import hashlib
    import os
    data = bytearray(os.urandom(24 << 20))
    want = hashlib.sha256(data).digest()
    actor = Echo.remote()
    refs = [actor.echo.remote(Boxed(data)) for _ in range(3)]
    data[:] = bytes(len(data))  # the calls already hold their copies
    for ref in refs:
        assert hashlib.sha256(ray.get(ref, timeout=GUARD).data).digest() == want


class Held:
    """A value whose life the worker follows with a weak reference."""


@ray.remote
class Holder:
    def make(self, gate):
        FileEvent(gate).wait(GUARD)
        value = Held()
        self.seen = weakref.ref(value)
        return value

    def take(self, value, gate):
        FileEvent(gate).wait(GUARD)
        self.seen = weakref.ref(value)

    def block(self, gate):
        return FileEvent(gate).wait(GUARD)

    def alive(self):
        return self.seen() is not None


@pytest.mark.parametrize("max_concurrency", [1, 2])
def test_nothing_of_a_call_outlives_its_end(max_concurrency, events):
    """While the next call runs, the worker holds neither the argument nor the return value
    of the call before it (a big array or a ref would stay pinned): each call waits at a
    gate until the next is queued behind it, so both run in one run of the same thread."""
    actor = Holder.options(max_concurrency=max_concurrency).remote()
    held = events("held")  # all threads but one wait here until the end
    blockers = [actor.block.remote(held.path) for _ in range(max_concurrency - 1)]
    made, taken = events("made"), events("taken")
    value = actor.make.remote(made.path)
    after_make = actor.alive.remote()
    made.set()
    assert ray.get(after_make, timeout=GUARD) is False
    assert isinstance(ray.get(value, timeout=GUARD), Held)
    after_take = [actor.take.remote(Held(), taken.path), actor.alive.remote()][1]
    taken.set()
    assert ray.get(after_take, timeout=GUARD) is False
    held.set()
    assert ray.get(blockers, timeout=GUARD) == [True] * (max_concurrency - 1)
