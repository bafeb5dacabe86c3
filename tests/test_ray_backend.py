"""The Ray backend itself: choosing it, its errors, what it passes to Ray, what it traces.

One head node (``ray start --head``) serves the module; each test joins it
with ``init(address=...)`` as a user of a real cluster does.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from jupyter_actors._api import session
from jupyter_actors._trace import tracer
from tests.helpers import GUARD, FileEvent, value_when_set, wait_until_started
from tests.ray_cluster import free_port

# Ray starts in 5-30 s, and far slower on a loaded machine.
pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAY_CLIENT_SERVER = True   # the module's head node serves Ray Client too (see conftest)


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def incr(self, k=1):
        self.n += k
        return self.n

    def pid(self):
        return os.getpid()


@ray.remote
def environment_variable(name):
    return os.environ.get(name)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=4 * GUARD, cwd=ROOT, env=full_env)


def test_the_environment_chooses_ray_with_no_code_change(ray_head):
    """JUPYTER_ACTORS_BACKEND=ray and RAY_ADDRESS: the first remote call joins that cluster."""
    out = _run("""
        import os, jupyter_actors as ray
        @ray.remote
        def where():
            return os.getpid()
        pid = ray.get(where.remote(), timeout=60)
        print(ray.backend_name(), pid != os.getpid(), ray.init(ignore_reinit_error=True)["backend"])
        """, JUPYTER_ACTORS_BACKEND="ray", RAY_ADDRESS=ray_head.address)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ray", "True", "ray"]


def test_asking_for_ray_without_ray_says_what_to_install():
    """Without Ray installed, init(backend='ray') is an ImportError naming the extra."""
    out = _run("""
        import sys
        sys.modules["ray"] = None   # as if Ray were not installed
        import jupyter_actors as ray
        try:
            ray.init(backend="ray")
        except ImportError as exc:
            print(exc)
        """)
    assert out.returncode == 0, out.stderr
    assert 'pip install "jupyter_actors[ray]"' in out.stdout


def test_an_unreachable_address_fails_fast_naming_it():
    """Nothing listens at the address: a ConnectionError within seconds, naming it."""
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=address):
        ray.init(address=address)
    assert time.monotonic() - start < 10
    assert not ray.is_initialized()
    with pytest.raises(ConnectionError, match="ray://127.0.0.1"):
        ray.init(address=f"ray://{address}")


def test_a_ref_of_the_embedded_runtime_cannot_be_passed_to_ray(ray_head):
    """Switching backends: refs and handles made before are refused with a clear error."""
    old_ref = ray.put(41)
    old_actor = Counter.remote()
    assert ray.get(old_actor.incr.remote(), timeout=GUARD) == 1
    ray.shutdown()
    ray.init(address=ray_head.address)
    c = Counter.remote()
    with pytest.raises(ValueError, match="embedded runtime"):
        c.incr.remote(old_ref)
    with pytest.raises(ValueError, match="embedded runtime"):
        c.incr.remote([old_ref])
    with pytest.raises(ValueError, match="embedded runtime"):
        c.incr.remote(old_actor)
    assert ray.get(c.incr.remote(), timeout=GUARD) == 1   # the session is fine


def test_refs_and_handles_of_ray_cannot_be_passed_to_the_embedded_runtime(ray_head):
    """Switching back: our refs and handles made on Ray, and Ray's own, are refused with an
    error saying where they were made, nested or not; the session goes on."""
    import ray as real
    ray.init(address=ray_head.address)
    ours_ref, ours_actor = ray.put(41), Counter.remote()
    assert ray.get(ours_actor.incr.remote(), timeout=GUARD) == 1
    raw_ref = real.put(7)
    ray.shutdown()
    ray.init()
    assert ray.backend_name() == "local"
    c = Counter.remote()
    for value in (ours_ref, [ours_ref], {"key": ours_actor}):
        with pytest.raises(TypeError, match="made while Ray ran the session"):
            c.incr.remote(value)
    with pytest.raises(ValueError, match="an ObjectRef of Ray .* embedded runtime"):
        c.incr.remote(raw_ref)
    assert ray.get(c.incr.remote(), timeout=GUARD) == 1   # the session is fine


def test_options_are_passed_to_ray(ray_head):
    """Resources are real on Ray, and runtime_env is honoured (refused on the embedded runtime)."""
    ray.init(address=ray_head.address)
    needs_gpu = environment_variable.options(num_gpus=1).remote("HOME")
    ready, _ = ray.wait([needs_gpu], timeout=1)
    assert ready == []          # the cluster has no GPU: Ray keeps it waiting
    ray.cancel(needs_gpu)
    with_env = environment_variable.options(runtime_env={"env_vars": {"JA_FLAG": "on-ray"}})
    assert ray.get(with_env.remote("JA_FLAG"), timeout=4 * GUARD) == "on-ray"
    assert ray.available_resources().get("CPU", 0) >= 1


def test_calls_on_ray_are_traced_with_their_pids_and_slots(ray_head):
    """timeline() draws calls that ran on Ray, with the actor's pid, once the workers report."""
    ray.init(address=ray_head.address)
    c = Counter.remote()
    pid = ray.get(c.pid.remote(), timeout=GUARD)
    refs = [c.incr.remote() for _ in range(3)]
    ray.get(refs, timeout=GUARD)
    deadline = time.monotonic() + GUARD
    while any(r._owner is None or r._owner.pid is None for r in refs):
        assert time.monotonic() < deadline, "the workers' start times never arrived"
        time.sleep(0.02)
    records = [r for r in tracer.snapshot() if r.label == "Counter.incr"][-3:]
    assert {r.pid for r in records} == {pid}
    assert all(r.slot == 0 and r.started <= r.finished for r in records)
    events = [e for e in ray.timeline() if e.get("name") == "Counter.incr"]
    assert len(events) >= 3 and all(e["pid"] == pid for e in events[-3:])


