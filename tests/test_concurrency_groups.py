"""Concurrency groups: each group's limit holds, and a full group holds up only its own calls.

Every call below blocks until the test releases it by key (an event inside the
actor), so "running" and "queued" are states the test controls; the counts come
from inside the actor, read by a call in a group of its own ("control").
"""
from __future__ import annotations

import asyncio
import collections
import threading

import pytest

import jupyter_actors as ray
from jupyter_actors._trace import tracer
from jupyter_actors.exceptions import TaskCancelledError
from jupyter_actors.runtime_context import get_runtime_context
from tests.helpers import GUARD, wait_until_started

GROUPS = {"io": 2, "compute": 3, "control": 1}


class _Counting:
    """What both kinds of actor share: per-group counts of running calls and their peaks."""

    def __init__(self):
        self.running = collections.Counter()
        self.peak = collections.Counter()
        self.started = []

    def _enter(self, group, key):
        self.running[group] += 1
        self.peak[group] = max(self.peak[group], self.running[group])
        self.started.append(key)

    def stats(self):
        return dict(self.running), dict(self.peak), list(self.started)


@ray.remote(concurrency_groups=GROUPS)
class AsyncGroups(_Counting):
    def __init__(self):
        super().__init__()
        self.events = collections.defaultdict(asyncio.Event)

    async def _hold(self, group, key):
        self._enter(group, key)
        try:
            await asyncio.wait_for(self.events[key].wait(), GUARD)
        finally:
            self.running[group] -= 1
        return group

    @ray.method(concurrency_group="io")
    async def io(self, key):
        return await self._hold("io", key)

    @ray.method(concurrency_group="compute")
    async def compute(self, key):
        return await self._hold("compute", key)

    async def plain(self, key):
        return await self._hold("default", key)

    @ray.method(concurrency_group="control")
    async def release(self, *keys):
        for key in keys:
            self.events[key].set()

    @ray.method(concurrency_group="control")
    async def read(self):
        return self.stats()


@ray.remote(concurrency_groups=GROUPS)
class ThreadedGroups(_Counting):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.events = collections.defaultdict(threading.Event)

    def _hold(self, group, key):
        with self.lock:
            self._enter(group, key)
            event = self.events[key]
        try:
            assert event.wait(GUARD), f"{key} was never released"
        finally:
            with self.lock:
                self.running[group] -= 1
        return group

    @ray.method(concurrency_group="io")
    def io(self, key):
        return self._hold("io", key)

    @ray.method(concurrency_group="compute")
    def compute(self, key):
        return self._hold("compute", key)

    def plain(self, key):
        return self._hold("default", key)

    @ray.method(concurrency_group="control")
    def release(self, *keys):
        with self.lock:
            for key in keys:
                self.events[key].set()

    @ray.method(concurrency_group="control")
    def read(self):
        with self.lock:
            return self.stats()


KINDS = pytest.mark.parametrize("cls", [AsyncGroups, ThreadedGroups], ids=["async", "threaded"])


@KINDS
def test_each_group_runs_up_to_its_size_and_a_full_group_blocks_no_other(cls):
    """io (2) full with one queued, default (max_concurrency=1) full with one queued:
    compute's three calls still start together and finish, and nothing passes its limit."""
    actor = cls.options(max_concurrency=1).remote()
    io = [actor.io.remote(f"io{i}") for i in range(3)]
    plain = [actor.plain.remote(f"p{i}") for i in range(2)]
    compute = [actor.compute.remote(f"c{i}") for i in range(3)]
    for ref in io[:2] + plain[:1] + compute:
        wait_until_started(ref)
    running, peak, started = ray.get(actor.read.remote(), timeout=GUARD)
    assert running == {"io": 2, "default": 1, "compute": 3}
    assert "io2" not in started and "p1" not in started
    assert io[2]._owner.started is None and plain[1]._owner.started is None

    # compute finishes while io and the default group stay full.
    ray.get(actor.release.remote("c0", "c1", "c2"), timeout=GUARD)
    assert ray.get(compute, timeout=GUARD) == ["compute"] * 3
    assert not any(ref._future.done() for ref in io + plain)

    # A place freed in io lets the queued io call in; the default group is still full.
    ray.get(actor.release.remote("io0"), timeout=GUARD)
    assert ray.get(io[0], timeout=GUARD) == "io"
    wait_until_started(io[2])
    assert plain[1]._owner.started is None

    ray.get(actor.release.remote("io1", "io2", "p0", "p1"), timeout=GUARD)
    assert ray.get(io + plain, timeout=GUARD) == ["io"] * 3 + ["default"] * 2
    running, peak, started = ray.get(actor.read.remote(), timeout=GUARD)
    assert peak == {"io": 2, "default": 1, "compute": 3}
    assert sorted(started) == sorted(["io0", "io1", "io2", "p0", "p1", "c0", "c1", "c2"])


