"""Remote functions sent to a busy worker ahead of time: cancel, crashes and waiting tasks
keep their exact meaning."""
from __future__ import annotations

import os
import time

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from jupyter_actors._backend.local import tasks
from tests.helpers import GUARD, FileEvent


@ray.remote(max_retries=0)
def gated(gate, then=None):
    assert FileEvent(gate).wait()
    if then == "crash":
        os._exit(7)
    return "opened"


@ray.remote(max_retries=0)
def record_run(path, value):
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    return value


def sent_ahead(ref, to_ref) -> bool:
    """The call is in the same worker as ``to_ref``'s, queued behind it (not started)."""
    deadline = time.monotonic() + GUARD
    while ref._owner.conn is None or to_ref._owner.conn is None:
        assert time.monotonic() < deadline, "the call was never sent to a worker"
        time.sleep(0.002)
    return ref._owner.conn is to_ref._owner.conn and ref._owner.started is None


@pytest.fixture(autouse=True)
def everything_is_brief(monkeypatch):
    """Calls are sent ahead only behind calls of functions that ran briefly, and only while
    the current one has not run long: here "briefly" is a minute, so that a call sent
    behind a gated one stays there for the test, whatever the machine's load."""
    monkeypatch.setattr(tasks, "BRIEF", 60.0)


def brief_run_once(tmp_path) -> None:
    """Only functions seen to run (briefly) are sent ahead: run each one once."""
    opened = tmp_path / "open"
    FileEvent(opened).set()
    assert ray.get([record_run.remote(str(tmp_path / "warm-up.log"), 0),
                    gated.remote(str(opened))], timeout=GUARD) == [0, "opened"]


def runs(path) -> list:
    return open(path).read().split() if os.path.exists(path) else []


def test_cancel_of_a_call_sent_ahead_skips_it(events, tmp_path):
    """A worker holds a queued call behind a blocked one; cancel: it never runs."""
    ray.init(num_cpus=1)
    brief_run_once(tmp_path)
    gate = events("gate")
    first = gated.remote(gate.path)
    log = tmp_path / "cancelled.log"
    queued = record_run.remote(str(log), "never")
    after = record_run.remote(str(tmp_path / "after.log"), "after")
    assert sent_ahead(queued, first) and sent_ahead(after, first)
    ray.cancel(queued)
    with pytest.raises(exceptions.TaskCancelledError, match="before it started"):
        ray.get(queued, timeout=GUARD)
    gate.set()
    assert ray.get([first, after], timeout=GUARD) == ["opened", "after"]
    assert runs(log) == []


@pytest.mark.parametrize("retries", [0, 1])
def test_a_crash_uses_up_retries_of_the_running_call_only(events, tmp_path, retries):
    """The worker dies in a call: that call is retried max_retries times exactly; the calls
    it held but had not started run elsewhere, once each, even with max_retries=0."""
    ray.init(num_cpus=1)
    brief_run_once(tmp_path)
    gate = events("gate")
    crash_log = tmp_path / "crash.log"

    @ray.remote
    def crash(path, gate_path):
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
        if gate_path is None:
            return None  # the warm-up run
        assert FileEvent(gate_path).wait()
        os._exit(7)

    assert ray.get(crash.remote(str(tmp_path / "warm-up-crash.log"), None),
                   timeout=GUARD) is None
    doomed = crash.options(max_retries=retries).remote(str(crash_log), gate.path)
    logs = [tmp_path / f"held-{i}.log" for i in range(3)]
    held = [record_run.remote(str(log), i) for i, log in enumerate(logs)]
    assert all(sent_ahead(ref, doomed) for ref in held)
    gate.set()
    with pytest.raises(exceptions.WorkerCrashedError, match="exited with code 7"):
        ray.get(doomed, timeout=GUARD)
    assert ray.get(held, timeout=GUARD) == [0, 1, 2]
    assert len(runs(crash_log)) == retries + 1
    assert [len(runs(log)) for log in logs] == [1, 1, 1]


@ray.remote
class Box:
    """Hands a value from the driver to a task that waits for it."""

    def __init__(self):
        import asyncio
        self.filled = asyncio.Event()
        self.value = None

    async def put(self, value):
        self.value = value
        self.filled.set()

    async def get(self):
        await self.filled.wait()
        return self.value


@ray.remote
def wait_for_what_is_boxed(box, gate):
    assert FileEvent(gate).wait()
    [ref] = ray.get(box.get.remote())
    return ray.get(ref)


def test_a_waiting_task_gives_back_the_calls_sent_ahead_to_its_worker(events, tmp_path):
    """A task waits for a call queued behind it in its own worker: that call runs elsewhere."""
    ray.init(num_cpus=1)
    brief_run_once(tmp_path)
    warm_up = Box.remote()
    warm_up.put.remote([ray.put("boxed")])
    assert ray.get(wait_for_what_is_boxed.remote(warm_up, str(tmp_path / "open")),
                   timeout=GUARD) == "boxed"
    box, gate = Box.remote(), events("gate")
    waiter = wait_for_what_is_boxed.remote(box, gate.path)
    awaited = record_run.remote(str(tmp_path / "awaited.log"), "from another worker")
    assert sent_ahead(awaited, waiter)
    gate.set()
    box.put.remote([awaited])
    assert ray.get(waiter, timeout=GUARD) == "from another worker"
    assert len(runs(tmp_path / "awaited.log")) == 1
