"""Generator methods and functions stream their items as ObjectRefs, as in Ray.

That an item is there before the generator goes on is proven with events the
generator waits for after yielding: the test takes the item first, then lets
the generator go on, so a runtime that sent items only at the end would hang
at the guard timeout instead of passing.
"""
from __future__ import annotations

import asyncio
import pickle
import threading

import pytest

import jupyter_actors as ray
from jupyter_actors import tracing
from jupyter_actors._api.generators import Stream, done_future, failed_ref
from jupyter_actors.exceptions import ActorDiedError, TaskCancelledError, TaskError
from tests.generator_utils import crash_after_two
from tests.helpers import GUARD, FileEvent


@ray.remote
def count_up(n, gate_dir=None, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"no item {i}")
        yield i
        if gate_dir is not None:  # go on only once the test has taken item i
            assert FileEvent(f"{gate_dir}/{i}").wait(GUARD)


@ray.remote
class Threaded:
    def __init__(self):
        self.produced = 0
        self.finished = threading.Event()

    def items(self, n, gate_dir=None):
        for i in range(n):
            self.produced = i + 1
            yield i * 10
            if gate_dir is not None:
                assert FileEvent(f"{gate_dir}/{i}").wait(GUARD)

    def unpicklable(self):
        yield "fine"
        yield threading.Lock()

    def progress(self):
        return self.produced

    def bounded(self, n):
        for i in range(n):
            yield i
        self.finished.set()

    def wait_finished(self):
        return self.finished.wait(GUARD)

    def consume(self, other, n):
        """A threaded actor iterating another actor's generator."""
        return [ray.get(ref) for ref in other.items.remote(n)]


@ray.remote
class Streamer:
    def __init__(self):
        self.produced = 0
        self.go_on = asyncio.Event()

    async def items(self, n):
        for i in range(n):
            self.produced = i + 1
            yield i

    async def until_released(self, n):
        """Yields one item, then waits for another call (release) to let it go on."""
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
        """An async actor iterating another actor's generator with async for."""
        return [await ref async for ref in other.items.remote(n)]

    async def sync_next(self, other):
        gen = other.until_released.remote(1)
        next(gen)  # the first item may be there already; the second cannot be
        return next(gen)


def test_remote_function_items_arrive_as_they_are_yielded(tmp_path):
    """A task's item ref is ready while the task still waits to yield the next one."""
    gen = count_up.remote(3, gate_dir=str(tmp_path))
    assert isinstance(gen, ray.ObjectRefGenerator)
    out = []
    for i in range(3):
        out.append(ray.get(next(gen), timeout=GUARD))
        FileEvent(tmp_path / str(i)).set()
    assert out == [0, 1, 2]
    with pytest.raises(StopIteration):
        next(gen)
    assert ray.get(gen.completed(), timeout=GUARD) is None
    assert gen.is_finished()


def test_threaded_actor_items_arrive_as_they_are_yielded(tmp_path):
    """for ref in gen on a threaded actor's generator: each item before the next is made."""
    actor = Threaded.remote()
    out = []
    for i, ref in enumerate(actor.items.remote(3, gate_dir=str(tmp_path))):
        out.append(ray.get(ref, timeout=GUARD))
        FileEvent(tmp_path / str(i)).set()
    assert out == [0, 10, 20]


def test_async_generator_interleaves_with_other_calls_and_is_one_bar():
    """An async generator paused on an event lets another call of the actor set it."""
    actor = Streamer.remote()

    async def main():
        gen = actor.until_released.remote(3)
        first = await gen.__anext__()
        assert await first == "first"
        assert await actor.release.remote() == "released"  # runs while the generator waits
        return [await ref async for ref in gen]
    assert asyncio.run(asyncio.wait_for(main(), GUARD)) == [0, 1, 2]
    (record,) = [r for r in tracing.select(actor) if r.label == "Streamer.until_released"]
    assert record.status == "finished" and record.started is not None
    bars = [e for e in ray.timeline(actor)
            if e["ph"] == "X" and e["name"].startswith("Streamer.until_released")]
    assert len(bars) == 1


