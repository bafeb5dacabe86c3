"""Actor restarts and call retries (max_restarts, max_task_retries, retry_exceptions), and
actors that end on purpose (sys.exit, __ray_terminate__), through real worker processes."""
from __future__ import annotations

import os
import signal
import sys

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from jupyter_actors._jupyter.display import ActorTable
from tests.helpers import GUARD, FileEvent, pid_gone


def _die(how):
    if how == "exit":
        os._exit(3)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "segfault":
        import ctypes
        ctypes.string_at(0)


class Phoenix:
    """An actor that can crash on demand and remembers how it was made."""

    def __init__(self, value=None):
        self.value = value
        self.reconstructed = ray.get_runtime_context().was_current_actor_reconstructed

    def pid(self):
        return os.getpid()

    def state(self):
        return self.value, self.reconstructed

    def die(self, how="kill"):
        _die(how)

    def die_first_time(self, how="kill"):
        """Crash in the first process; answer in a restarted one."""
        if not ray.get_runtime_context().was_current_actor_reconstructed:
            _die(how)
        return os.getpid()

    def wait_for(self, path, mark):
        FileEvent(mark).set()
        return FileEvent(path).wait(GUARD)

    def leave(self, code):
        sys.exit(code) if code != "none" else sys.exit()

    def leave_with_exit_actor(self):
        from jupyter_actors.actor import exit_actor
        exit_actor()


def start_blocked_call(actor, events, name):
    """A call of `actor` that has started and now waits for a gate nobody opens."""
    gate, started = events(name), events(name + ".started")
    ref = actor.wait_for.remote(gate.path, started.path)
    assert started.wait()
    return ref


@pytest.mark.parametrize("how", ["exit", "kill", "segfault"])
def test_a_crashed_actor_is_restarted_with_its_constructor_arguments(how):
    """The call lost in the crash fails with ActorUnavailableError; the handle then reaches a
    new process whose constructor ran again with the same arguments."""
    actor = ray.remote(max_restarts=1)(Phoenix).remote(ray.put("config"))
    first = ray.get(actor.pid.remote(), timeout=GUARD)
    assert ray.get(actor.state.remote(), timeout=GUARD) == ("config", False)
    with pytest.raises(exceptions.ActorUnavailableError, match="being restarted") as info:
        ray.get(actor.die.remote(how), timeout=GUARD)
    assert isinstance(info.value, exceptions.RayActorError)
    assert pid_gone(first)
    assert ray.get(actor.state.remote(), timeout=GUARD) == ("config", True)
    assert ray.get(actor.pid.remote(), timeout=GUARD) != first
    assert actor._describe()["restarts"] == 1


def test_a_call_running_when_the_process_is_killed_from_outside_fails_as_unavailable(events):
    actor = ray.remote(max_restarts=1)(Phoenix).remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    running = start_blocked_call(actor, events, "gate")
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(exceptions.ActorUnavailableError, match="killed by SIGKILL"):
        ray.get(running, timeout=GUARD)
    assert ray.get(actor.state.remote(), timeout=GUARD) == (None, True)


@pytest.mark.parametrize("how", ["exit", "kill", "segfault"])
def test_max_task_retries_sends_the_lost_call_again_to_the_restarted_actor(how):
    actor = ray.remote(max_restarts=1, max_task_retries=1)(Phoenix).remote()
    first = ray.get(actor.pid.remote(), timeout=GUARD)
    answered_by = ray.get(actor.die_first_time.remote(how), timeout=GUARD)
    assert answered_by != first
    assert ray.get(actor.pid.remote(), timeout=GUARD) == answered_by


def test_max_task_retries_per_method_and_per_call():
    """@method(max_task_retries=...) and .options(max_task_retries=...) override the actor's 0."""
    @ray.remote(max_restarts=-1)
    class Flaky(Phoenix):
        @ray.method(max_task_retries=1)
        def die_first_time_retried(self):
            return self.die_first_time()

    actor = Flaky.remote()
    first = ray.get(actor.pid.remote(), timeout=GUARD)
    assert ray.get(actor.die_first_time_retried.remote(), timeout=GUARD) != first
    # In the restarted process die_first_time never dies; kill it once more by hand.
    with pytest.raises(exceptions.ActorUnavailableError):
        ray.get(actor.die.remote(), timeout=GUARD)
    ref = actor.die.options(max_task_retries=2).remote()
    with pytest.raises(exceptions.ActorUnavailableError):
        ray.get(ref, timeout=GUARD)  # every run kills it: the third failure is final
    assert actor._describe()["restarts"] == 5


