"""Tracing of calls and the Chrome-trace export, on the scenarios of Ray's async-actor guide.

Overlap is proven inside the actors (calls that wait for each other with an
asyncio.Event or a threading.Barrier), never by sleeping; every wait has a
deadlock guard.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

import jupyter_actors as ray
from jupyter_actors import tracing
from jupyter_actors._trace import tracer
from tests.helpers import GUARD, wait_until_started


@ray.remote
class Meeting:
    """An async actor whose calls meet in groups: each call waits until its group is complete.

    With the FIFO gate of max_concurrency the n-th call to start belongs to
    group n // size; a group of ``size`` calls can only complete if all of
    them run at the same time.
    """

    def __init__(self):
        self.arrived = 0
        self.groups: dict = {}

    async def run_task(self, size: int) -> int:
        index = self.arrived // size
        self.arrived += 1
        event = self.groups.setdefault(index, asyncio.Event())
        if self.arrived % size == 0:
            event.set()
        await asyncio.wait_for(event.wait(), GUARD)
        return index

    async def fail(self):
        raise ValueError("deliberate failure")

    async def wait_forever(self):
        await asyncio.sleep(GUARD * 10)


@ray.remote
class Threaded:
    def __init__(self, parties: int = 1):
        self.barrier = threading.Barrier(parties, timeout=GUARD)
        self.order: list = []

    def meet(self) -> int:
        return self.barrier.wait()

    def step(self, i: int) -> int:
        self.order.append(i)
        return i

    def block_until(self, path: str) -> None:
        from tests.helpers import FileEvent
        assert FileEvent(path).wait(GUARD)


def lanes_never_overlap(records) -> bool:
    by_lane: dict = {}
    for r in records:
        by_lane.setdefault((r.pid, r.slot), []).append(r)
    for calls in by_lane.values():
        calls.sort(key=lambda r: r.started)
        for a, b in zip(calls, calls[1:]):
            if b.started < a.finished:
                return False
    return True


def test_max_concurrency_2_runs_two_at_a_time_on_two_lanes():
    """Seed: AsyncActor.options(max_concurrency=2) with 8 tasks: max overlap 2, lanes 0 and 1."""
    actor = Meeting.options(max_concurrency=2).remote()
    assert ray.get([actor.run_task.remote(2) for _ in range(8)], timeout=GUARD) == \
        [0, 0, 1, 1, 2, 2, 3, 3]
    records = tracing.select(actor)
    assert len(records) == 8 and all(r.status == "finished" for r in records)
    assert tracing.max_overlap(records) == 2
    assert {r.slot for r in records} == {0, 1}
    assert lanes_never_overlap(records)
    # Queued time is recorded: the last pair waited for three pairs before it.
    last = max(records, key=lambda r: r.call_id)
    assert last.started >= max(r.finished for r in records if r.call_id < last.call_id - 1)


def test_five_tasks_of_a_default_async_actor_all_run_at_once():
    """Seed: five run_task calls on a default async actor overlap five-fold, one lane each."""
    actor = Meeting.remote()
    ray.get([actor.run_task.remote(5) for _ in range(5)], timeout=GUARD)
    records = tracing.select(actor)
    assert tracing.max_overlap(records) == 5
    assert sorted(r.slot for r in records) == [0, 1, 2, 3, 4]
    assert lanes_never_overlap(records)
    pid = actor._describe()["pid"]
    assert {r.pid for r in records} == {pid}


def test_default_threaded_actor_runs_calls_serially_in_submission_order():
    """max_concurrency=1: one lane, no overlap, starts in the order the calls were made."""
    actor = Threaded.remote()
    refs = [actor.step.remote(i) for i in range(20)]
    assert ray.get(refs, timeout=GUARD) == list(range(20))
    records = sorted(tracing.select(actor), key=lambda r: r.call_id)
    assert [r.label for r in records] == ["Threaded.step"] * 20
    assert tracing.max_overlap(records) == 1
    assert {r.slot for r in records} == {0}
    for a, b in zip(records, records[1:]):
        assert a.submitted <= b.submitted and a.finished <= b.started


def test_threaded_actor_with_two_threads_overlaps_on_two_lanes():
    """A threading.Barrier(2) inside the actor proves two calls ran at once, on threads 0 and 1."""
    actor = Threaded.options(max_concurrency=2).remote(2)
    ray.get([actor.meet.remote() for _ in range(6)], timeout=GUARD)
    records = tracing.select(actor)
    assert tracing.max_overlap(records) == 2
    assert {r.slot for r in records} == {0, 1}
    assert lanes_never_overlap(records)


def test_failed_call_is_marked_in_the_record_and_the_trace():
    """A raising method: status failed, and the trace names it and carries the error."""
    actor = Meeting.remote()
    with pytest.raises(ValueError):
        ray.get(actor.fail.remote(), timeout=GUARD)
    (record,) = [r for r in tracing.select(actor) if r.label == "Meeting.fail"]
    assert record.status == "failed" and record.started is not None
    (event,) = [e for e in ray.timeline(actor) if e["ph"] == "X" and e["cat"] == "call"]
    assert event["name"] == "Meeting.fail (failed)"
    assert event["args"]["status"] == "failed"
    assert "deliberate failure" in event["args"]["error"]
    assert event["cname"] == "terrible"


def test_cancelled_queued_call_is_marked_and_never_ran(tmp_path):
    """cancel() of a call queued behind a blocked one: cancelled, no start, a queued span."""
    release = tmp_path / "release"
    actor = Threaded.remote()
    blocker = actor.block_until.remote(str(release))
    queued = actor.step.remote(1)
    ray.cancel(queued)
    release.touch()
    ray.get(blocker, timeout=GUARD)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(queued, timeout=GUARD)
    ray.get(actor.step.remote(2), timeout=GUARD)  # the worker has answered everything before
    (record,) = [r for r in tracing.select(actor) if r.label == "Threaded.step"
                 and r.status == "cancelled"]
    assert record.started is None and record.finished is not None
    events = ray.timeline(actor)
    spans = [e for e in events if e.get("cat") == "queued" and e["id"] == hex(record.call_id)]
    assert [e["ph"] for e in spans] == ["b", "e"]
    assert spans[0]["name"] == "queued: Threaded.step (cancelled)"
    assert not [e for e in events if e["ph"] == "X" and e["args"].get("call_id") == record.call_id]


def test_cancelled_running_async_call_is_marked_and_kept_once():
    """A running async call cancelled: its bar ends at the cancellation, recorded once."""
    actor = Meeting.remote()
    ref = actor.wait_forever.remote()
    record = ref._owner
    wait_until_started(ref)
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=GUARD)
    ray.get(actor.run_task.remote(1), timeout=GUARD)  # the worker's "cancelled" came before
    assert record.status == "cancelled"
    assert [r.call_id for r in tracer.snapshot()].count(record.call_id) == 1
    (event,) = [e for e in ray.timeline(actor) if e["ph"] == "X"
                and e["args"]["call_id"] == record.call_id]
    assert event["name"] == "Meeting.wait_forever (cancelled)" and event["cname"] == "grey"


def test_timeline_tracks_metadata_window_and_file(tmp_path):
    """One process per actor, one thread per slot, named; narrowed by actor and time; JSON file."""
    a = Meeting.options(max_concurrency=2).remote()
    b = Threaded.remote()
    ray.get([a.run_task.remote(2) for _ in range(4)] + [b.step.remote(1)], timeout=GUARD)
    middle = time.monotonic()
    ray.get(b.step.remote(2), timeout=GUARD)

    path = tmp_path / "trace.json"
    events = ray.timeline(str(path), actors=[a, b])
    saved = json.loads(path.read_text())
    assert saved["traceEvents"] == events and saved["displayTimeUnit"] == "ms"
    complete = [e for e in events if e["ph"] == "X" and e["cat"] == "call"]
    assert len(complete) == 6
    assert all(isinstance(e["ts"], float) and e["dur"] >= 0 for e in complete)
    pa, pb = a._describe()["pid"], b._describe()["pid"]
    assert {e["tid"] for e in complete if e["pid"] == pa} == {0, 1}
    thread_names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
                    if e["ph"] == "M" and e["name"] == "thread_name"}
    assert thread_names[(pa, 1)] == "slot 1" and thread_names[(pb, 0)] == "thread 0"
    process_names = {e["pid"]: e["args"]["name"] for e in events
                     if e["ph"] == "M" and e["name"] == "process_name"}
    assert process_names == {pa: f"Meeting pid={pa}", pb: f"Threaded pid={pb}"}
    # Actor creation is on its own track, below the slots.
    inits = [e for e in events if e["ph"] == "X" and e["cat"] == "init"]
    assert {e["name"] for e in inits} == {"Meeting.__init__", "Threaded.__init__"}
    assert {e["tid"] for e in inits} == {tracing.LIFECYCLE_TID}
    assert thread_names[(pa, tracing.LIFECYCLE_TID)] == "actor creation"

    only_b = [e for e in ray.timeline(b) if e["ph"] == "X" and e["cat"] == "call"]
    assert {e["pid"] for e in only_b} == {pb} and len(only_b) == 2
    recent = [e for e in ray.timeline(actors=b, since=middle) if e["ph"] == "X"
              and e["cat"] == "call"]
    assert [e["args"]["call_id"] for e in recent] == [max(e["args"]["call_id"] for e in only_b)]


def test_remote_functions_get_one_track_per_worker_process():
    """Tasks: a process track per pool worker, named "tasks pid=N"."""
    @ray.remote
    def square(x):
        return x * x

    refs = [square.remote(i) for i in range(4)]
    assert ray.get(refs, timeout=GUARD) == [0, 1, 4, 9]
    ids = {r._id for r in refs}
    events = ray.timeline()
    mine = [e for e in events if e["ph"] == "X" and e["args"].get("call_id") in ids]
    assert len(mine) == 4 and {e["name"] for e in mine} == {"square"}
    names = {e["pid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "process_name"}
    for e in mine:
        assert names[e["pid"]] == f"tasks pid={e['pid']}"


def test_listeners_see_submit_start_finish_and_nothing_stays_active():
    """A listener gets the three events in order; finished calls and creations leave `active`."""
    seen: list = []
    lock = threading.Lock()

    def listener(event, record):
        with lock:
            seen.append((event, record.call_id))

    tracer.add_listener(listener)
    try:
        actor = Threaded.remote()
        ref = actor.step.remote(7)
        assert ray.get(ref, timeout=GUARD) == 7
    finally:
        tracer.remove_listener(listener)
    assert [e for e, i in seen if i == ref._id] == ["submit", "start", "finish"]
    assert listener not in tracer.listeners
    ray.get(actor.step.remote(8), timeout=GUARD)
    leftovers = [r for r in tracer.active.values() if r.actor_id == actor._actor_id]
    assert leftovers == []


def test_threaded_pool_starts_calls_in_the_order_they_were_made():
    """max_concurrency=4: calls leave the queue first in, first out, and the trace says so —
    whether a call found an idle thread or waited for one, and whichever thread ran first."""
    actor = Threaded.options(max_concurrency=4).remote()
    refs = []
    for i in range(60):
        refs.append(actor.step.remote(i))
        if i % 7 == 0:
            ray.get(refs[-1], timeout=GUARD)  # idle threads again: the hand-off path
    assert ray.get(refs, timeout=GUARD) == list(range(60))
    records = sorted(tracing.select(actor), key=lambda r: r.call_id)
    assert [r.label for r in records] == ["Threaded.step"] * 60
    starts = [r.started for r in records]
    assert starts == sorted(starts)


class StatusError(Exception):
    """Equal when the status is: a user's __eq__ that ignores what the errors say."""

    def __init__(self, status, url):
        super().__init__(status, url)
        self.status, self.url = status, url

    def __str__(self):
        return f"{self.status} for {self.url}"

    def __eq__(self, other):
        return isinstance(other, StatusError) and self.status == other.status

    __hash__ = Exception.__hash__