@ray.remote
class Entries:
    """Methods that reach the host by its one general entry point, and one by its own name."""

    def call(self, x):            # the host's own entry point has this name
        return ("call", x)

    def _private(self, x):
        return ("private", x)

    @ray.method(num_returns=2)
    def pair(self, x):
        return x, x + 1

    def plain(self, x):
        return ("plain", x)


def test_every_way_into_an_actor_on_ray_runs_its_method_and_is_traced(ray_head):
    """A driver's one-value call goes to the method's own entry, keyed by Ray's task id;
    the others (a name the host uses itself, a private one, two returns) go through the
    general entry with our key: each reaches the user's method and reports its times."""
    ray.init(address=ray_head.address)
    e = Entries.remote()
    refs = [e.plain.remote(1), e.call.remote(2), e._private.remote(3)]
    first, second = e.pair.remote(4)
    assert ray.get(refs + [first, second], timeout=GUARD) == [
        ("plain", 1), ("call", 2), ("private", 3), 4, 5]
    records = [r._owner for r in refs + [first]]
    assert records[0].key != records[0].call_id   # the direct call: Ray's task id
    assert all(r.key == r.call_id for r in records[1:])
    deadline = time.monotonic() + GUARD
    while any(r.pid is None for r in records):
        assert time.monotonic() < deadline, "a worker's report never reached its call"
        time.sleep(0.02)
    assert len({r.pid for r in records}) == 1


def test_a_call_shows_as_running_on_ray_before_it_ends(ray_head, tmp_path):
    """A short call's start and finish come together; a long one's start comes while it runs
    (the live Timeline draws it running), its finish later."""
    ray.init(address=ray_head.address)
    release = FileEvent(tmp_path / "release")
    c = Counter.remote()
    ray.get(c.incr.remote(), timeout=GUARD)
    ref = ray.remote(value_when_set).remote(str(release.path), "done")
    wait_until_started(ref)
    record = ref._owner
    assert record.status == "running" and record.finished is None and record.pid is not None
    release.set()
    assert ray.get(ref, timeout=GUARD) == "done"
    deadline = time.monotonic() + GUARD
    while record.finished is None or record.status != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert record.started <= record.finished


def test_a_trace_line_read_half_written_is_joined(ray_head):
    """Ray's log monitor may read a worker's line while it is being written and pass it on
    as two lines: the trace events in it still reach their call, and nothing is printed."""
    from jupyter_actors._backend.ray.host import EVENTS_MARK
    from jupyter_actors._backend.ray.output import TAG
    ray.init(address=ray_head.address)
    router = session.backend().logs
    c = Counter.remote()
    ref = c.incr.remote()
    ray.get(ref, timeout=GUARD)
    record = ref._owner
    deadline = time.monotonic() + GUARD
    while record.pid is None:   # the worker's own report first: this one comes after it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    origin = int(time.time() * 1e6) - 1000
    line = f'{EVENTS_MARK}[4242,{origin},[[{record.key},"sf",10,3,20]]]{TAG}'
    printed = []
    router.ray_printer, ray_printer = printed.append, router.ray_printer
    try:
        for part in (line[:25], line[25:]):
            router.handle({"lines": [part], "pid": 4242, "is_err": False})
    finally:
        router.ray_printer = ray_printer
    assert (record.pid, record.slot) == (4242, 3) and printed == []


@ray.remote(concurrency_groups={"io": 1})
class Grouped:
    @ray.method(concurrency_group="io")
    def f(self):
        return 1


