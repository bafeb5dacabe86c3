"""The public API surface: names, decorators, options, and errors raised where the user erred."""
from __future__ import annotations

import threading

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from tests.helpers import GUARD


@ray.remote
class Counter:
    def __init__(self, start: int = 0):
        self.n = start

    def add(self, k: int, *, times: int = 1) -> int:
        self.n += k * times
        return self.n

    def value(self) -> int:
        return self.n

    def unpicklable(self):
        return threading.Lock()

    @ray.method(num_returns=2)
    def pair(self):
        return self.n, -self.n


@ray.remote
def double(x):
    return 2 * x


def test_all_names_exist():
    """Every name in __all__ is importable, and Ray's core names are there."""
    for name in ray.__all__:
        assert hasattr(ray, name), name
    for name in ("remote", "get", "wait", "put", "kill", "cancel", "init", "shutdown",
                 "is_initialized", "method", "exceptions", "ObjectRef", "get_actor"):
        assert name in ray.__all__
    for name in ("RayTaskError", "RayActorError", "ActorDiedError", "GetTimeoutError",
                 "TaskCancelledError", "RayError", "TaskError"):
        assert issubclass(getattr(exceptions, name), Exception)
    assert set(exceptions.__all__) <= set(dir(exceptions))
    assert issubclass(exceptions.GetTimeoutError, TimeoutError)
    assert issubclass(exceptions.ActorDiedError, exceptions.RayActorError)


def test_import_stays_light():
    """Importing the package pulls in neither IPython, ipywidgets nor Ray."""
    import subprocess
    import sys
    code = ("import sys, jupyter_actors; "
            "print(any(m in sys.modules for m in ('IPython', 'ipywidgets', 'tqdm', 'numpy', 'ray')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=GUARD, check=True)
    assert out.stdout.strip() == "False"


def test_init_is_optional_and_explicit_init_twice_is_an_error():
    """The first call starts the runtime; a second init() says what happened."""
    assert not ray.is_initialized()
    assert ray.get(double.remote(4), timeout=GUARD) == 8
    assert ray.is_initialized()
    with pytest.raises(RuntimeError, match="init"):
        ray.init()
    ray.init(ignore_reinit_error=True)
    ray.shutdown()
    assert not ray.is_initialized()
    info = ray.init(num_cpus=1)
    assert info["num_cpus"] == 1
    assert info["backend"] == ray.backend_name() == "local"
    assert "backend='local'" in repr(info)
    assert ray.available_resources() == {"CPU": 1.0}


def test_init_rejects_bad_backend_choices_and_unknown_options(monkeypatch):
    """A wrong backend name, address or environment value is an error at init()."""
    with pytest.raises(ValueError, match="'local' or 'ray'"):
        ray.init(backend="cluster")
    with pytest.raises(ValueError, match="drop one of them"):
        ray.init(address="10.0.0.1:6379", backend="local")
    with pytest.raises(ValueError, match="HOST:PORT"):
        ray.init(address="nowhere")
    monkeypatch.setenv("JUPYTER_ACTORS_BACKEND", "spark")
    with pytest.raises(ValueError, match="JUPYTER_ACTORS_BACKEND"):
        ray.init()
    monkeypatch.delenv("JUPYTER_ACTORS_BACKEND")
    assert not ray.is_initialized()
    with pytest.raises(TypeError, match="bogus"):
        ray.init(bogus=1)
    ray.init(include_dashboard=False, logging_level="info")  # Ray options that mean nothing here


def test_remote_with_and_without_options():
    """@remote and @remote(...) both work on classes and functions; options() merges."""
    @ray.remote(max_concurrency=3)
    class WithOptions:
        def ping(self):
            return "pong"

    @ray.remote(num_returns=2)
    def two():
        return 1, 2

    handle = WithOptions.remote()
    assert ray.get(handle.ping.remote(), timeout=GUARD) == "pong"
    assert handle._describe()["max_concurrency"] == 3
    assert WithOptions.options(max_concurrency=5).remote()._describe()["max_concurrency"] == 5
    a, b = two.remote()
    assert ray.get([a, b], timeout=GUARD) == [1, 2]
    assert ray.get(double.options(num_returns=1).remote(21), timeout=GUARD) == 42


def test_default_max_concurrency_depends_on_the_kind_of_actor():
    @ray.remote
    class Async:
        async def f(self):
            return 1

    assert Async.is_async and not Counter.is_async
    assert Async.remote()._describe()["max_concurrency"] == 1000
    assert Counter.remote()._describe()["max_concurrency"] == 1


@pytest.mark.parametrize("options, error", [
    ({"max_concurrency": 0}, ValueError),
    ({"max_concurrency": "2"}, ValueError),
    ({"max_restarts": -2}, ValueError),
    ({"lifetime": "detached"}, ValueError),
    ({"no_such_option": 1}, TypeError),
])
def test_bad_actor_options_fail_at_options(options, error):
    with pytest.raises(error):
        Counter.options(**options)


def test_calling_remote_things_directly_says_how_to_call_them():
    with pytest.raises(TypeError, match=r"Counter.remote\(\)"):
        Counter()
    with pytest.raises(TypeError, match=r"double.remote\(\)"):
        double(1)
    handle = Counter.remote()
    with pytest.raises(TypeError, match=r"add.remote\(\)"):
        handle.add(1)


def test_async_def_remote_function_is_refused_with_the_wrapper_pattern():
    """The seed's "AsyncIO for Remote Tasks": a ValueError at decoration that shows the fix."""
    with pytest.raises(ValueError) as info:
        @ray.remote
        async def f():
            pass
    message = str(info.value)
    assert "async def" in message and "asyncio.run(" in message and "f()" in message


def test_unknown_method_is_an_attribute_error_at_the_handle():
    handle = Counter.remote(1)
    with pytest.raises(AttributeError, match="no method 'ad'.*did you mean 'add'"):
        handle.ad
    assert ray.get(handle.add.remote(1), timeout=GUARD) == 2  # still usable


def test_wrong_arguments_are_a_type_error_at_remote():
    handle = Counter.remote()
    with pytest.raises(TypeError, match=r"Counter.add\(\)"):
        handle.add.remote()
    with pytest.raises(TypeError, match=r"Counter.add\(\)"):
        handle.add.remote(1, 2)
    with pytest.raises(TypeError, match="unexpected keyword"):
        handle.add.remote(1, time=2)
    with pytest.raises(TypeError, match=r"Counter.__init__\(\)"):
        Counter.remote(1, 2)
    with pytest.raises(TypeError, match=r"double\(\)"):
        double.remote()
    assert ray.get(handle.add.remote(2, times=3), timeout=GUARD) == 6


def test_unpicklable_argument_names_the_argument_and_the_cause():
    handle = Counter.remote()
    with pytest.raises(TypeError) as info:
        handle.add.remote(threading.Lock())
    assert "'k'" in str(info.value) and "Counter.add" in str(info.value)
    assert "lock" in str(info.value)
    with pytest.raises(TypeError, match="'x'"):
        double.remote(threading.Lock())
    assert ray.get(handle.add.remote(5), timeout=GUARD) == 5


def test_unpicklable_return_value_fails_at_get_naming_the_method():
    handle = Counter.remote()
    with pytest.raises(exceptions.TaskError, match="return value of Counter.unpicklable"):
        ray.get(handle.unpicklable.remote(), timeout=GUARD)
    assert ray.get(handle.add.remote(1), timeout=GUARD) == 1


def test_method_decorator_sets_num_returns():
    handle = Counter.remote(3)
    first, second = handle.pair.remote()
    assert ray.get([first, second], timeout=GUARD) == [3, -3]


def test_put_and_get():
    ref = ray.put({"a": [1, 2, 3]})
    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref) == {"a": [1, 2, 3]}
    assert ray.get(double.remote(ray.put(21)), timeout=GUARD) == 42
    with pytest.raises(TypeError, match="ObjectRef"):
        ray.put(ref)
    with pytest.raises(TypeError):
        ray.put(threading.Lock())