class TouchyError(Exception):
    """A user's __eq__ that raises when compared with anything but its own kind."""

    def __eq__(self, other):
        return self.args[0] == other.args[0]

    __hash__ = Exception.__hash__


@ray.remote
class Fetcher:
    def fetch(self, url):
        raise StatusError(500, url)

    def touchy(self, n):
        raise TouchyError(n)

    def echo(self, i):
        return i


def test_failed_calls_keep_their_own_errors_whatever_their_eq_says():
    """The trace never compares users' errors with ==: three errors that say they are equal
    stay three errors, and one whose __eq__ raises neither breaks the trace nor stops the
    calls after it (their rows are packed, many times over, with it)."""
    capacity = tracer.capacity
    fetcher = Fetcher.remote()
    assert ray.get(fetcher.echo.remote(0), timeout=GUARD) == 0
    tracer.clear()
    tracer.resize(400)  # packed every 100 calls
    try:
        urls = ["http://a", "http://b", "http://c"]
        for url in urls:
            with pytest.raises(StatusError):
                ray.get(fetcher.fetch.remote(url), timeout=GUARD)
        fetches = [r for r in tracer.snapshot() if r.label == "Fetcher.fetch"]
        assert [r.error.url for r in fetches] == urls
        events = [e for e in ray.timeline(fetcher) if e["ph"] == "X" and e["cat"] == "call"]
        assert [url for url in urls for e in events if url in e["args"]["error"]] == urls

        with pytest.raises(TouchyError):
            ray.get(fetcher.touchy.remote(1), timeout=GUARD)
        for i in range(250):
            assert ray.get(fetcher.echo.remote(i), timeout=GUARD) == i
        calls = tracer.snapshot()
        assert sum(r.label == "Fetcher.echo" for r in calls) == 250
        (touchy,) = [r for r in calls if r.label == "Fetcher.touchy"]
        assert touchy.status == "failed" and isinstance(touchy.error, TouchyError)
        assert [r.error.url for r in calls if r.label == "Fetcher.fetch"] == urls
    finally:
        tracer.resize(capacity)