@ray.remote(concurrency_groups={"io": 1})
class Grouped:
    def __init__(self):
        self.go_on = asyncio.Event()

    @ray.method(concurrency_group="io")
    async def stream(self):
        yield 1
        await asyncio.wait_for(self.go_on.wait(), GUARD)
        yield 2

    async def release(self):
        self.go_on.set()


def test_generator_in_a_concurrency_group_leaves_the_default_group_free():
    """The io group's one slot holds a paused generator; a default-group call still runs."""
    actor = Grouped.remote()
    gen = actor.stream.remote()
    assert ray.get(next(gen), timeout=GUARD) == 1
    ray.get(actor.release.remote(), timeout=GUARD)
    assert [ray.get(r, timeout=GUARD) for r in gen] == [2]
    (record,) = [r for r in tracing.select(actor) if r.label == "Grouped.stream"]
    assert record.group == "io" and record.status == "finished"


def test_exception_mid_stream_arrives_at_its_item_then_iteration_stops():
    """Items before the error are values; the next ref raises it; then StopIteration."""
    gen = count_up.remote(5, fail_at=2)
    assert ray.get(next(gen), timeout=GUARD) == 0
    assert ray.get(next(gen), timeout=GUARD) == 1
    failed = next(gen)
    with pytest.raises(ValueError, match="no item 2") as info:
        ray.get(failed, timeout=GUARD)
    assert isinstance(info.value, TaskError)
    with pytest.raises(StopIteration):
        next(gen)
    # As in Ray: the error belongs to its item; the call itself has finished.
    assert ray.get(gen.completed(), timeout=GUARD) is None


def test_unpicklable_item_fails_at_that_item_naming_the_method():
    """Item 1 cannot be pickled: item 0 arrives, item 1's ref says which method and item."""
    actor = Threaded.remote()
    gen = actor.unpicklable.remote()
    assert ray.get(next(gen), timeout=GUARD) == "fine"
    with pytest.raises(TypeError, match=r"item 1 yielded by Threaded\.unpicklable.*lock"):
        ray.get(next(gen), timeout=GUARD)
    assert list(gen) == []


def test_cancel_generator_ends_the_stream_with_task_cancelled():
    """cancel(gen) on a running async generator: its last ref raises TaskCancelledError."""
    actor = Streamer.remote()
    gen = actor.forever.remote()
    assert ray.get(next(gen), timeout=GUARD) == "started"
    ray.cancel(gen)
    rest = list(gen)
    assert len(rest) == 1
    with pytest.raises(TaskCancelledError):
        ray.get(rest[0], timeout=GUARD)
    with pytest.raises(TaskCancelledError):
        ray.get(gen.completed(), timeout=GUARD)


def test_actor_death_mid_stream_fails_the_next_item():
    """The actor is killed while its generator waits: the next ref raises ActorDiedError."""
    actor = Streamer.remote()
    gen = actor.forever.remote()
    assert ray.get(next(gen), timeout=GUARD) == "started"
    ray.kill(actor)
    (last,) = list(gen)
    with pytest.raises(ActorDiedError):
        ray.get(last, timeout=GUARD)


def test_actors_consume_other_actors_generators():
    """Inside workers: async for over another actor's generator, and for over one."""
    streamer, threaded = Streamer.remote(), Threaded.remote()
    assert ray.get(streamer.consume.remote(threaded, 4), timeout=GUARD) == [0, 10, 20, 30]
    assert ray.get(threaded.consume.remote(threaded_peer := Threaded.remote(), 3),
                   timeout=GUARD) == [0, 10, 20]
    del threaded_peer
    assert ray.get(Streamer.remote().consume.remote(streamer, 3), timeout=GUARD) == [0, 1, 2]


def test_task_consumes_a_generator_and_the_driver_async_for():
    """A remote function iterating a task generator; the driver with async for."""
    @ray.remote
    def total(n):
        return sum(ray.get(ref) for ref in count_up.remote(n))
    assert ray.get(total.remote(5), timeout=GUARD) == 10

    async def main():
        return [await ref async for ref in count_up.remote(4)]
    assert asyncio.run(asyncio.wait_for(main(), GUARD)) == [0, 1, 2, 3]


def test_blocking_next_inside_an_async_actor_says_to_use_async_for():
    actor, other = Streamer.remote(), Streamer.remote()
    with pytest.raises(RuntimeError, match="async for"):
        ray.get(actor.sync_next.remote(other), timeout=GUARD)


