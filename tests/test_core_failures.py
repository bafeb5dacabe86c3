"""When things go wrong: remote exceptions, dead actors, cancel, timeouts, kill, clean-up."""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from tests.helpers import GUARD, FileEvent, pid_gone


class Unpicklable(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = __import__("threading").Lock()


@ray.remote
class Worker:
    def __init__(self, fail_with=None):
        if fail_with is not None:
            raise fail_with

    def pid(self):
        return os.getpid()

    def fail(self):
        raise ValueError("bad value in the actor")

    def fail_unpicklable(self):
        raise Unpicklable("cannot travel")

    def die(self, how):
        if how == "exit":
            os._exit(3)
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "segfault":
            import ctypes
            ctypes.string_at(0)

    def wait_for(self, path, mark=None):
        if mark:
            FileEvent(mark).set()
        return FileEvent(path).wait(30)

    def touch(self, path):
        FileEvent(path).set()
        return "ran"


def start_blocked_call(actor, gate):
    """A call of `actor` that has started and now waits until `gate` (a FileEvent) is set."""
    started = FileEvent(gate.path + ".started")
    ref = actor.wait_for.remote(gate.path, started.path)
    assert started.wait()
    return ref


def test_remote_exception_is_its_own_class_and_a_task_error_with_the_remote_traceback():
    actor = Worker.remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    with pytest.raises(ValueError) as info:
        ray.get(actor.fail.remote(), timeout=GUARD)
    exc = info.value
    assert isinstance(exc, exceptions.RayTaskError) and isinstance(exc, exceptions.TaskError)
    assert str(exc) == "bad value in the actor"
    cause = str(exc.__cause__)
    assert "Worker.fail" in cause and f"pid {pid}" in cause
    assert 'raise ValueError("bad value in the actor")' in cause  # the user's own line
    assert ray.get(actor.pid.remote(), timeout=GUARD) == pid  # the actor lives on


def test_an_exception_that_cannot_be_pickled_still_arrives_as_text():
    actor = Worker.remote()
    with pytest.raises(exceptions.TaskError, match="Unpicklable: cannot travel"):
        ray.get(actor.fail_unpicklable.remote(), timeout=GUARD)


def test_remote_system_exit_does_not_exit_the_driver():
    @ray.remote
    def leave():
        sys.exit(4)
    with pytest.raises(exceptions.TaskError, match="SystemExit"):
        ray.get(leave.remote(), timeout=GUARD)


@pytest.mark.parametrize("how, detail", [
    ("exit", "exited with code 3"),
    ("kill", "killed by SIGKILL"),
    ("segfault", "killed by SIGSEGV"),
])
def test_a_dying_actor_fails_every_pending_call_and_every_later_one(how, detail):
    actor = Worker.remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    doomed = actor.die.remote(how)
    queued = [actor.pid.remote() for _ in range(3)]
    for ref in [doomed] + queued:
        with pytest.raises(exceptions.ActorDiedError) as info:
            ray.get(ref, timeout=GUARD)
    message = str(info.value)
    assert f"Worker (pid={pid})" in message and detail in message
    assert "4 pending call(s) failed" in message
    start = time.monotonic()
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(actor.pid.remote(), timeout=GUARD)
    assert time.monotonic() - start < 1.0  # fails at once, never waits


def test_external_kill_fails_pending_calls_within_a_second(events):
    actor = Worker.remote()
    ref = start_blocked_call(actor, events("never"))
    t0 = time.monotonic()
    os.kill(actor._describe()["pid"], signal.SIGKILL)
    with pytest.raises(exceptions.ActorDiedError, match="SIGKILL"):
        ray.get(ref, timeout=GUARD)
    assert time.monotonic() - t0 < 1.0


def test_an_exception_in_init_kills_the_actor_with_that_cause():
    actor = Worker.remote(KeyError("no config"))
    with pytest.raises(exceptions.ActorDiedError) as info:
        ray.get(actor.pid.remote(), timeout=GUARD)
    assert "Worker.__init__ raised KeyError" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(actor.pid.remote(), timeout=GUARD)


def test_get_timeout_raises_and_the_call_keeps_running(events):
    actor = Worker.remote()
    gate = events("gate")
    ref = actor.wait_for.remote(gate.path)
    with pytest.raises(exceptions.GetTimeoutError) as info:
        ray.get(ref, timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(exceptions.GetTimeoutError):
        ray.get([ref], timeout=0)
    gate.set()
    assert ray.get(ref, timeout=GUARD) is True


def test_cancel_a_queued_call_it_never_runs(events):
    actor = Worker.remote()
    gate, ran = events("gate"), events("ran")
    running = start_blocked_call(actor, gate)
    queued = actor.touch.remote(ran.path)
    ray.cancel(queued)
    with pytest.raises(exceptions.TaskCancelledError, match="before it started"):
        ray.get(queued, timeout=GUARD)
    gate.set()
    assert ray.get(running, timeout=GUARD) is True
    assert ray.get(actor.touch.remote(events("after").path), timeout=GUARD) == "ran"
    assert not ran.is_set()  # calls run in order, so it would have run before "after"


def test_cancel_in_a_threaded_pool_skips_a_queued_call_and_leaves_running_ones(events):
    """max_concurrency=2 with both threads busy: one call waits in the worker's queue."""
    actor = Worker.options(max_concurrency=2).remote()
    gate, ran = events("gate"), events("ran")
    first = start_blocked_call(actor, gate)
    second_started = events("second started")
    second = actor.wait_for.remote(gate.path, second_started.path)
    assert second_started.wait()
    queued = actor.touch.remote(ran.path)
    ray.cancel(queued)
    ray.cancel(second)
    with pytest.raises(exceptions.TaskCancelledError, match="before it started"):
        ray.get(queued, timeout=GUARD)
    with pytest.raises(exceptions.TaskCancelledError, match="not interrupted"):
        ray.get(second, timeout=GUARD)
    gate.set()
    assert ray.get(first, timeout=GUARD) is True
    # Both threads are free again; the cancelled call was skipped, not run late.
    assert ray.get(actor.touch.remote(events("after").path), timeout=GUARD) == "ran"
    assert ray.get(actor.touch.remote(events("after2").path), timeout=GUARD) == "ran"
    assert not ran.is_set()


def test_cancel_a_running_async_call_cancels_it_with_asyncio(capfd):
    """The coroutine sees CancelledError, and what it prints then comes before get() raises."""
    @ray.remote
    class Sleeper:
        def __init__(self):
            self.started = asyncio.Event()
            self.outcome = None

        async def long(self):
            self.started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.outcome = "cancelled"
                print("cleaning up after cancel")
                raise

        async def wait_started(self):
            await asyncio.wait_for(self.started.wait(), 30)

        async def how_it_ended(self):
            return self.outcome

    actor = Sleeper.remote()
    ref = actor.long.remote()
    ray.get(actor.wait_started.remote(), timeout=GUARD)
    ray.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError, match="interrupted"):
        ray.get(ref, timeout=GUARD)
    assert capfd.readouterr().out.endswith(") cleaning up after cancel\n")
    assert ray.get(actor.how_it_ended.remote(), timeout=GUARD) == "cancelled"


def test_a_call_made_after_cancelling_an_async_call_sees_the_cancel_done():
    """Cancel and the next call arrive in order: the cancelled coroutine has cleaned up
    before the next call starts, as when both are read in one go."""
    @ray.remote
    class Downloader:
        def __init__(self):
            self.history = []
            self.started = asyncio.Event()

        async def download(self):
            self.started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.started.clear()
                self.history.append("cancelled")
                raise

        async def wait_started(self):
            await asyncio.wait_for(self.started.wait(), 30)

        async def get_history(self):
            return list(self.history)

    actor = Downloader.remote()
    for _ in range(3):
        ref = actor.download.remote()
        ray.get(actor.wait_started.remote(), timeout=GUARD)
        ray.cancel(ref)
        history = actor.get_history.remote()
        assert ray.get(history, timeout=GUARD)[-1] == "cancelled"
        with pytest.raises(exceptions.TaskCancelledError):
            ray.get(ref, timeout=GUARD)


def test_cancel_a_running_threaded_call_is_not_interrupted(events):
    actor = Worker.remote()
    gate = events("gate")
    ref = start_blocked_call(actor, gate)
    ray.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError, match="not interrupted"):
        ray.get(ref, timeout=GUARD)
    gate.set()
    # The call ran to its end: the next call runs after it.
    assert ray.get(actor.touch.remote(events("next").path), timeout=GUARD) == "ran"


