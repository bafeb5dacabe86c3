"""Shared fixtures: every test ends with the runtime shut down and no worker left behind."""
from __future__ import annotations

import time

import psutil
import pytest

import jupyter_actors as ray
from tests.helpers import FileEvent


def _our_workers() -> list:
    """Our worker processes: children of this process, and of its zygote (which forks them)."""
    found = []
    for child in _worker_children(psutil.Process()):
        found.append(child)
        try:
            forks = "zygote" in child.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            forks = False
        if forks:
            found.extend(_worker_children(child))
    return found


def _worker_children(parent) -> list:
    found = []
    try:
        children = parent.children(recursive=False)
    except psutil.NoSuchProcess:
        return found
    for child in children:
        try:
            if "jupyter_actors._worker" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture(autouse=True)
def no_orphan_workers(request):
    """Fail a test that leaves worker processes behind after shutdown()."""
    yield
    if "on_backend" in request.fixturenames and ray.backend_name() == "ray":
        return   # a Ray session shared by the module's tests (see on_backend)
    before = _our_workers()  # forked workers are not our children once their zygote ended
    ray.shutdown()
    deadline = time.monotonic() + 10
    left = _still_running(before) + _our_workers()
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = _still_running(before) + _our_workers()
    assert not left, f"worker processes left behind: {[p.pid for p in left]}"


def _still_running(processes: list) -> list:
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.fixture
def events(tmp_path):
    """Factory of FileEvents in this test's temporary folder."""
    return lambda name: FileEvent(tmp_path / name)


@pytest.fixture(scope="module")
def ray_head(request):
    """One Ray head node per test module (Ray starts slowly), joined with init(address=...);
    with Ray Client's server too where the module says ``RAY_CLIENT_SERVER = True`` and
    ``ray[client]`` is installed."""
    pytest.importorskip("ray", reason="Ray is not installed (no wheels for this Python)")
    from tests.ray_cluster import HeadNode
    client = getattr(request.module, "RAY_CLIENT_SERVER", False) and _installed("grpc")
    node = HeadNode(client_server=client)
    yield node
    ray.shutdown()
    node.stop()


def _installed(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module", params=["local", "ray"])
def on_backend(request):
    """Runs the module's tests on the embedded runtime, then on Ray (one session for all)."""
    if request.param == "local":
        yield "local"
        return
    node = request.getfixturevalue("ray_head")
    ray.shutdown()
    ray.init(address=node.address)
    yield "ray"
    ray.shutdown()