def test_dynamic_num_returns_gives_a_ref_to_the_item_refs():
    """num_returns="dynamic": one ref whose value holds a ref per item."""
    ref = count_up.options(num_returns="dynamic").remote(3)
    assert isinstance(ref, ray.ObjectRef)
    value = ray.get(ref, timeout=GUARD)
    assert isinstance(value, ray.DynamicObjectRefGenerator) and len(value) == 3
    assert [ray.get(r, timeout=GUARD) for r in value] == [0, 1, 2]
    # The item refs travel to other calls like any ref.
    actor = Threaded.remote()
    dynamic = actor.items.options(num_returns="dynamic").remote(2)
    assert [ray.get(r, timeout=GUARD) for r in ray.get(dynamic, timeout=GUARD)] == [0, 10]


def test_dynamic_generator_error_is_its_last_item():
    value = ray.get(count_up.options(num_returns="dynamic").remote(5, fail_at=1), timeout=GUARD)
    first, failed = list(value)
    assert ray.get(first, timeout=GUARD) == 0
    with pytest.raises(ValueError, match="no item 1"):
        ray.get(failed, timeout=GUARD)


@pytest.mark.parametrize("cls", [Streamer, Threaded])
def test_backpressure_pauses_the_generator_until_items_are_taken(cls):
    """With _generator_backpressure_num_objects=1 an item is made only once the one
    before it was taken by next(); without it the generator runs to its end."""
    actor = cls.options(max_concurrency=2).remote() if cls is Threaded else cls.remote()
    gen = actor.items.options(_generator_backpressure_num_objects=1).remote(5)
    for taken in range(3):
        ready, _ = ray.wait([gen], timeout=GUARD)
        assert ready == [gen]
        # The producer made item `taken` and waits: nothing beyond it exists yet.
        assert ray.get(actor.progress.remote(), timeout=GUARD) == taken + 1
        next(gen)
    assert len(list(gen)) == 2
    free = cls.options(max_concurrency=2).remote() if cls is Threaded else cls.remote()
    assert ray.get(free.items.remote(5).completed(), timeout=GUARD) is None
    assert ray.get(free.progress.remote(), timeout=GUARD) == 5


def test_retried_task_generator_with_backpressure_hears_how_far_the_consumer_got(tmp_path):
    """With backpressure the retry's producer would wait after its first (repeated)
    item; the driver tells it the consumer has taken two already."""
    gen = crash_after_two.options(_generator_backpressure_num_objects=1).remote(str(tmp_path))
    assert [ray.get(next(gen), timeout=GUARD) for _ in range(2)] == [0, 1]
    FileEvent(tmp_path / "taken").set()
    assert [ray.get(ref, timeout=GUARD) for ref in gen] == [2, 3]
    assert FileEvent(tmp_path / "crashed").is_set()


def test_dropped_generator_with_backpressure_lets_its_producer_finish():
    """Nobody will take the items of a generator that was dropped: its producer runs on."""
    actor = Streamer.remote()
    gen = actor.items.options(_generator_backpressure_num_objects=1).remote(5)
    ray.wait([gen], timeout=GUARD)
    done = gen.completed()
    del gen
    assert ray.get(done, timeout=GUARD) is None
    assert ray.get(actor.progress.remote(), timeout=GUARD) == 5


def test_cancelled_threaded_generator_with_backpressure_runs_to_its_end():
    """A threaded call is not interrupted by cancel: its ref fails at once, and its
    producer, which nobody will consume any more, is not left waiting."""
    actor = Threaded.options(max_concurrency=2).remote()
    gen = actor.bounded.options(_generator_backpressure_num_objects=1).remote(5)
    assert ray.get(next(gen), timeout=GUARD) == 0
    ray.cancel(gen)
    with pytest.raises(TaskCancelledError):
        ray.get(list(gen)[-1], timeout=GUARD)
    assert ray.get(actor.wait_finished.remote(), timeout=GUARD) is True