def test_older_calls_on_ray_stay_in_the_trace_in_compact_form(ray_head):
    """Past the newest records the trace keeps calls as compact tuples: a Ray call's record
    has every field that takes, its concurrency group too."""
    ray.init(address=ray_head.address)
    capacity = tracer.capacity
    tracer._set_capacity(400)   # records beyond the newest 100 are compacted
    try:
        g = Grouped.remote()
        assert ray.get([g.f.remote() for _ in range(250)], timeout=GUARD) == [1] * 250
        calls = [c for c in tracer.snapshot() if c.label == "Grouped.f"]
        assert len(calls) == 250 and {c.group for c in calls} == {"io"}
        assert any(type(c).__name__ == "FinishedCall" for c in calls)   # compacted ones
    finally:
        tracer._set_capacity(capacity)


def test_actors_table_reads_ray_state(ray_head):
    """%actors' rows: class, pid and liveness from Ray; a killed actor shows as dead."""
    ray.init(address=ray_head.address)
    c = Counter.options(name="table-counter").remote()
    pid = ray.get(c.pid.remote(), timeout=GUARD)
    (row,) = [r for r in ray._api.session.backend().describe_actors()
              if r["name"] == "table-counter"]
    assert (row["class_name"], row["pid"], row["alive"], row["done"]) == ("Counter", pid, True, 1)
    ray.kill(c)
    deadline = time.monotonic() + GUARD
    while c._describe()["alive"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "killed" in c._describe()["death"]


def test_a_ray_started_here_listens_on_loopback_only():
    """JUPYTER_ACTORS_BACKEND=ray without RAY_ADDRESS starts a local Ray (as init(backend=
    'ray') does) whose node and ports are on 127.0.0.1, not on the machine's network address."""
    pytest.importorskip("ray", reason="Ray is not installed (no wheels for this Python)")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(JUPYTER_ACTORS_BACKEND="ray", RAY_USAGE_STATS_ENABLED="0")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import json, psutil, ray as real, jupyter_actors as ray
        @ray.remote
        def node_ip():
            return real.util.get_node_ip_address()
        print(ray.get(node_ip.remote(), timeout=60))
        print(real.get_runtime_context().gcs_address.rpartition(":")[0])
        ours = {p.pid for p in psutil.Process().children(recursive=True)}
        print(json.dumps(sorted({c.laddr.ip for c in psutil.net_connections("inet")
                                 if c.status == "LISTEN" and c.pid in ours})))
        ray.shutdown()
        """)], capture_output=True, text=True, timeout=4 * GUARD, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    node, gcs, listening = out.stdout.strip().splitlines()
    assert (node, gcs) == ("127.0.0.1", "127.0.0.1")
    assert set(json.loads(listening)) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening


@ray.remote
class Greeter:
    def greet(self, name):
        print(f"hello {name}")
        return f"hello {name}"

    def pid(self):
        return os.getpid()


class _Lines:
    """An output router keeping (context, prefix, text), for a test to wait on."""

    def __init__(self):
        self.lines: list = []
        self.cond = threading.Condition()

    def capture(self):
        return "the calling code"

    def write(self, context, stream, prefix, text):
        with self.cond:
            self.lines.append((context, prefix, text))
            self.cond.notify_all()


def test_a_failed_ray_client_join_leaves_init_usable(ray_head):
    """ray:// given the cluster's own port (no Ray Client there): a ConnectionError naming
    the address; then init() with the right address joins and runs calls."""
    wrong = f"ray://127.0.0.1:{ray_head.port}"
    with pytest.raises(ConnectionError, match=re.escape(wrong)):
        ray.init(address=wrong)
    try:
        ray.init(address=ray_head.address)
        assert ray.get(environment_variable.remote("JA_UNSET"), timeout=GUARD) is None
    finally:
        ray.shutdown()


def join_through_client(address: str, attempts: int = 3) -> None:
    """init() through Ray Client. Its server starts a process per client; on a busy machine,
    just after the head node came up, that start can time out ("Initialization failure
    from server"): a user tries again, and so does this."""
    for attempt in range(attempts):
        try:
            ray.init(address=address)
            return
        except ConnectionError as exc:
            if "Initialization failure" not in str(exc) or attempt == attempts - 1:
                raise


def test_ray_client_runs_actors_and_routes_their_output(ray_head, capsys):
    """init(address="ray://HOST:PORT") joins through Ray Client: actors and tasks run, an
    actor's lines reach the code that made the call, and the call is traced with its pid."""
    if ray_head.client_address is None:
        pytest.skip("Ray Client needs ray[client] (grpcio), which is not installed here")
    lines = _Lines()
    previous = session.output_router()
    session.set_output_router(lines)
    try:
        join_through_client(ray_head.client_address)
        assert ray.backend_name() == "ray"
        greeter = Greeter.remote()
        greeted = greeter.greet.remote("client")
        assert ray.get(greeted, timeout=4 * GUARD) == "hello client"
        assert ray.get(environment_variable.remote("JA_UNSET"), timeout=GUARD) is None
        with lines.cond:
            assert lines.cond.wait_for(lambda: lines.lines, GUARD)
        (context, prefix, text), = lines.lines
        assert (context, text) == ("the calling code", "hello client")
        assert prefix.startswith("(Greeter pid=")
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            records = [r for r in tracer.snapshot() if r.label == "Greeter.greet"]
            if records and records[-1].pid is not None:
                break
            time.sleep(0.01)
        assert records[-1].status == "finished" and records[-1].pid is not None
        # A trace-event line the log monitor read half-written reaches the client as two
        # prefixed lines: joined and routed to the call, not printed.
        _feed_half_written_events_line(greeted._owner, capsys)
    finally:
        session.set_output_router(previous)
        ray.shutdown()


def _feed_half_written_events_line(record, capsys) -> None:
    from ray.util.client.logsclient import LogstreamClient
    from jupyter_actors._backend.ray.host import EVENTS_MARK
    from jupyter_actors._backend.ray.output import TAG
    capsys.readouterr()
    origin = int(time.time() * 1e6) - 1000
    line = f'{EVENTS_MARK}[4243,{origin},[[{record.key},"sf",10,5,20]]]{TAG}'
    for part in (line[:25], line[25:]):
        LogstreamClient.stdstream(None, 0, f"(Greeter pid=4243) {part}\n")
    assert (record.pid, record.slot) == (4243, 5)
    assert capsys.readouterr() == ("", "")



def test_a_direct_calls_line_and_trace_event_find_it_when_they_come_first(ray_head, monkeypatch):
    """A direct call's key is Ray's id of its task, known once Ray has the call: its line
    and trace event can reach the driver before the call's record is registered. Held
    back until they have (the registration made to wait for them), they still go to the
    calling code and to the call's record, not to a call made inside a worker."""
    from jupyter_actors._backend.ray import backend as ray_backend
    from jupyter_actors._backend.ray.records import task_key
    lines = _Lines()
    previous = session.output_router()
    session.set_output_router(lines)
    try:
        ray.init(address=ray_head.address)
        greeter = Greeter.remote()
        pid = ray.get(greeter.pid.remote(), timeout=4 * GUARD)
        logs = session.backend().logs
        arrived = threading.Condition()
        keys: list = []     # the keys of the lines and trace events the driver got, in order

        def events(text, real=logs._events):
            with arrived:
                keys.extend(int(k) for k in re.findall(r"\[(\d+),", text))
                arrived.notify_all()
            real(text)

        def write(stream, name, pid, routed, real=logs._write):
            with arrived:
                keys.extend(route for route, _ in routed)
                arrived.notify_all()
            real(stream, name, pid, routed)

        def registered_late(ray_ref, record=None, real=ray_backend.ref_of):
            key = task_key(int.from_bytes(ray_ref.binary(), "big"))
            with arrived:
                assert arrived.wait_for(lambda: key in keys, GUARD), "nothing came for the call"
            return real(ray_ref, record)

        monkeypatch.setattr(logs, "_events", events)
        monkeypatch.setattr(logs, "_write", write)
        with monkeypatch.context() as late:
            late.setattr(ray_backend, "ref_of", registered_late)
            ref = greeter.greet.remote("early")
        assert ray.get(ref, timeout=GUARD) == "hello early"
        record = ref._owner
        deadline = time.monotonic() + GUARD
        while record.pid is None:
            assert time.monotonic() < deadline, "the call's trace event went elsewhere"
            time.sleep(0.01)
        assert (record.pid, record.slot, record.status) == (pid, 0, "finished")
        assert record.key not in logs.nested.early
        with lines.cond:
            assert lines.cond.wait_for(lambda: lines.lines, GUARD)
        assert [(context, text) for context, _, text in lines.lines] == [
            ("the calling code", "hello early")]
    finally:
        session.set_output_router(previous)
        ray.shutdown()


def test_calls_are_found_by_key_while_the_trace_may_show_them_and_while_under_way():
    """The driver finds a call by its key (its worker's lines and events name it) for the
    newest calls, and for every call still queued or running however old; older ended
    calls are let go of in batches."""
    from jupyter_actors._backend.ray.records import CallKeys, RayCall, TaskOwner
    keys = CallKeys(keep=4)
    calls = [RayCall("task", f"f{i}", TaskOwner(1), None) for i in range(12)]
    for i, call in enumerate(calls):
        if i != 1:
            call.status = "finished"
        keys.add(call)
    assert keys.get(calls[1].key) is calls[1]      # the oldest, still running
    assert all(keys.get(c.key) is c for c in calls[-4:])
    assert keys.get(calls[0].key) is None and len(keys) <= 2 * 4 + 1