@KINDS
def test_options_choose_the_group_of_one_call(cls):
    """``.options(concurrency_group=...)`` moves one call: out of a full group, or into one."""
    actor = cls.options(max_concurrency=1).remote()
    held = actor.plain.remote("p0")   # the default group (size 1) is now full
    wait_until_started(held)
    moved = actor.plain.options(concurrency_group="compute").remote("m0")
    wait_until_started(moved)         # it would queue behind p0 in the default group
    assert moved._owner.group == "compute" and held._owner.group is None
    io = [actor.io.remote("io0"), actor.io.remote("io1")]
    for ref in io:
        wait_until_started(ref)
    into_io = actor.compute.options(concurrency_group="io").remote("x0")
    running, _, started = ray.get(actor.read.remote(), timeout=GUARD)
    # (the actor counts calls by method: "default" is plain's p0 and m0)
    assert running == {"default": 2, "io": 2} and "x0" not in started
    ray.get(actor.release.remote("io0"), timeout=GUARD)
    wait_until_started(into_io)       # io had room again
    ray.get(actor.release.remote("p0", "m0", "io1", "x0"), timeout=GUARD)
    assert ray.get([held, moved, into_io] + io, timeout=GUARD) == \
        ["default", "default", "compute", "io", "io"]


@KINDS
def test_cancel_skips_a_call_queued_in_a_group(cls):
    """A call waiting in a full group is cancelled and never runs; the group goes on."""
    actor = cls.remote()
    io = [actor.io.remote("io0"), actor.io.remote("io1")]
    for ref in io:
        wait_until_started(ref)
    queued = actor.io.remote("io2")
    after = actor.io.remote("io3")
    ray.cancel(queued)
    with pytest.raises(TaskCancelledError):
        ray.get(queued, timeout=GUARD)
    ray.get(actor.release.remote("io0", "io1", "io3"), timeout=GUARD)
    assert ray.get(io + [after], timeout=GUARD) == ["io"] * 3
    _, _, started = ray.get(actor.read.remote(), timeout=GUARD)
    assert "io2" not in started and "io3" in started


def test_default_group_is_sized_by_max_concurrency():
    """With groups declared, methods with no group share max_concurrency places (here 2)."""
    actor = AsyncGroups.options(max_concurrency=2).remote()
    plain = [actor.plain.remote(f"p{i}") for i in range(3)]
    for ref in plain[:2]:
        wait_until_started(ref)
    running, _, started = ray.get(actor.read.remote(), timeout=GUARD)
    assert running == {"default": 2} and "p2" not in started
    ray.get(actor.release.remote("p0", "p1", "p2"), timeout=GUARD)
    assert ray.get(plain, timeout=GUARD) == ["default"] * 3


# -- what users see ------------------------------------------------------------------------

def test_trace_describe_and_reprs_show_groups():
    """Each call's record names its group; describe_actor and the reprs show sizes and counts."""
    actor = ThreadedGroups.options(max_concurrency=1).remote()
    io = actor.io.remote("io0")
    wait_until_started(io)
    row = actor._describe()
    assert row["max_concurrency"] == 1
    assert row["groups"] == [
        {"name": None, "max_concurrency": 1, "running": 0, "queued": 0},
        {"name": "io", "max_concurrency": 2, "running": 1, "queued": 0},
        {"name": "compute", "max_concurrency": 3, "running": 0, "queued": 0},
        {"name": "control", "max_concurrency": 1, "running": 0, "queued": 0}]
    from jupyter_actors._jupyter.display import ActorTable, actor_html, actor_text
    assert "max_concurrency=1 (io=2, compute=3, control=1)" in actor_text(row)
    assert "running=1 (default=0, io=1, compute=0, control=0)" in actor_text(row)
    assert "io=2, compute=3" in actor_html(row)
    table = repr(ActorTable([row]))
    assert "1 (io=2, compute=3, control=1)" in table
    ray.get(actor.release.remote("io0"), timeout=GUARD)
    ray.get(io, timeout=GUARD)
    plain = actor.plain.options(concurrency_group="compute").remote("p0")
    ray.get(actor.release.remote("p0"), timeout=GUARD)
    ray.get(plain, timeout=GUARD)
    groups = {r.call_id: r.group for r in tracer.snapshot() if r.actor_id == actor._actor_id}
    assert groups[io._id] == "io" and groups[plain._id] == "compute"
    events = ray.timeline()
    io_event = next(e for e in events if e.get("ph") == "X" and e["args"].get("call_id") == io._id)
    assert io_event["args"]["concurrency_group"] == "io"
    labels = next(e for e in events if e["name"] == "process_labels" and e["pid"] == row["pid"])
    assert labels["args"]["labels"] == ("threaded actor, max_concurrency=1, io=2, compute=3, "
                                        "control=1")


