"""The cluster going away mid-session: pending calls fail clearly, and init() joins again.

A head node of its own (this module stops it), then a second one to rejoin.
"""
from __future__ import annotations

import time

import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from tests.helpers import GUARD, FileEvent

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]


@ray.remote
class Holder:
    def hold(self, path):
        FileEvent(path).wait(GUARD * 10)
        return "held"

    def ping(self):
        return "pong"


def test_a_stopped_head_node_fails_pending_calls_and_init_joins_again(tmp_path):
    """Head node stopped: the pending call fails with an error naming the cluster, new calls
    fail the same way, and init() joins a new cluster in the same process."""
    pytest.importorskip("ray", reason="Ray is not installed (no wheels for this Python)")
    from tests.ray_cluster import HeadNode
    first = HeadNode()
    try:
        ray.init(address=first.address)
        holder = Holder.remote()
        assert ray.get(holder.ping.remote(), timeout=GUARD) == "pong"
        pending = holder.hold.remote(str(tmp_path / "never"))
    finally:
        first.stop()
    start = time.monotonic()
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(pending, timeout=GUARD)
    assert time.monotonic() - start < GUARD
    # The session notices within seconds; from then on calls say what happened at once.
    deadline = time.monotonic() + GUARD
    while True:
        try:
            ray.get(holder.ping.remote(), timeout=GUARD)
        except exceptions.ActorDiedError as exc:
            if "went away" in str(exc):
                assert "init()" in str(exc)
                break
        assert time.monotonic() < deadline, "the session never noticed the cluster had gone"
        time.sleep(0.2)
    second = HeadNode()
    try:
        info = ray.init(address=second.address)
        assert info["backend"] == "ray"
        again = Holder.remote()
        assert ray.get(again.ping.remote(), timeout=GUARD) == "pong"
        ray.shutdown()
    finally:
        second.stop()
