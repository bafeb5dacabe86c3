"""Actors and tasks that call each other: handles and refs anywhere, calls from inside workers."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import time

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from jupyter_actors._api import session
from jupyter_actors.runtime_context import get_runtime_context
from tests.helpers import GUARD, FileEvent, pid_gone


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def incr(self, k=1):
        self.n += k
        return self.n

    def value(self):
        return self.n

    def pid(self):
        return os.getpid()


@dataclasses.dataclass
class Box:
    counter: object
    label: str


@ray.remote
def bump(counter, times=1):
    """A task that calls an actor it was handed."""
    return ray.get([counter.incr.remote() for _ in range(times)])[-1]


@ray.remote
def bump_all(holder):
    """Handles nested in a list, a dict and a dataclass."""
    out = []
    for c in holder["list"] + [holder["box"].counter]:
        out.append(ray.get(c.incr.remote(10)))
    return out


@ray.remote
class Keeper:
    """Keeps a handle in its state and gives it back."""

    def __init__(self, counter):
        self.counter = counter

    def use(self):
        return ray.get(self.counter.incr.remote(100))

    def give_back(self):
        return self.counter

    def new_counter(self, start):
        return Counter.remote(start)


def test_a_handle_as_an_argument_calls_the_same_actor():
    counter = Counter.remote()
    assert ray.get(bump.remote(counter, 5), timeout=GUARD) == 5
    assert ray.get(counter.value.remote(), timeout=GUARD) == 5


def test_handles_nested_in_lists_dicts_and_dataclasses():
    a, b, c = Counter.remote(), Counter.remote(1), Counter.remote(2)
    holder = {"list": [a, b], "box": Box(c, "c")}
    assert ray.get(bump_all.remote(holder), timeout=GUARD) == [10, 11, 12]


def test_a_handle_in_actor_state_and_in_a_return_value():
    counter = Counter.remote()
    keeper = Keeper.remote(counter)
    assert ray.get(keeper.use.remote(), timeout=GUARD) == 100
    back = ray.get(keeper.give_back.remote(), timeout=GUARD)
    assert back == counter and ray.get(back.incr.remote(), timeout=GUARD) == 101
    made = ray.get(keeper.new_counter.remote(7), timeout=GUARD)  # an actor made by an actor
    assert ray.get(made.incr.remote(), timeout=GUARD) == 8


def test_a_handle_captured_in_a_closure_of_a_remote_function():
    counter = Counter.remote()

    @ray.remote
    def closure_bump():
        return ray.get(counter.incr.remote(3))

    assert ray.get(closure_bump.remote(), timeout=GUARD) == 3


@ray.remote
class Trainer:
    def __init__(self, index):
        self.index = index

    def train(self, steps):
        return self.index * steps


@ray.remote
class Supervisor:
    """Creates Trainer actors (a remote class that refers to another)."""

    def __init__(self, n):
        self.trainers = [Trainer.remote(i) for i in range(n)]

    def run(self, steps):
        return ray.get([t.train.remote(steps) for t in self.trainers])


def test_a_supervisor_creates_and_calls_trainers():
    sup = Supervisor.remote(3)
    assert ray.get(sup.run.remote(10), timeout=GUARD) == [0, 10, 20]


@ray.remote
def quicksort(xs):
    if len(xs) <= 1:
        return xs
    pivot, rest = xs[0], xs[1:]
    low = quicksort.remote([x for x in rest if x < pivot])
    high = quicksort.remote([x for x in rest if x >= pivot])
    return ray.get(low) + [pivot] + ray.get(high)


def test_a_recursive_remote_quicksort_does_not_run_out_of_workers():
    """Tasks waiting for their own subtasks: more nested waits than pool workers."""
    data = [9, 3, 7, 1, 8, 2, 6, 4, 5, 0, 11, 10]
    assert ray.get(quicksort.remote(data), timeout=GUARD) == sorted(data)


@ray.remote
def put_get_wait_inside(counter):
    stored = ray.put({"k": [1, 2, 3]})
    refs = [counter.incr.remote() for _ in range(4)]
    ready, rest = ray.wait(refs, num_returns=4, timeout=GUARD)
    return ray.get(stored), sorted(ray.get(ready)), rest, stored


def test_put_get_and_wait_inside_a_task_and_a_ref_made_there_is_usable_here():
    counter = Counter.remote()
    value, got, rest, stored = ray.get(put_get_wait_inside.remote(counter), timeout=GUARD)
    assert value == {"k": [1, 2, 3]} and got == [1, 2, 3, 4] and rest == []
    assert ray.get(stored, timeout=GUARD) == {"k": [1, 2, 3]}  # a worker's put, got here


@ray.remote
class Store:
    """An async actor that returns refs to values it puts, and keeps none of them."""

    async def put_one(self, value):
        return {"stored": ray.put(value)}

    async def put_after(self, value, event):
        await asyncio.wait_for(event.wait.remote(), GUARD)  # (ends with the others)
        return [ray.put(value)]


@ray.remote
class Event:
    def __init__(self):
        self.event = asyncio.Event()

    async def set(self):
        self.event.set()

    async def wait(self):
        await self.event.wait()


def test_an_async_actor_returns_refs_to_values_it_put_and_dropped():
    """The actor drops its refs as its calls end, before their ends are written (several
    ends of one turn of its loop go out together): the driver still gets the values."""
    store = Store.remote()
    got = ray.get(store.put_one.remote("alone"), timeout=GUARD)
    assert ray.get(got["stored"], timeout=GUARD) == "alone"
    event = Event.remote()
    refs = [store.put_after.remote(i, event) for i in range(20)]
    ray.get(event.set.remote(), timeout=GUARD)
    assert [ray.get(r[0], timeout=GUARD) for r in ray.get(refs, timeout=GUARD)] == list(range(20))


@ray.remote
class Gather:
    async def fan_out(self, counter, n):
        return await asyncio.gather(*[counter.incr.remote() for _ in range(n)])

    async def await_one(self, counter):
        return await counter.incr.remote(50)


def test_await_and_gather_inside_an_async_actor():
    counter = Counter.remote()
    g = Gather.remote()
    assert sorted(ray.get(g.fan_out.remote(counter, 5), timeout=GUARD)) == [1, 2, 3, 4, 5]
    assert ray.get(g.await_one.remote(counter), timeout=GUARD) == 55


@ray.remote
def add(a, b):
    return a + b


@ray.remote
def chain_in_worker():
    """A top-level ref argument made inside a worker is resolved before the call."""
    first = add.remote(1, 2)
    return ray.get(add.remote(first, 10))


def test_top_level_refs_from_a_worker_are_resolved_before_the_call():
    assert ray.get(chain_in_worker.remote(), timeout=GUARD) == 13


def test_a_ref_passed_nested_and_one_captured_out_of_band():
    ref = ray.put(41)
    nested = [ref]

    @ray.remote
    def from_closure():
        return ray.get(ref) + 1

    @ray.remote
    def from_list(items):
        return ray.get(items[0]) + 2

    assert ray.get(from_closure.remote(), timeout=GUARD) == 42
    assert ray.get(from_list.remote(nested), timeout=GUARD) == 43


@ray.remote
class Waiter:
    def __init__(self, gate):
        self.gate = gate

    def wait(self, mark):
        FileEvent(mark).set()
        return FileEvent(self.gate).wait(GUARD)


@ray.remote
def cancel_and_kill_inside(waiter, victim, mark):
    ref = waiter.wait.remote(mark)
    queued = waiter.wait.remote(mark + ".2")  # queued behind the running call
    ray.cancel(queued)
    try:
        ray.get(queued, timeout=GUARD)
        cancelled = False
    except exceptions.TaskCancelledError:
        cancelled = True
    ray.kill(victim)
    try:
        ray.get(victim.value.remote(), timeout=GUARD)
        killed = False
    except exceptions.ActorDiedError:
        killed = True
    return cancelled, killed, ref


def test_cancel_and_kill_inside_a_worker(events):
    gate = events("gate")
    waiter, victim = Waiter.remote(gate.path), Counter.remote()
    cancelled, killed, running = ray.get(
        cancel_and_kill_inside.remote(waiter, victim, events("mark").path), timeout=GUARD)
    assert cancelled and killed
    gate.set()
    assert ray.get(running, timeout=GUARD) is True


@ray.remote
def find_named():
    return ray.get(ray.get_actor("shared-counter").incr.remote(2))


def test_get_actor_inside_a_worker():
    counter = Counter.options(name="shared-counter").remote()
    assert ray.get(find_named.remote(), timeout=GUARD) == 2
    assert ray.get(counter.value.remote(), timeout=GUARD) == 2


@ray.remote
class AsksTheDriver:
    """Its calls start in the turn of the loop that read them: ``find`` asks the
    driver (and reads its answer itself) before its first ``await``."""

    async def find(self, name):
        return await ray.get_actor(name).incr.remote(1)

    async def ping(self):
        return "pong"


def test_an_async_actor_asks_the_driver_before_its_first_await_and_later_calls_run_in_order():
    counter = Counter.options(name="asked-counter").remote()
    asker = AsksTheDriver.remote()
    assert ray.get(asker.ping.remote(), timeout=GUARD) == "pong"  # its loop reads now
    refs = []
    for _ in range(5):
        refs += [asker.find.remote("asked-counter"), asker.ping.remote()]
    assert ray.get(refs, timeout=GUARD) == [1, "pong", 2, "pong", 3, "pong", 4, "pong", 5, "pong"]
    assert ray.get(counter.value.remote(), timeout=GUARD) == 5


@ray.remote
class AsyncInit:
    async def __init__(self, counter):
        self.start = await counter.incr.remote(5)
        self.loop_ran_init = asyncio.get_running_loop() is not None

    async def start_value(self):
        return self.start, self.loop_ran_init


def test_async_def_init_runs_on_the_loop_before_any_call():
    counter = Counter.remote()
    actor = AsyncInit.remote(counter)
    assert AsyncInit.is_async
    assert ray.get(actor.start_value.remote(), timeout=GUARD) == (5, True)


@ray.remote
class Caller:
    def call_dead(self, target):
        try:
            ray.get(target.value.remote(), timeout=GUARD)
        except exceptions.ActorDiedError as exc:
            return f"died: {type(exc).__name__}"
        return "alive?"

    def wait_on_self(self):
        me = get_runtime_context().current_actor
        return ray.get(me.pid.remote())

    def pid(self):
        return os.getpid()

    def send_unpicklable(self, target):
        import threading
        try:
            target.incr.remote(threading.Lock())
        except TypeError as exc:
            return str(exc)
        return "no error"


def test_a_call_to_a_dead_actor_from_a_worker_fails_there_and_the_caller_lives():
    target, caller = Counter.remote(), Caller.remote()
    ray.get(target.value.remote(), timeout=GUARD)
    ray.kill(target)
    assert ray.get(caller.call_dead.remote(target), timeout=GUARD) == "died: ActorDiedError"
    assert ray.get(caller.pid.remote(), timeout=GUARD) > 0


def test_waiting_on_a_call_to_itself_is_a_clear_error():
    """A threaded actor (max_concurrency 1) that get()s its own queued call would hang."""
    caller = Caller.remote()
    with pytest.raises(RuntimeError, match="would wait for ever"):
        ray.get(caller.wait_on_self.remote(), timeout=GUARD)


def test_unpicklable_arguments_from_a_worker_fail_at_the_call_site():
    caller, target = Caller.remote(), Counter.remote()
    message = ray.get(caller.send_unpicklable.remote(target), timeout=GUARD)
    assert "Could not pickle argument" in message and "Counter.incr" in message


def _lent():
    return session.backend().runtime.lent


def _wait_for(condition, what):
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@ray.remote
class Sink:
    def take(self, items):
        return sum(ray.get(r) for r in items)

    def ping(self):
        return True


def test_refs_passed_to_a_long_lived_actor_are_freed_after_use():
    """Refs nested in arguments are released once the actor drops them: none stay pinned."""
    sink = Sink.remote()
    for i in range(200):
        assert ray.get(sink.take.remote([ray.put(i), ray.put(1)]), timeout=GUARD) == i + 1
    ray.get(sink.ping.remote(), timeout=GUARD)  # releases travel before later results
    _wait_for(lambda: not [r for r in _lent().refs if r not in _lent().pinned],
              "refs the actor dropped are still lent to it")


@ray.remote
class Holder:
    def __init__(self):
        self.kept = None

    def keep(self, handle):
        self.kept = handle
        return True

    def drop(self):
        self.kept = None
        return True

    def call_kept(self):
        return ray.get(self.kept.incr.remote())

    def die(self):
        os._exit(1)


def test_an_actor_lives_while_any_process_holds_a_handle():
    """The driver's last handle gone, an actor held by another lives; then it exits."""
    counter, holder = Counter.remote(), Holder.remote()
    pid = ray.get(counter.pid.remote(), timeout=GUARD)
    assert ray.get(holder.keep.remote(counter), timeout=GUARD)
    del counter  # the driver's last handle
    assert ray.get(holder.call_kept.remote(), timeout=GUARD) == 1  # alive: the holder has it
    assert ray.get(holder.drop.remote(), timeout=GUARD)
    assert ray.get(holder.drop.remote(), timeout=GUARD)  # the release went before this result
    assert pid_gone(pid), "the actor did not exit after the last handle anywhere was dropped"