def test_older_calls_kept_compact_read_the_same_and_the_trace_stays_bounded():
    """Past the newest calls the trace keeps tuples (untracked by the garbage collector):
    timelines read them as before, errors included, and capacity bounds the total."""
    capacity = tracer.capacity
    tracer.clear()
    tracer.resize(40)
    try:
        actor = Meeting.remote()
        with pytest.raises(ValueError):
            ray.get(actor.fail.remote(), timeout=GUARD)
        threaded = Threaded.remote()
        assert ray.get([threaded.step.remote(i) for i in range(60)], timeout=GUARD) \
            == list(range(60))
        finished = [r for r in tracer.snapshot() if r.status != "pending"]
        assert len(finished) <= 40
        steps = [r for r in finished if r.label == "Threaded.step"]
        compact = [r for r in steps if type(r).__name__ == "FinishedCall"]
        assert compact and len(steps) == len(finished) - sum(
            r.label != "Threaded.step" for r in finished)
        # The newest calls, oldest first; compact ones read like records.
        ids = [r.call_id for r in steps]
        assert ids == sorted(ids)
        for r in compact:
            assert r.owner.class_name == "Threaded" and r.actor_id == threaded._actor_id
            assert r.status == "finished" and r.started <= r.finished and r.error is None
        events = [e for e in ray.timeline(threaded) if e["ph"] == "X" and e["cat"] == "call"]
        assert {e["args"]["call_id"] for e in events} == set(ids)

        # A failed call keeps its error once compact.
        tracer.clear()
        tracer.resize(4)
        with pytest.raises(ValueError):
            ray.get(actor.fail.remote(), timeout=GUARD)
        ray.get([threaded.step.remote(i) for i in range(2)], timeout=GUARD)
        (failed,) = [r for r in tracer.snapshot() if r.label == "Meeting.fail"]
        assert type(failed).__name__ == "FinishedCall" and failed.status == "failed"
        assert "deliberate failure" in str(failed.error)
        (event,) = [e for e in ray.timeline(actor) if e["ph"] == "X" and e["cat"] == "call"]
        assert "deliberate failure" in event["args"]["error"]
    finally:
        tracer.resize(capacity)