def test_timeline_model_rows_carry_the_group():
    """The Timeline's bars carry each call's group (its tooltip shows it), and the actor's
    detail line its group sizes."""
    from jupyter_actors.widgets._model import CONCURRENCY_GROUP, TimelineModel
    actor = AsyncGroups.remote()
    model = TimelineModel()
    model.add_section(owners=[actor._actor_id])
    refs = [actor.io.remote("io0"), actor.plain.remote("p0")]
    ray.get(actor.release.remote("io0", "p0"), timeout=GUARD)
    ray.get(refs, timeout=GUARD)
    model.ingest(tracer.snapshot())
    state = model.state()
    by_id = {row[0]: row for row in state["bars"]}
    assert by_id[refs[0]._id][CONCURRENCY_GROUP] == "io"
    assert by_id[refs[1]._id][CONCURRENCY_GROUP] is None
    assert "io=2 · compute=3 · control=1" in state["groups"][0]["detail"]


# -- mistakes, each raised where it was made ----------------------------------------------

def test_unknown_group_raises_at_remote():
    actor = AsyncGroups.remote()
    method = actor.io.options(concurrency_group="gpu")
    with pytest.raises(ValueError, match=r"AsyncGroups.io.remote\(\): unknown concurrency "
                                         r"group 'gpu'; its groups are 'io', 'compute'"):
        method.remote("x")

    @ray.remote
    class NoGroups:
        def f(self):
            return 1

    plain = NoGroups.remote()
    with pytest.raises(ValueError, match="unknown concurrency group 'io'; it declares none"):
        plain.f.options(concurrency_group="io").remote()
    assert ray.get(plain.f.remote(), timeout=GUARD) == 1


def test_method_naming_an_undeclared_group_raises_at_the_class():
    with pytest.raises(ValueError, match="Bad.f is in concurrency group 'gpu', which Bad does "
                                         "not declare: the class declares 'io'"):
        @ray.remote(concurrency_groups={"io": 1})
        class Bad:
            @ray.method(concurrency_group="gpu")
            def f(self):
                return 1


def test_groups_given_at_options_make_a_class_without_them_work():
    """A class whose methods name groups it declares nowhere fails at Cls.remote(), naming the
    fix; the same class with .options(concurrency_groups=...) runs."""
    @ray.remote
    class Later:
        @ray.method(concurrency_group="io")
        def f(self):
            return "io"

    with pytest.raises(ValueError, match=r"Later.f is in concurrency group 'io'.*declares none"):
        Later.remote()
    actor = Later.options(concurrency_groups={"io": 1}).remote()
    ref = actor.f.remote()
    assert ray.get(ref, timeout=GUARD) == "io" and ref._owner.group == "io"


def test_concurrency_group_on_a_remote_function_is_refused():
    with pytest.raises(TypeError, match="concurrency_group applies to actors and their methods, "
                                        "not to remote functions"):
        ray.remote(concurrency_group="io")(lambda: 1)

    @ray.remote
    def f():
        return 1

    with pytest.raises(TypeError, match="concurrency_groups applies to actors"):
        f.options(concurrency_groups={"io": 1})


@pytest.mark.parametrize("groups", [{"io": 0}, {"io": -1}, {"io": 1.5}, {"io": "2"},
                                    {"io": True}, {"": 1}, {1: 2}, ["io"]])
def test_bad_group_sizes_raise_at_the_decorator(groups):
    with pytest.raises(ValueError, match="concurrency_groups"):
        ray.remote(concurrency_groups=groups)(type("A", (), {}))
    with pytest.raises(ValueError, match="concurrency_groups"):
        AsyncGroups.options(concurrency_groups=groups)


def test_bad_group_name_on_a_method_raises_at_the_decorator():
    with pytest.raises(TypeError, match="concurrency_group must be a string"):
        ray.method(concurrency_group=3)


