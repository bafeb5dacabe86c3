"""Timeline and ConcurrencyPlayground widgets: model state after runs, deltas, static fallback.

Real actors in real worker processes; the widget objects are the real ones
(outside a kernel their comm messages go nowhere, their state is all there).
"""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

import jupyter_actors as ray
from jupyter_actors._trace import tracer
from tests.helpers import GUARD

pytest.importorskip("anywidget", reason="the widgets need anywidget")
pytest.importorskip("ipywidgets", reason="the widgets need ipywidgets")

from jupyter_actors.widgets import ConcurrencyPlayground, Timeline  # noqa: E402
from jupyter_actors.widgets._model import STATUS, TimelineModel  # noqa: E402
from jupyter_actors.widgets._pump import pump  # noqa: E402
from jupyter_actors.widgets._static import MARK_CLOSE, MARK_OPEN  # noqa: E402

# Bar row columns (see _model.py).
ID, GROUP, LANE, METHOD, QUEUED, STARTED, ENDED, STATE = range(8)


@ray.remote
class Pairs:
    """Async actor whose calls meet in pairs (two calls must run at once to finish)."""

    def __init__(self):
        self.arrived = 0
        self.events: dict = {}

    async def run_task(self) -> None:
        index = self.arrived // 2
        self.arrived += 1
        event = self.events.setdefault(index, asyncio.Event())
        if self.arrived % 2 == 0:
            event.set()
        await asyncio.wait_for(event.wait(), GUARD)

    async def fail(self):
        raise RuntimeError("no")


def lanes_never_overlap(state: dict) -> bool:
    by_lane: dict = {}
    for row in state["bars"]:
        if row[LANE] >= 0:
            by_lane.setdefault(row[LANE], []).append((row[STARTED], row[ENDED]))
    return all(b[0] >= a[1] for spans in by_lane.values()
               for a, b in zip(sorted(spans), sorted(spans)[1:]))


