"""What the backend seam adds: actor ids that survive pickling, honoured limits, no silent hangs."""
from __future__ import annotations

import os
import pickle

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from jupyter_actors._api import session
from jupyter_actors._wire.messages import CallOk
from tests.helpers import GUARD, FileEvent


@ray.remote
class Gated:
    def wait_for(self, path, mark=None):
        if mark:
            FileEvent(mark).set()
        return FileEvent(path).wait(GUARD)

    def pid(self):
        return os.getpid()


@ray.remote
def pid_of_worker():
    return os.getpid()


@ray.remote
def wait_for(path, mark):
    FileEvent(mark).set()
    return FileEvent(path).wait(GUARD)


def test_a_handle_pickles_to_its_actor_id(events):
    """Pickled and unpickled in the driver, a handle is the same actor, and it works."""
    actor = Gated.remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    copy = pickle.loads(pickle.dumps(actor))
    assert copy == actor and hash(copy) == hash(actor) and copy._actor_id == actor._actor_id
    assert ray.get(copy.pid.remote(), timeout=GUARD) == pid


def test_every_actor_has_its_own_id():
    a, b = Gated.remote(), Gated.remote()
    assert a._actor_id != b._actor_id and len(a._actor_id) == 16
    assert {row["actor_id"] for row in session.backend().describe_actors()} >= {
        a._actor_id, b._actor_id}


def test_max_pending_calls_is_honoured(events):
    """The call over the limit raises at .remote(); once one finishes, calls go in again."""
    actor = Gated.options(max_pending_calls=2).remote()
    gate, started = events("gate"), events("started")
    first = actor.wait_for.remote(gate.path, started.path)
    second = actor.pid.remote()
    assert started.wait()
    with pytest.raises(exceptions.PendingCallsLimitExceeded, match="max_pending_calls=2"):
        actor.pid.remote()
    gate.set()
    assert ray.get([first, second], timeout=GUARD)[0] is True
    assert ray.get(actor.pid.remote(), timeout=GUARD) > 0


@pytest.mark.parametrize("value", [0, -2, 1.5, True])
def test_max_pending_calls_must_be_minus_one_or_positive(value):
    with pytest.raises(ValueError, match="max_pending_calls"):
        Gated.options(max_pending_calls=value)


def test_max_calls_replaces_the_worker_after_that_many_calls():
    """max_calls=1: every call of the function runs in a fresh worker process."""
    once = pid_of_worker.options(max_calls=1)
    pids = [ray.get(once.remote(), timeout=GUARD) for _ in range(3)]
    assert len(set(pids)) == 3
    reused = [ray.get(pid_of_worker.remote(), timeout=GUARD) for _ in range(3)]
    assert len(set(reused)) < 3  # without max_calls, a worker runs many calls


def test_shutdown_says_the_runtime_was_shut_down(events):
    """Calls pending at shutdown() fail with an error that says so, not like a crash."""
    actor = Gated.remote()
    running = actor.wait_for.remote(events("never").path, events("started").path)
    queued = actor.pid.remote()
    assert events("started").wait()
    task = wait_for.remote(events("never2").path, events("task_started").path)
    assert events("task_started").wait()
    ray.shutdown()
    for ref in (running, queued):
        with pytest.raises(exceptions.ActorDiedError, match=r"shutdown\(\)") as info:
            ray.get(ref, timeout=GUARD)
        assert "SIGKILL" not in str(info.value)
    with pytest.raises(exceptions.WorkerCrashedError, match="shut down"):
        ray.get(task, timeout=GUARD)


def test_a_bug_in_a_result_handler_fails_the_call_instead_of_hanging(capfd):
    """A handler that raises on the I/O thread fails the call it handled; the runtime goes on."""
    actor = Gated.remote()
    ray.get(actor.pid.remote(), timeout=GUARD)
    handlers = session.backend().runtime.io.handlers
    real = handlers[CallOk]

    def broken(conn, message):
        raise RuntimeError("a bug in the handler")
    handlers[CallOk] = broken
    try:
        with pytest.raises(exceptions.TaskError, match="a bug in the handler"):
            ray.get(actor.pid.remote(), timeout=GUARD)
        with pytest.raises(exceptions.TaskError, match="a bug in the handler"):
            ray.get(actor.pid.remote(), timeout=GUARD)
    finally:
        handlers[CallOk] = real
    assert ray.get(actor.pid.remote(), timeout=GUARD) > 0  # the I/O thread still runs
    err = capfd.readouterr().err
    assert err.count("Traceback") == 1 and "handling CallOk" in err  # logged once