def test_an_actor_that_keeps_crashing_stops_after_max_restarts_and_says_how_often():
    actor = ray.remote(max_restarts=2)(Phoenix).remote()
    for _ in range(2):
        with pytest.raises(exceptions.ActorUnavailableError):
            ray.get(actor.die.remote(), timeout=GUARD)
    with pytest.raises(exceptions.ActorDiedError, match=r"restarted 2 time\(s\), its "
                                                        r"max_restarts=2"):
        ray.get(actor.die.remote(), timeout=GUARD)
    with pytest.raises(exceptions.ActorDiedError, match="max_restarts=2"):
        ray.get(actor.pid.remote(), timeout=GUARD)  # later calls fail at once
    row = actor._describe()
    assert row["restarts"] == 2 and not row["alive"]


def test_a_constructor_that_crashes_on_every_restart_ends_after_max_restarts(tmp_path):
    """Each restart runs the constructor; when it crashes each time the restarts run out."""
    @ray.remote(max_restarts=3)
    class Fragile:
        def __init__(self, folder):
            starts = len(os.listdir(folder))
            open(os.path.join(folder, str(starts)), "w").close()
            if starts:
                os._exit(1)

        def die(self):
            os._exit(1)

    actor = Fragile.remote(str(tmp_path))
    with pytest.raises(exceptions.ActorUnavailableError):
        ray.get(actor.die.remote(), timeout=GUARD)
    with pytest.raises(exceptions.ActorDiedError, match=r"restarted 3 time\(s\)"):
        ray.get(actor.die.remote(), timeout=GUARD)
    assert len(os.listdir(tmp_path)) == 4   # the first start and three restarts


def test_max_restarts_minus_one_restarts_for_ever_and_retries_until_it_works(tmp_path):
    @ray.remote(max_restarts=-1, max_task_retries=-1)
    class Stubborn:
        def crash_three_times(self, folder):
            runs = len(os.listdir(folder))
            open(os.path.join(folder, str(runs)), "w").close()
            if runs < 3:
                os._exit(1)
            return runs

    actor = Stubborn.remote()
    assert ray.get(actor.crash_three_times.remote(str(tmp_path)), timeout=GUARD) == 3
    assert actor._describe()["restarts"] == 3
    assert "restarted 3 of unlimited" in repr(ActorTable([actor._describe()]))


def test_a_failed_constructor_is_not_restarted():
    @ray.remote(max_restarts=5)
    class Broken:
        def __init__(self):
            raise ValueError("bad config")

        def ping(self):
            return "pong"

    actor = Broken.remote()
    with pytest.raises(exceptions.ActorDiedError, match="ValueError: bad config"):
        ray.get(actor.ping.remote(), timeout=GUARD)
    assert actor._describe()["restarts"] == 0


def test_kill_with_no_restart_false_restarts_the_actor_and_later_calls_reach_it():
    actor = ray.remote(max_restarts=1)(Phoenix).remote("v")
    first = ray.get(actor.pid.remote(), timeout=GUARD)
    ray.kill(actor, no_restart=False)
    # Made right after the kill: it waits for the new process instead of failing.
    assert ray.get(actor.state.remote(), timeout=GUARD) == ("v", True)
    assert ray.get(actor.pid.remote(), timeout=GUARD) != first
    ray.kill(actor, no_restart=False)  # no restarts left: this one ends it
    with pytest.raises(exceptions.ActorDiedError, match=r"kill\(\)"):
        ray.get(actor.pid.remote(), timeout=GUARD)


def test_kill_ends_a_restartable_actor_for_good():
    actor = ray.remote(max_restarts=-1)(Phoenix).remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    ray.kill(actor)
    with pytest.raises(exceptions.ActorDiedError, match=r"killed by jupyter_actors.kill\(\)"):
        ray.get(actor.pid.remote(), timeout=GUARD)
    assert pid_gone(pid)
    assert actor._describe()["restarts"] == 0


def test_kill_with_no_restart_false_inside_a_worker_restarts_the_actor():
    actor = ray.remote(max_restarts=1)(Phoenix).remote()
    first = ray.get(actor.pid.remote(), timeout=GUARD)

    @ray.remote
    def restart(handle):
        ray.kill(handle, no_restart=False)
        return ray.get(handle.state.remote())
    assert ray.get(restart.remote(actor), timeout=GUARD) == (None, True)
    assert ray.get(actor.pid.remote(), timeout=GUARD) != first