def test_importing_the_package_and_the_widgets_package_stays_light():
    """`import jupyter_actors` (and `.widgets`, which workers import) loads no widget library."""
    code = ("import sys, jupyter_actors, jupyter_actors.widgets, "
            "jupyter_actors.widgets._experiments;"
            "print(sorted(m for m in ('ipywidgets', 'anywidget', 'traitlets', 'IPython')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=GUARD, check=True).stdout.strip()
    assert out == "[]"


def test_live_timeline_state_after_a_run_shows_two_lanes_and_every_call():
    """A live Timeline(actor): 8 bars on 2 lanes, all finished, one method, overlap 2."""
    actor = Pairs.options(max_concurrency=2).remote()
    tl = Timeline(actor)
    try:
        ray.get([actor.run_task.remote() for _ in range(8)], timeout=GUARD)
        tl._flush()
        state = tl._state
        assert state["kind"] == "full"
        assert len(state["bars"]) == 8
        assert {row[STATE] for row in state["bars"]} == {STATUS["finished"]}
        assert state["methods"] == ["Pairs.run_task"]
        assert [lane[1] for lane in state["lanes"]] in (["slot 0", "slot 1"], ["slot 1", "slot 0"])
        assert state["groups"][0]["detail"] == "async · max_concurrency=2"
        assert f"pid {actor._describe()['pid']}" in state["groups"][0]["label"]
        assert lanes_never_overlap(state)
        for row in state["bars"]:
            assert row[QUEUED] <= row[STARTED] <= row[ENDED]
        (section,) = tl.stats()
        assert section["calls"] == 8 and section["groups"][0]["max_overlap"] == 2
        assert "max overlap 2" in tl.summary()
    finally:
        tl.close()
    assert tl._live is False and tl not in pump._clients
    # The tracer calls the widget thread's listener only while some widget is live.
    assert (pump._listener in tracer.listeners) == bool(pump._clients)


def test_timeline_marks_failed_calls_and_shows_history():
    """A Timeline made after the calls shows them (history), failed ones with status failed."""
    actor = Pairs.remote()
    with pytest.raises(RuntimeError):
        ray.get(actor.fail.remote(), timeout=GUARD)
    tl = Timeline(actor, live=False)
    (row,) = tl._state["bars"]
    assert row[STATE] == STATUS["failed"]
    svg = tl.to_svg()
    assert 'stroke="#b00020"' in svg and "Pairs.fail" in svg
    assert "1 failed" in tl.summary()


def test_model_sends_only_what_changed_and_everything_after_eviction():
    """Deltas carry changed bars only (layout when it changes); eviction forces a full state."""
    actor = Pairs.options(max_concurrency=2).remote()
    ray.get([actor.run_task.remote() for _ in range(6)], timeout=GUARD)
    records = [r for r in tracer.snapshot() if r.actor_id == actor._actor_id and r.kind == "call"]
    model = TimelineModel(max_bars=10)
    model.add_section("", {actor._actor_id}, None, None)
    model.ingest(records[:4])
    first = model.delta()
    assert first["kind"] == "full" and len(first["bars"]) == 4
    assert model.delta()["bars"] == [] and "lanes" not in model.delta()
    model.ingest(records[:4])  # nothing new
    assert model.delta()["bars"] == []
    model.ingest(records[4:])
    delta = model.delta()
    assert delta["kind"] == "delta"
    assert sorted(row[ID] for row in delta["bars"]) == sorted(r.call_id for r in records[4:])
    # 6 + 6 more than max_bars=10: the oldest finished go, and the browser gets everything.
    more = ray.get([actor.run_task.remote() for _ in range(6)], timeout=GUARD)
    assert more == [None] * 6
    model.ingest([r for r in tracer.snapshot() if r.actor_id == actor._actor_id and r.kind == "call"])
    after = model.delta()
    assert after["kind"] == "full" and len(after["bars"]) <= 10 and after["evicted"] >= 2


def test_playground_run_draws_a_section_per_run():
    """run(): a fresh actor, n bars in one section, overlap bounded by max_concurrency."""
    pg = ConcurrencyPlayground(kind="async", max_concurrency=1, n_tasks=5, duration=0.02)
    try:
        (result,) = pg.run()
        assert result["calls"] == 5 and result["max_concurrency"] == 1
        assert result["max_overlap"] == 1 and result["wall"] >= 5 * 0.02
        state = pg.timeline._state
        assert [s["title"] for s in state["sections"]] == ["max_concurrency=1"]
        assert len(state["bars"]) == 5
        assert {row[STATE] for row in state["bars"]} == {STATUS["finished"]}
        assert pg.run_button.disabled is False and "done" in pg.status.value
    finally:
        pg.close()


def test_playground_compare_mode_stacks_one_section_per_max_concurrency():
    """compare: max_concurrency 1, 2, 4 and default, each on its own actor, with wall times."""
    pg = ConcurrencyPlayground(kind="threaded", n_tasks=4, duration=0.01, compare=True)
    try:
        results = pg.run()
        assert [r["max_concurrency"] for r in results] == [1, 2, 4]
        for r in results:
            assert r["calls"] == 4 and 1 <= r["max_overlap"] <= r["max_concurrency"]
        assert results[0]["max_overlap"] == 1
        state = pg.timeline._state
        assert [s["title"] for s in state["sections"]] == \
            ["max_concurrency=1", "max_concurrency=2", "max_concurrency=4"]
        assert len({g["label"] for g in state["groups"]}) == 3  # three fresh actors
        assert len(state["bars"]) == 12
        stats = pg.timeline.stats()
        assert [s["calls"] for s in stats] == [4, 4, 4] and all(s["wall"] > 0 for s in stats)

        results = pg.run(kind="blocking", compare=True, n_tasks=4, duration=0.01)
        assert [(r["max_concurrency"], r["default"]) for r in results][-1] == (1000, True)
        assert set(pg.timeline._state["methods"]) == \
            {"BlockingActor.run_task", "BlockingActor.blocking_task"}
    finally:
        pg.close()


def test_playground_button_runs_in_the_background():
    """Clicking Run returns at once; the run ends on its own thread, then the button is back."""
    pg = ConcurrencyPlayground(kind="async", max_concurrency=None, n_tasks=3, duration=0.01)
    try:
        pg.run_button.click()
        results = pg.join(GUARD)
        assert not pg.running
        assert results[0]["default"] and results[0]["max_concurrency"] == 1000
        pg.timeline._flush()
        assert len(pg.timeline._state["bars"]) == 3
        with pytest.raises(ValueError):
            ConcurrencyPlayground(kind="nope")
    finally:
        pg.close()


def test_static_fallback_has_stable_text_and_a_snapshot():
    """text/plain names only the configuration; text/html has the summary and an SVG of the bars."""
    pg = ConcurrencyPlayground(kind="async", max_concurrency=2, n_tasks=4, duration=0.01)
    try:
        before, _ = pg._repr_mimebundle_()
        pg.run()
        data, _ = pg._repr_mimebundle_()
        assert data["text/plain"] == before["text/plain"] == (
            "ConcurrencyPlayground(kind='async', max_concurrency=2, n_tasks=4, "
            "duration=0.01, compare=False)")
        assert "application/vnd.jupyter.widget-view+json" in data
        html = data["text/html"]
        assert html.startswith(MARK_OPEN) and html.endswith(MARK_CLOSE)
        assert "max_concurrency=2: 4 calls, wall time" in html
        assert "max overlap 2" in html or "max overlap 1" in html
        assert len(re.findall(r"<rect class=\"ja-bar", html)) == 4
        assert "<style" not in html  # sanitizers drop it; attributes survive
        # nbval: one pattern removes every changing part of the snapshot.
        pattern = r"(?s)<!-- jupyter_actors:snapshot -->.*?<!-- /jupyter_actors:snapshot -->"
        assert re.sub(pattern, "", html) == ""
    finally:
        pg.close()
    tl = Timeline(live=False, history=False)
    assert repr(tl) == "Timeline(all calls)"
    assert "no calls yet" in tl.summary() or "0 calls" in tl.summary()
