"""Small things Ray code relies on: wait([]), TaskError.cause, Ray's method options, get_if_exists."""
from __future__ import annotations

import threading

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from tests.helpers import GUARD


class Unpicklable(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


@ray.remote
class Box:
    def __init__(self, value=0, fail_with=None):
        if fail_with is not None:
            raise fail_with
        self.value = value

    def get(self):
        return self.value

    def fail(self, exc):
        raise exc

    def fail_unpicklable(self):
        raise Unpicklable("cannot travel")

    @ray.method(enable_task_events=False, tensor_transport="nccl")
    def tagged(self):
        return "tagged"


def test_wait_on_an_empty_list_returns_two_empty_lists():
    """ray.wait([]) is ([], []) whatever num_returns and timeout say, as in Ray."""
    assert ray.wait([]) == ([], [])
    assert ray.wait([], num_returns=1, timeout=0) == ([], [])


def test_task_error_cause_is_the_plain_remote_exception():
    """`.cause` is an instance of the remote exception's own class (not a TaskError);
    `as_instanceof_cause()` is an instance of both."""
    box = Box.remote()
    with pytest.raises(exceptions.RayTaskError) as info:
        ray.get(box.fail.remote(KeyError("missing")), timeout=GUARD)
    error = info.value
    assert type(error.cause) is KeyError and error.cause.args == ("missing",)
    assert not isinstance(error.cause, exceptions.TaskError)
    dual = error.as_instanceof_cause()
    assert isinstance(dual, KeyError) and isinstance(dual, exceptions.RayTaskError)


def test_task_error_cause_of_an_exception_that_cannot_travel_is_the_error_itself():
    """An exception that cannot be pickled arrives as text; its cause is that error."""
    box = Box.remote()
    with pytest.raises(exceptions.TaskError) as info:
        ray.get(box.fail_unpicklable.remote(), timeout=GUARD)
    assert info.value.cause is info.value
    assert info.value.as_instanceof_cause() is info.value
    assert "Unpicklable: cannot travel" in str(info.value.cause)


def test_task_error_cause_in_a_remote_function():
    @ray.remote
    def divide(a, b):
        return a / b
    with pytest.raises(ZeroDivisionError) as info:
        ray.get(divide.remote(1, 0), timeout=GUARD)
    assert type(info.value.cause) is ZeroDivisionError


def test_ray_method_options_that_change_nothing_here_are_accepted():
    """enable_task_events and tensor_transport, in @method and per call, run the call as usual."""
    box = Box.options(enable_task_events=False, allow_out_of_order_execution=False,
                      enable_tensor_transport=False).remote(5)
    assert ray.get(box.tagged.remote(), timeout=GUARD) == "tagged"
    ref = box.get.options(enable_task_events=False, tensor_transport="gloo").remote()
    assert ray.get(ref, timeout=GUARD) == 5

    @ray.remote(enable_task_events=False, _labels={"team": "a"})
    def f():
        return 1
    assert ray.get(f.remote(), timeout=GUARD) == 1


def test_a_failed_constructor_names_its_exception_type_and_text():
    """The ActorDiedError of a failed __init__ says what __init__ raised, type and text."""
    box = Box.remote(fail_with=KeyError("no config"))
    with pytest.raises(exceptions.ActorDiedError) as info:
        ray.get(box.get.remote(), timeout=GUARD)
    assert "Box.__init__ raised KeyError: 'no config'" in str(info.value)


def test_get_if_exists_needs_a_name():
    """get_if_exists without a name is an error where it is given, as in Ray."""
    with pytest.raises(ValueError, match="get_if_exists=True needs a name"):
        Box.options(get_if_exists=True)
    with pytest.raises(ValueError, match="get_if_exists=True needs a name"):
        ray.remote(get_if_exists=True)(type("Lonely", (), {}))
    with pytest.raises(ValueError, match="empty string"):
        Box.options(name="")


def test_get_if_exists_returns_the_live_actor_and_ignores_the_new_arguments():
    first = Box.options(name="box", get_if_exists=True).remote(1)
    again = Box.options(name="box", get_if_exists=True).remote(2)
    assert again == first
    assert ray.get(again.get.remote(), timeout=GUARD) == 1
    with pytest.raises(ValueError, match="already taken"):
        Box.options(name="box").remote(3)
    # Another namespace is another name.
    other = Box.options(name="box", namespace="elsewhere", get_if_exists=True).remote(4)
    assert ray.get(other.get.remote(), timeout=GUARD) == 4


def test_get_if_exists_from_many_threads_at_once_makes_one_actor():
    """Threads racing to get-or-create the same name all end with the same actor."""
    barrier = threading.Barrier(6, timeout=GUARD)
    handles = []

    def get_or_create(i):
        barrier.wait()
        handles.append(Box.options(name="shared", get_if_exists=True).remote(i))
    threads = [threading.Thread(target=get_or_create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GUARD)
    assert len(handles) == 6 and len(set(handles)) == 1
    assert len({ray.get(h.get.remote(), timeout=GUARD) for h in handles}) == 1


def test_get_if_exists_inside_a_worker_finds_the_drivers_actor():
    created = Box.options(name="from-driver").remote(7)

    @ray.remote
    def look():
        handle = Box.options(name="from-driver", get_if_exists=True).remote(8)
        return ray.get(handle.get.remote())
    assert ray.get(look.remote(), timeout=GUARD) == 7
    assert ray.get(created.get.remote(), timeout=GUARD) == 7