# -- handles that travel ------------------------------------------------------------------

@ray.remote
def call_in_group(handle, group):
    """From inside a task: call the handle's plain method in ``group``; the error's text if any."""
    try:
        return ray.get(handle.read.options(concurrency_group=group).remote(), timeout=GUARD)[0]
    except ValueError as exc:
        return str(exc)


def test_handles_passed_to_workers_and_found_by_name_know_the_groups():
    actor = AsyncGroups.options(name="grouped").remote()
    assert ray.get(call_in_group.remote(actor, "io"), timeout=GUARD) == {}
    assert "unknown concurrency group 'gpu'" in ray.get(call_in_group.remote(actor, "gpu"),
                                                        timeout=GUARD)
    found = ray.get_actor("grouped")
    with pytest.raises(ValueError, match="unknown concurrency group 'gpu'"):
        found.io.options(concurrency_group="gpu").remote("x")


def test_remote_cell_reads_concurrency_groups():
    """``%%remote --concurrency-groups '{"io": 2}'`` gives the same option as the decorator."""
    from jupyter_actors._jupyter.remote_cell import parse_options
    assert parse_options("--concurrency-groups '{\"io\": 2}' --max-concurrency 3") == \
        {"concurrency_groups": {"io": 2}, "max_concurrency": 3}


@ray.remote(concurrency_groups={"io": 1, "pool": 2})
class SelfCaller:
    @ray.method(concurrency_group="io")
    def io(self, target, group=None):
        """get() of this actor's own ``target`` call, from a thread of the io group."""
        me = get_runtime_context().current_actor
        method = getattr(me, target)
        if group is not None:
            method = method.options(concurrency_group=group)
        try:
            return ray.get(method.remote(), timeout=GUARD)
        except RuntimeError as exc:
            return str(exc)

    @ray.method(concurrency_group="io")
    def other_io(self):
        return "other io"

    def plain(self):
        return "default"


def test_get_of_a_call_queued_in_its_own_full_group_is_an_error_not_a_hang():
    """A call in a group of one that get()s another call of the same group is told why it
    would wait for ever; a call of another group (or the same method moved there) runs."""
    actor = SelfCaller.remote()
    message = ray.get(actor.io.remote("other_io"), timeout=GUARD)
    assert message.startswith("get() of SelfCaller.other_io inside the same actor would wait "
                              "for ever: its concurrency group 'io' runs one call at a time")
    assert "run it in another concurrency group" in message
    assert ray.get(actor.io.remote("plain"), timeout=GUARD) == "default"
    assert ray.get(actor.io.remote("other_io", "pool"), timeout=GUARD) == "other io"


@ray.remote(concurrency_groups={"gen": 1})
class AsyncGroupStreamer:
    def __init__(self):
        self.go_on = asyncio.Event()
        self.started = []

    @ray.method(concurrency_group="gen")
    async def items(self, key, n):
        self.started.append(key)
        yield "first"
        await asyncio.wait_for(self.go_on.wait(), GUARD)
        for i in range(n):
            yield i

    async def release(self):
        self.go_on.set()
        return list(self.started)


@ray.remote(concurrency_groups={"gen": 1})
class ThreadedGroupStreamer:
    def __init__(self):
        self.go_on = threading.Event()
        self.started = []

    @ray.method(concurrency_group="gen")
    def items(self, key, n):
        self.started.append(key)
        yield "first"
        assert self.go_on.wait(GUARD)
        yield from range(n)

    def release(self):
        self.go_on.set()
        return list(self.started)


@pytest.mark.parametrize("cls", [AsyncGroupStreamer, ThreadedGroupStreamer],
                         ids=["async", "threaded"])
def test_a_generator_holds_its_group_while_it_streams(cls):
    """A generator paused mid-stream keeps its place in its group of one: the next call of
    that group waits, a call of the default group runs and lets the stream go on."""
    actor = cls.remote()
    first = actor.items.remote("a", 2)
    assert ray.get(next(first), timeout=GUARD) == "first"
    second = actor.items.remote("b", 1)
    assert ray.get(actor.release.remote(), timeout=GUARD) == ["a"]
    assert [ray.get(ref, timeout=GUARD) for ref in first] == [0, 1]
    assert [ray.get(ref, timeout=GUARD) for ref in second] == ["first", 0]
    streams = [r for r in tracer.snapshot()
               if r.actor_id == actor._actor_id and r.label.endswith(".items")]
    assert len(streams) == 2 and all(r.group == "gen" for r in streams)