def test_a_named_actor_keeps_its_name_across_a_restart():
    actor = ray.remote(max_restarts=1)(Phoenix).options(name="phoenix").remote(1)
    with pytest.raises(exceptions.ActorUnavailableError):
        ray.get(actor.die.remote(), timeout=GUARD)
    found = ray.get_actor("phoenix")
    assert ray.get(found.state.remote(), timeout=GUARD) == (1, True)


# -- ending an actor on purpose ----------------------------------------------------------

def _async_phoenix(**options):
    @ray.remote(**options)
    class AsyncPhoenix:
        async def pid(self):
            return os.getpid()

        async def leave(self, code):
            sys.exit(code) if code != "none" else sys.exit()
    return AsyncPhoenix


@pytest.mark.parametrize("kind", ["threaded", "async"])
def test_sys_exit_in_a_method_ends_the_actor(kind):
    """sys.exit() ends the actor as in Ray: its call and every later one fail with
    ActorDiedError saying it exited; max_restarts does not bring it back."""
    cls = ray.remote(max_restarts=2)(Phoenix) if kind == "threaded" else \
        _async_phoenix(max_restarts=2)
    actor = cls.remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    with pytest.raises(exceptions.ActorDiedError, match=r"exited on purpose \(sys.exit\(\)\)"):
        ray.get(actor.leave.remote("none"), timeout=GUARD)
    with pytest.raises(exceptions.ActorDiedError, match="exited on purpose"):
        ray.get(actor.pid.remote(), timeout=GUARD)
    assert pid_gone(pid)
    assert actor._describe()["restarts"] == 0


@pytest.mark.parametrize("kind", ["threaded", "async"])
def test_sys_exit_with_an_error_code_is_a_crash_that_max_restarts_restarts(kind):
    cls = ray.remote(max_restarts=1)(Phoenix) if kind == "threaded" else \
        _async_phoenix(max_restarts=1)
    actor = cls.remote()
    first = ray.get(actor.pid.remote(), timeout=GUARD)
    with pytest.raises(exceptions.ActorUnavailableError, match=r"exited with sys.exit\(3\)"):
        ray.get(actor.leave.remote(3), timeout=GUARD)
    assert ray.get(actor.pid.remote(), timeout=GUARD) != first
    with pytest.raises(exceptions.ActorDiedError, match=r"sys.exit\(3\).*max_restarts=1"):
        ray.get(actor.leave.remote(3), timeout=GUARD)


def test_sys_exit_without_max_restarts_fails_queued_calls_too(events):
    actor = ray.remote(Phoenix).remote()
    leaving = actor.leave.remote(1)
    queued = actor.pid.remote()
    for ref in (leaving, queued):
        with pytest.raises(exceptions.ActorDiedError, match=r"exited with sys.exit\(1\)"):
            ray.get(ref, timeout=GUARD)


def test_exit_actor_is_never_restarted():
    actor = ray.remote(max_restarts=3)(Phoenix).remote()
    with pytest.raises(exceptions.ActorDiedError, match=r"exit_actor\(\)"):
        ray.get(actor.leave_with_exit_actor.remote(), timeout=GUARD)
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(actor.pid.remote(), timeout=GUARD)
    assert actor._describe()["restarts"] == 0


@pytest.mark.parametrize("kind", ["threaded", "async"])
def test_ray_terminate_ends_the_actor_after_the_calls_before_it(kind, events):
    cls = ray.remote(Phoenix) if kind == "threaded" else _async_phoenix()
    actor = cls.remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    before = [actor.pid.remote() for _ in range(3)]
    terminate = actor.__ray_terminate__.remote()
    after = actor.pid.remote()
    assert ray.get(before, timeout=GUARD) == [pid] * 3
    # As in Ray, the terminate call's own ref fails: the actor is gone.
    for ref in (terminate, after):
        with pytest.raises(exceptions.ActorDiedError, match="__ray_terminate__"):
            ray.get(ref, timeout=GUARD)
    assert pid_gone(pid)


def test_ray_terminate_waits_for_a_running_call(events):
    actor = ray.remote(max_restarts=1)(Phoenix).remote()
    gate, started = events("gate"), events("started")
    running = actor.wait_for.remote(gate.path, started.path)
    assert started.wait()
    terminate = actor.__ray_terminate__.remote()
    gate.set()
    assert ray.get(running, timeout=GUARD) is True
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(terminate, timeout=GUARD)
    assert actor._describe()["restarts"] == 0  # an end on purpose is not restarted


# -- retry_exceptions ----------------------------------------------------------------------