def test_get_and_wait_validate_their_arguments():
    with pytest.raises(TypeError):
        ray.get(1)
    with pytest.raises(TypeError):
        ray.get([ray.put(1), 2])
    ref = ray.put(1)
    with pytest.raises(TypeError):
        ray.wait(ref)
    with pytest.raises(ValueError, match="unique"):
        ray.wait([ref, ref])
    with pytest.raises(ValueError, match="num_returns"):
        ray.wait([ref], num_returns=2)


def test_wait_returns_ready_and_not_ready_in_input_order(events):
    """wait() gives the first num_returns ready refs, both lists in the order given."""
    @ray.remote
    def blocked(path):
        from tests.helpers import FileEvent
        return FileEvent(path).wait()

    gate = events("gate")
    slow = blocked.remote(gate.path)
    fast = [double.remote(i) for i in range(3)]
    refs = [slow] + fast
    ready, not_ready = ray.wait(refs, num_returns=3, timeout=GUARD)
    assert ready == fast and not_ready == [slow]
    ready, not_ready = ray.wait(refs, num_returns=4, timeout=0.05)
    assert ready == fast and not_ready == [slow]
    gate.set()
    ready, not_ready = ray.wait(refs, num_returns=4, timeout=GUARD)
    assert ready == refs and not_ready == []


def test_named_actors():
    a = Counter.options(name="counter").remote(10)
    b = ray.get_actor("counter")
    assert ray.get(b.add.remote(1), timeout=GUARD) == 11
    with pytest.raises(ValueError, match="already taken"):
        Counter.options(name="counter").remote()
    c = Counter.options(name="counter", get_if_exists=True).remote()
    assert ray.get(c.value.remote(), timeout=GUARD) == 11
    with pytest.raises(ValueError, match="no live actor"):
        ray.get_actor("missing")
    ray.kill(a)
    with pytest.raises(ValueError):
        ray.get_actor("counter")


def test_remote_functions_run_in_a_pool():
    refs = [double.remote(i) for i in range(50)]
    assert ray.get(refs, timeout=GUARD) == [2 * i for i in range(50)]


def test_refs_are_hashable_and_have_ray_methods():
    ref = double.remote(1)
    assert len(ref.hex()) == 32 and isinstance(ref.binary(), bytes)
    assert {ref: 1}[ref] == 1
    assert ray.get(ref, timeout=GUARD) == 2