def test_a_long_run_of_results_reads_as_one_finished_call_each():
    """300 calls that end in one turn of an async actor's loop come back together, and the
    trace keeps such a run in one step: each reads as a finished call of its own."""
    actor = Meeting.remote()
    refs = [actor.run_task.remote(300) for _ in range(300)]
    assert ray.get(refs, timeout=GUARD) == [0] * 300
    ids = {ref._id for ref in refs}
    calls = [r for r in tracer.snapshot() if r.call_id in ids]
    assert sorted(r.call_id for r in calls) == sorted(ids)
    for r in calls:
        assert (r.kind, r.label, r.status, r.error, r.group) == \
            ("call", "Meeting.run_task", "finished", None, None)
        assert r.actor_id == actor._actor_id and r.owner.class_name == "Meeting"
        assert r.submitted <= r.started <= r.finished and r.pid == r.owner.pid
        assert isinstance(r.slot, int) and 0 <= r.slot < 1000
    assert not ids & set(tracer.active)
    events = [e for e in ray.timeline(actor) if e["ph"] == "X" and e["cat"] == "call"]
    assert {e["args"]["call_id"] for e in events} >= ids
    # All 300 ran at once: the slots of an async actor's in-flight calls differ.
    assert len({r.slot for r in calls}) == 300