def test_cancel_a_running_remote_function_interrupts_it(events):
    """With a pool of one worker, the next task runs only if the cancelled one stopped."""
    ray.init(num_cpus=1)

    @ray.remote(max_retries=0)
    def spin(path):
        FileEvent(path).set()
        while True:
            time.sleep(0.01)

    started = events("started")
    ref = spin.remote(started.path)
    assert started.wait()
    ray.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=GUARD)

    @ray.remote
    def ok():
        return "pool still works"
    assert ray.get(ok.remote(), timeout=GUARD) == "pool still works"


def test_a_crashing_remote_function_fails_with_worker_crashed_and_the_pool_recovers():
    @ray.remote(max_retries=0)
    def crash():
        os._exit(7)

    @ray.remote
    def fine(x):
        return x

    with pytest.raises(exceptions.WorkerCrashedError, match="exited with code 7"):
        ray.get(crash.remote(), timeout=GUARD)
    assert ray.get([fine.remote(i) for i in range(4)], timeout=GUARD) == [0, 1, 2, 3]


def test_kill_stops_the_process_and_fails_pending_calls(events):
    actor = Worker.remote()
    ref = start_blocked_call(actor, events("never"))
    pid = actor._describe()["pid"]
    ray.kill(actor)
    with pytest.raises(exceptions.ActorDiedError, match="kill"):
        ray.get(ref, timeout=GUARD)
    with pytest.raises(exceptions.ActorDiedError, match="kill"):
        ray.get(actor.pid.remote(), timeout=GUARD)
    assert pid_gone(pid)