def test_a_worker_that_dies_releases_what_it_held():
    counter, holder = Counter.remote(), Holder.remote()
    pid = ray.get(counter.pid.remote(), timeout=GUARD)
    assert ray.get(holder.keep.remote(counter), timeout=GUARD)
    del counter
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(holder.die.remote(), timeout=GUARD)
    assert pid_gone(pid), "an actor held only by a dead worker should exit"


@ray.remote
class Introspect:
    def context(self):
        ctx = get_runtime_context()
        return (ctx.get_actor_id(), ctx.get_task_id(), ctx.get_job_id(), ctx.get_actor_name(),
                ctx.namespace, ctx.current_actor.pid.remote() is not None)

    def pid(self):
        return os.getpid()


@ray.remote
def task_context():
    ctx = get_runtime_context()
    return ctx.get_actor_id(), ctx.get_task_id(), ctx.get_job_id()


def test_runtime_context_in_the_driver_an_actor_and_a_task():
    actor = Introspect.options(name="introspect", namespace="ns").remote()
    actor_id, task_id, job_id, name, namespace, has_self = ray.get(
        actor.context.remote(), timeout=GUARD)
    assert actor_id == actor._actor_id and name == "introspect" and namespace == "ns"
    assert task_id and len(task_id) == 32 and has_self
    here = get_runtime_context()
    assert here.get_actor_id() is None and here.get_job_id() == job_id
    t_actor, t_task, t_job = ray.get(task_context.remote(), timeout=GUARD)
    assert t_actor is None and t_task and t_job == job_id


@ray.remote
class Quitter:
    def quit(self):
        from jupyter_actors.actor import exit_actor
        exit_actor()
        return "not reached"

    def pid(self):
        return os.getpid()


def test_exit_actor_ends_the_actor_on_purpose():
    actor = Quitter.remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    quitting = actor.quit.remote()
    after = actor.pid.remote()
    for ref in (quitting, after):
        with pytest.raises(exceptions.ActorDiedError, match="exited on purpose"):
            ray.get(ref, timeout=GUARD)
    assert pid_gone(pid)
    with pytest.raises(TypeError, match="inside an actor"):
        from jupyter_actors.actor import exit_actor
        exit_actor()