def test_runs_of_results_keep_order_fields_and_capacity_like_calls_ending_one_by_one():
    """The tracer on its own, fed real call records as the I/O thread feeds it: a run kept
    as one chunk, a run of two methods, a run with a call that ended before, and calls that
    ended one by one read back alike, oldest first, and the oldest go first past capacity."""
    from jupyter_actors._backend.local.records import CallRecord
    from jupyter_actors._backend.local.tasks import TaskPool
    from jupyter_actors._trace import Tracer
    from jupyter_actors._wire.frames import FrameDecoder, encode_oks, unpack_oks
    from jupyter_actors._wire.messages import CallsOk

    pool = TaskPool(None, 1)
    trace = Tracer(capacity=1000)

    def calls(n, label="square"):
        records = [CallRecord("task", label, label, pool, b"", (), 1, None) for _ in range(n)]
        for slot, record in enumerate(records):
            trace.record_submitted(record)
            record.started, record.finished = time.monotonic(), time.monotonic()
            record.slot, record.pid, record.status = slot, 4242, "finished"
        return records

    def ends(records):
        """The run's numbers as the I/O thread hands them on: from the CallsOk frame a
        worker writes for these calls."""
        frame = encode_oks([(r.call_id, b"", r.started, r.finished, r.slot) for r in records])
        (message,) = FrameDecoder().feed(frame)
        assert type(message) is CallsOk
        return unpack_oks(message)

    fields = ("call_id", "kind", "label", "actor_id", "status", "submitted", "started",
              "finished", "slot", "pid", "group", "owner", "error")

    def rows(records):
        return [tuple(getattr(r, f) for f in fields) for r in records]

    alone = calls(3)
    for record in alone:
        trace.record_finished(record)
    long_run = calls(200)
    trace.record_run_finished(long_run, ends(long_run))
    mixed = calls(100) + calls(100, "cube")
    trace.record_run_finished(mixed, ends(mixed))
    cancelled, *rest = calls(80)
    cancelled.status, cancelled.error = "cancelled", ValueError("cancelled first")
    trace.record_finished(cancelled)
    cancelled.started = cancelled.finished  # what its worker reports later
    trace.record_run_finished([cancelled] + rest, None)
    everything = alone + long_run + mixed + [cancelled] + rest
    assert rows(trace.snapshot()) == rows(everything)
    assert trace.active == {} and not trace._in_flight

    more = calls(900)
    trace.record_run_finished(more, ends(more))
    kept = trace.snapshot()
    assert len(kept) <= 1000 and rows(kept) == rows((everything + more)[-len(kept):])


@ray.remote
class MeetThenReturn:
    """An async actor whose calls all wait for the last one, so they end in one turn of its
    loop and their results come back in one run; the middle call returns a ref inside."""

    def __init__(self):
        self.arrived = 0
        self.all_here = asyncio.Event()

    async def run(self, i: int, size: int):
        self.arrived += 1
        if self.arrived == size:
            # Set two turns of the loop later, when this call waits as the others do
            # (else it ends alone, first): up to 3.11 wait_for waits through a task that
            # starts on the next turn, from 3.12 on it awaits the event in place.
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self.all_here.set)
        await asyncio.wait_for(self.all_here.wait(), GUARD)
        return {"inner": ray.put(i)} if i == size // 2 else i


def test_a_run_of_results_is_recorded_in_the_order_it_ended():
    """A run of results handled by the I/O thread keeps its order in the trace when a call
    in the middle of it takes the general way (its value holds a ref), and when a
    done-callback of one of its calls starts a listener (a widget opening) half-way."""
    size = 40
    actor = MeetThenReturn.remote()
    heard: list = []

    def listener(event, record):
        heard.append((event, record.call_id))

    all_done = threading.Event()
    refs = [actor.run.remote(i, size) for i in range(size)]
    refs[size // 4].add_done_callback(lambda _ref: tracer.add_listener(listener))
    refs[-1].add_done_callback(lambda _ref: all_done.set())
    try:
        assert all_done.wait(GUARD)  # (nobody waits in get(): the I/O thread reads the run)
    finally:
        tracer.remove_listener(listener)
    values = ray.get(refs, timeout=GUARD)
    assert values[:size // 2] == list(range(size // 2)) and ray.get(values[size // 2]["inner"]) == size // 2
    ids = [ref._id for ref in refs]
    calls = [r for r in tracer.snapshot() if r.call_id in set(ids)]
    assert len(calls) == size and all(r.status == "finished" for r in calls)
    assert [r.finished for r in calls] == sorted(r.finished for r in calls)
    # The listener heard each later call of the run finish, once.
    finished = [call_id for event, call_id in heard if event == "finish" and call_id in set(ids)]
    assert len(finished) == len(set(finished)) and set(finished) >= set(ids[size // 4 + 1:])