def test_generator_with_an_int_num_returns_gives_its_items_as_the_returns():
    """num_returns=N on a generator: N refs, one per yielded item (1: the item itself)."""
    one = count_up.options(num_returns=1).remote(1)
    assert ray.get(one, timeout=GUARD) == 0
    first, second = count_up.options(num_returns=2).remote(2)
    assert ray.get([first, second], timeout=GUARD) == [0, 1]
    with pytest.raises(ValueError, match="num_returns=1 but yielded 3"):
        ray.get(count_up.options(num_returns=1).remote(3), timeout=GUARD)


def test_generator_options_are_checked_where_given():
    with pytest.raises(ValueError, match="_generator_backpressure_num_objects"):
        count_up.options(_generator_backpressure_num_objects=0)
    with pytest.raises(ValueError, match="generator functions"):
        ray.remote(num_returns="streaming")(lambda: 1)
    with pytest.raises(ValueError, match="num_returns"):
        count_up.options(num_returns="sometimes")


def test_a_generator_is_not_a_value():
    """get(gen) and passing gen to a call are errors that say what to do instead."""
    gen = count_up.remote(2)
    with pytest.raises(TypeError, match="iterate"):
        ray.get(gen)
    with pytest.raises(TypeError, match="cannot be passed"):
        pickle.dumps(gen)
    with pytest.raises(TypeError, match="cannot be passed"):
        Threaded.remote().consume.remote(gen, 1)
    assert [ray.get(r, timeout=GUARD) for r in gen] == [0, 1]


def test_wait_takes_generators_and_refs_together(tmp_path):
    """A generator is ready in wait() when next() would not block."""
    gen = count_up.remote(2, gate_dir=str(tmp_path))
    blocked = ray.remote(lambda path: FileEvent(path).wait(GUARD)).remote(str(tmp_path / "x"))
    ready, not_ready = ray.wait([blocked, gen], timeout=GUARD)
    assert ready == [gen] and not_ready == [blocked]
    next(gen)
    FileEvent(tmp_path / "0").set()
    FileEvent(tmp_path / "1").set()
    FileEvent(tmp_path / "x").set()
    assert ray.get(blocked, timeout=GUARD) is True
    assert len(list(gen)) == 1


# -- the pure parts, without processes ---------------------------------------------------

def test_stream_gives_items_in_order_then_the_failure_then_the_end():
    stream = Stream()
    refs = [ray.ObjectRef(i, done_future(i)) for i in range(3)]
    stream.push(refs[:2])
    stream.push(refs[2:])
    assert [stream.take(timeout=GUARD) for _ in range(2)] == refs[:2]
    assert stream.ready() and not stream.finished()
    last = failed_ref(ValueError("x"), None)
    stream.end(last)
    stream.push([refs[0]])  # nothing arrives after the end
    assert stream.take(timeout=GUARD) == refs[2]
    assert stream.take(timeout=GUARD) is last
    assert stream.take(timeout=GUARD) is None and stream.finished()
    with pytest.raises(ValueError):
        last._future.result()


def test_stream_take_waits_for_a_push_from_another_thread_and_times_out():
    stream = Stream()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        stream.take(timeout=0.01)
    ref = ray.ObjectRef(1, done_future("v"))
    pusher = threading.Thread(target=stream.push, args=([ref],))

    async def main():
        waiting = asyncio.ensure_future(stream.take_async())
        await asyncio.sleep(0)  # the task now waits on the stream
        pusher.start()
        return await asyncio.wait_for(waiting, GUARD)
    assert asyncio.run(main()) is ref
    pusher.join(GUARD)


def test_stream_counts_what_the_consumer_took():
    counts = []
    stream = Stream(counts.append)
    stream.push([ray.ObjectRef(i, done_future(i)) for i in range(2)])
    stream.take()
    stream.take()
    assert counts == [1, 2]


def test_done_future_behaves_as_a_finished_future():
    import concurrent.futures
    fut = done_future(5)
    assert fut.done() and fut.result(timeout=0) == 5 and fut.exception() is None
    seen = []
    fut.add_done_callback(lambda f: seen.append(f.result()))
    assert seen == [5]
    done, not_done = concurrent.futures.wait([fut, done_future(6)], timeout=GUARD)
    assert len(done) == 2 and not not_done

    async def main():
        return await asyncio.wrap_future(fut)
    assert asyncio.run(main()) == 5