def _runs(folder) -> int:
    runs = len(os.listdir(folder))
    open(os.path.join(folder, str(runs)), "w").close()
    return runs


def test_retry_exceptions_true_runs_a_failing_function_again(tmp_path):
    @ray.remote(max_retries=3, retry_exceptions=True)
    def flaky(folder):
        runs = _runs(folder)
        if runs < 2:
            raise KeyError(runs)
        return runs
    assert ray.get(flaky.remote(str(tmp_path)), timeout=GUARD) == 2


def test_retry_exceptions_gives_up_after_max_retries_with_the_last_error(tmp_path):
    @ray.remote(max_retries=2, retry_exceptions=[KeyError])
    def always(folder):
        raise KeyError(_runs(folder))
    with pytest.raises(KeyError) as info:
        ray.get(always.remote(str(tmp_path)), timeout=GUARD)
    assert info.value.cause.args == (2,)
    assert len(os.listdir(tmp_path)) == 3


def test_retry_exceptions_only_retries_the_listed_classes(tmp_path):
    @ray.remote(max_retries=5)
    def wrong(folder):
        raise ValueError(_runs(folder))
    with pytest.raises(ValueError):
        ray.get(wrong.options(retry_exceptions=[KeyError]).remote(str(tmp_path)),
                timeout=GUARD)
    assert len(os.listdir(tmp_path)) == 1
    with pytest.raises(ValueError):
        ray.get(wrong.remote(str(tmp_path)), timeout=GUARD)  # default: no retry on errors
    assert len(os.listdir(tmp_path)) == 2


def test_retry_exceptions_on_actor_methods(tmp_path):
    @ray.remote(max_task_retries=2)
    class Service:
        @ray.method(retry_exceptions=[ConnectionError])
        def fetch(self, folder):
            runs = _runs(folder)
            if runs < 2:
                raise ConnectionError(runs)
            return runs

        def plain(self, folder):
            raise ConnectionError(_runs(folder))

    for folder in "abc":
        os.makedirs(tmp_path / folder)
    service = Service.remote()
    assert ray.get(service.fetch.remote(str(tmp_path / "a")), timeout=GUARD) == 2
    with pytest.raises(ConnectionError):
        ray.get(service.plain.remote(str(tmp_path / "b")), timeout=GUARD)
    assert len(os.listdir(tmp_path / "b")) == 1
    ref = service.plain.options(retry_exceptions=True, max_task_retries=1).remote(
        str(tmp_path / "c"))
    with pytest.raises(ConnectionError):
        ray.get(ref, timeout=GUARD)
    assert len(os.listdir(tmp_path / "c")) == 2


@pytest.mark.parametrize("options, match", [
    ({"retry_exceptions": "yes"}, "retry_exceptions must be"),
    ({"retry_exceptions": [int]}, "retry_exceptions must be"),
    ({"max_retries": -2}, "max_retries must be"),
])
def test_bad_retry_options_fail_where_given(options, match):
    with pytest.raises(ValueError, match=match):
        ray.remote(**options)(lambda: None)


@pytest.mark.parametrize("options", [{"max_restarts": -2}, {"max_task_retries": "2"}])
def test_bad_restart_options_fail_where_given(options):
    with pytest.raises(ValueError, match="must be an int >= -1"):
        ray.remote(Phoenix).options(**options)


def test_ray_terminate_from_inside_a_worker():
    """A handle's __ray_terminate__ works wherever the handle is (the driver routes it)."""
    actor = ray.remote(Phoenix).remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)

    @ray.remote
    def end(handle):
        before = handle.pid.remote()
        handle.__ray_terminate__.remote()
        return ray.get(before)
    assert ray.get(end.remote(actor), timeout=GUARD) == pid
    with pytest.raises(exceptions.ActorDiedError, match="__ray_terminate__"):
        ray.get(actor.pid.remote(), timeout=GUARD)


def test_a_generator_call_lost_in_a_crash_is_retried_without_repeating_items():
    """A streaming call sent again to the restarted actor continues the stream: the items
    delivered before the crash are not delivered twice."""
    @ray.remote(max_restarts=1, max_task_retries=1)
    class Stream:
        def items(self, n):
            for i in range(n):
                if i == 2 and not ray.get_runtime_context().was_current_actor_reconstructed:
                    os._exit(1)
                yield i

    stream = Stream.remote()
    assert [ray.get(ref, timeout=GUARD) for ref in stream.items.remote(4)] == [0, 1, 2, 3]
    assert stream._describe()["restarts"] == 1