def test_shutdown_fails_pending_calls_and_stops_every_worker(events):
    actor = Worker.remote()
    ref = start_blocked_call(actor, events("never"))
    pid = actor._describe()["pid"]
    ray.shutdown()
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(ref, timeout=GUARD)
    assert pid_gone(pid)
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(actor.pid.remote(), timeout=GUARD)


def test_dropping_the_last_handle_ends_the_actor_after_its_queued_calls(events):
    actor = Worker.remote()
    started, gate = events("started"), events("gate")
    first = actor.wait_for.remote(gate.path, started.path)
    queued = actor.touch.remote(events("queued").path)
    assert started.wait()
    pid = actor._describe()["pid"]
    del actor
    gc.collect()
    gate.set()
    assert ray.get([first, queued], timeout=GUARD) == [True, "ran"]
    assert pid_gone(pid)


def test_a_handle_whose_methods_were_called_ends_its_actor_when_dropped_without_a_collection():
    """A handle keeps the methods it made (``h.f`` runs on every call); they hold what the
    handle calls through, not the handle, so no reference cycle keeps a dropped handle (and
    its actor) alive until a garbage collection. A method taken from the handle keeps the
    actor until it is dropped too."""
    actor = Worker.remote()
    pid = ray.get(actor.pid.remote(), timeout=GUARD)
    method = actor.pid
    assert actor.pid is method  # made once per handle and name
    gc.disable()  # only reference counts may end it
    try:
        del actor
        assert ray.get(method.remote(), timeout=GUARD) == pid
        del method
        assert pid_gone(pid)
    finally:
        gc.enable()


DRIVER_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import jupyter_actors as ray

    @ray.remote
    class A:
        def pid(self):
            return os.getpid()

    @ray.remote
    def task_pid():
        return os.getpid()

    actors = [A.remote() for _ in range(3)]
    pids = ray.get([a.pid.remote() for a in actors]) + [ray.get(task_pid.remote())]
    print(" ".join(map(str, pids)), flush=True)
    {tail}
""")


def _start_driver(tail: str) -> tuple:
    proc = subprocess.Popen([sys.executable, "-c", DRIVER_SCRIPT.format(tail=tail)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return proc, [int(p) for p in line.split()]


def test_killing_the_driver_with_sigkill_leaves_no_worker_behind():
    """Workers die with the driver; the next runtime removes the dead driver's shared memory."""
    from jupyter_actors._wire.payloads import session_dir_root
    proc, pids = _start_driver("time.sleep(60)")
    root = session_dir_root()
    left = [n for n in os.listdir(root) if n.startswith(f"jupyter_actors-{proc.pid}-")]
    assert len(left) == 1
    proc.kill()
    proc.wait(GUARD)
    for pid in pids:
        assert pid_gone(pid), f"worker {pid} outlived its driver"
    ray.init()
    assert not os.path.exists(os.path.join(root, left[0]))


def test_a_script_that_just_ends_leaves_no_worker_behind():
    proc, pids = _start_driver("")
    assert proc.wait(GUARD) == 0
    for pid in pids:
        assert pid_gone(pid)


def test_ctrl_c_interrupts_a_blocking_get_promptly():
    proc, pids = _start_driver(textwrap.dedent("""
        import signal
        @ray.remote
        class Slow:
            def forever(self):
                time.sleep(600)
        s = Slow.remote()
        ref = s.forever.remote()
        print("waiting", flush=True)
        t0 = time.monotonic()
        try:
            ray.get(ref)
        except KeyboardInterrupt:
            print(f"interrupted {time.monotonic() - t0:.3f}", flush=True)
            print(ray.get(actors[0].pid.remote()), flush=True)
    """))
    assert proc.stdout.readline().strip() == "waiting"
    time.sleep(0.2)  # let get() start blocking; the interrupt must work whenever it lands
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=GUARD)
    lines = out.splitlines()
    assert lines and lines[0].startswith("interrupted"), err
    assert int(lines[1]) == pids[0]  # actors still usable after the interrupt
    for pid in pids:
        assert pid_gone(pid)


@ray.remote
def spin_until(t, big):
    while time.monotonic() < t:  # worker and driver share the monotonic clock
        pass
    return b"x" * (4 << 20) if big else 1


def test_a_cancel_that_crosses_a_tasks_end_never_leaves_its_ref_pending():
    """A cancel's interrupt that reaches the worker as the task ends (while its result is
    made or written) either fails the call or comes too late: it never loses the end.
    The cancels are swept across the end of each call, small and big results."""
    ray.get(spin_until.remote(0, False), timeout=GUARD)
    outcomes = set()
    for i in range(120):
        t = time.monotonic() + 0.005
        ref = spin_until.remote(t, i % 2 == 1)
        offset = -300e-6 + (i % 30) * 40e-6
        while time.monotonic() < t + offset:
            pass
        ray.cancel(ref)
        try:
            ray.get(ref, timeout=GUARD)
            outcomes.add("value")
        except exceptions.TaskCancelledError:
            outcomes.add("cancelled")
    assert outcomes  # every ref resolved (a lost end would time out above)
