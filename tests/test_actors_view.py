"""ActorsView: its rows follow the actors while calls run; cancel and kill from the view.

Real actors in real worker processes; the widget is the real one (outside a
kernel its comm messages go nowhere, its state is all there). The buttons
themselves are clicked in tests/test_browser_actors_view.py.
"""
from __future__ import annotations

import os

import pytest

import jupyter_actors as ray
from tests.helpers import GUARD, FileEvent, wait_until_started

pytest.importorskip("anywidget", reason="the widgets need anywidget")

from jupyter_actors.widgets import ActorsView  # noqa: E402

# Row fields (see _actors_view._row).
(ID, CLASS, NAME, PID, KIND, CONCURRENCY, RUNNING, QUEUED, DONE, FAILED, RESTARTS, ALIVE, DEATH,
 RESTARTING) = range(14)


@ray.remote
class Gated:
    def wait_for(self, path):
        return FileEvent(path).wait(GUARD)

    def fail(self):
        raise ValueError("no")

    def ping(self):
        return "pong"

    def crash(self):
        os._exit(1)


def row_of(view, handle) -> list:
    view._flush()
    return next(r for r in view._rows if r[ID] == handle._actor_id)


def test_rows_follow_calls_while_they_run(tmp_path):
    """running / queued / done / failed change as the calls do; restarts default to 0."""
    gate = FileEvent(tmp_path / "gate")
    a = Gated.options(name="gated").remote()
    view = ActorsView()
    try:
        first = a.wait_for.remote(gate.path)
        queued = [a.ping.remote() for _ in range(3)]
        wait_until_started(first)
        row = row_of(view, a)
        assert row[CLASS:KIND + 1] == ["Gated", "gated", row[PID], "threaded"]
        assert row[PID] > 0 and row[CONCURRENCY] == "1" and row[RESTARTS] == 0
        assert (row[RUNNING], row[QUEUED], row[DONE]) == (1, 3, 0)
        gate.set()
        ray.get(queued, timeout=GUARD)
        with pytest.raises(ValueError):
            ray.get(a.fail.remote(), timeout=GUARD)
        row = row_of(view, a)
        assert (row[RUNNING], row[QUEUED], row[DONE], row[FAILED]) == (0, 0, 4, 1)
        assert row[ALIVE] is True and row[DEATH] == ""
    finally:
        view.close()


def test_cancel_and_kill_from_the_view(tmp_path):
    """The view's cancel cancels only queued calls; kill ends the actor, shown dead with why."""
    gate = FileEvent(tmp_path / "gate")
    a, b = Gated.remote(), Gated.remote()
    ray.get([a.ping.remote(), b.ping.remote()], timeout=GUARD)
    view = ActorsView()
    try:
        running = a.wait_for.remote(gate.path)
        queued = [a.ping.remote() for _ in range(3)]
        wait_until_started(running)
        view._on_frontend_message(view, {"kind": "cancel", "actor_id": a._actor_id}, [])
        for ref in queued:
            with pytest.raises(ray.exceptions.TaskCancelledError):
                ray.get(ref, timeout=GUARD)
        gate.set()
        assert ray.get(running, timeout=GUARD) is True
        held = b.wait_for.remote(str(tmp_path / "never"))
        wait_until_started(held)
        view._on_frontend_message(view, {"kind": "kill", "actor_id": b._actor_id}, [])
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(b.ping.remote(), timeout=GUARD)
        # A call that was running fails once the worker's exit is handled, which is when
        # the actor's final cause of death is known: the view is read after that.
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(held, timeout=GUARD)
        row = row_of(view, b)
        assert row[ALIVE] is False and "kill" in row[DEATH]
        view.kill(b)  # killing a dead actor again changes nothing
        assert row_of(view, a)[ALIVE] is True
        text = repr(view.table())
        assert text.splitlines()[0].split() == [
            "class", "name", "pid", "kind", "max_concurrency", "running", "queued", "done",
            "failed", "restarts", "status"]
        assert "was killed by jupyter_actors.kill()" in text  # the final cause
        # A message about an actor that is gone breaks nothing.
        view._on_frontend_message(view, {"kind": "kill", "actor_id": "0" * 16}, [])
    finally:
        view.close()


def test_a_restarted_actor_shows_its_restarts():
    """An actor with max_restarts whose process dies is shown alive again, restarted once."""
    a = Gated.options(max_restarts=1).remote()
    old_pid = ray.get(a.ping.remote(), timeout=GUARD) and row_of(ActorsView(live=False), a)[PID]
    view = ActorsView()
    try:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(a.crash.remote(), timeout=GUARD)
        assert ray.get(a.ping.remote(), timeout=GUARD) == "pong"  # the restarted process
        row = row_of(view, a)
        assert row[RESTARTS] == 1 and row[ALIVE] is True and row[RESTARTING] is False
        assert row[PID] != old_pid
        assert "alive, restarted 1 of 1" in repr(view.table()).splitlines()[1]
    finally:
        view.close()


def test_static_view_is_the_table_and_does_not_follow():
    """live=False: a snapshot; the mime bundle holds the same table as text and HTML."""
    a = Gated.remote()
    ray.get(a.ping.remote(), timeout=GUARD)
    view = ActorsView(live=False)
    data, _ = view._repr_mimebundle_()
    assert data["text/plain"] == repr(view) == "ActorsView(all actors)"
    assert "<th>restarts</th>" in data["text/html"] and "<td>threaded</td>" in data["text/html"]
    assert "Gated" in repr(view.table()) and "restarts" in repr(view.table())
    before = view._rows
    ray.get(a.ping.remote(), timeout=GUARD)
    view._flush()
    assert view._rows == before


@pytest.mark.kernel
def test_actors_live_magic_shows_the_view_and_its_table():
    """%actors --live displays an ActorsView whose snapshot is the table with restarts."""
    from tests.kernel_utils import kernel_with_extension
    kernel = kernel_with_extension(
        "@ray.remote\nclass Box:\n    def ping(self):\n        return 1\n"
        "box = Box.options(name='box').remote()\nray.get(box.ping.remote())")
    try:
        cell = kernel.run("%actors --live")
        data = cell.displays()[0]
        assert "application/vnd.jupyter.widget-view+json" in data
        assert "<th>restarts</th>" in data["text/html"] and "<td>box</td>" in data["text/html"]
        assert data["text/plain"] == "ActorsView(all actors)"
        bad = kernel.run("%actors --bogus", ok=False)
        assert "takes no arguments but --live" in bad.stderr
    finally:
        kernel.shutdown()
