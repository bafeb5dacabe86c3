"""The widgets in a real kernel run by nbclient: stored widget state and the saved snapshot.

This is what nbconvert --execute and nbval see: the widget state nbclient
stores in the notebook's metadata, and outputs that must make sense without
a live frontend (the snapshot of a Timeline displayed before its calls ran is
brought up to date after the cell that ran them).
"""
from __future__ import annotations

import re

import pytest

from tests.helpers import GUARD

pytestmark = pytest.mark.kernel
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("anywidget", reason="the widgets need anywidget")

CELLS = [
    # 0: an actor whose calls meet in pairs, and a live timeline shown before any call.
    """\
import asyncio
import jupyter_actors as ray
from jupyter_actors.widgets import ConcurrencyPlayground, Timeline

@ray.remote
class Pairs:
    def __init__(self):
        self.arrived, self.events = 0, {}
    async def run_task(self):
        index, self.arrived = self.arrived // 2, self.arrived + 1
        event = self.events.setdefault(index, asyncio.Event())
        if self.arrived % 2 == 0:
            event.set()
        await asyncio.wait_for(event.wait(), 30)

actor = Pairs.options(max_concurrency=2).remote()
tl = Timeline(actor)
tl""",
    # 1: the calls, while the timeline is displayed above.
    "ray.get([actor.run_task.remote() for _ in range(8)]);",
    # 2: the playground, run from code, then shown.
    """\
pg = ConcurrencyPlayground(kind="threaded", max_concurrency=2, n_tasks=4, duration=0.02)
results = pg.run()
pg""",
]


def _widget_states(nb) -> dict:
    return nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]


def test_nbclient_stores_the_timeline_state_and_an_up_to_date_snapshot():
    """Stored state holds every bar; outputs hold stable text and an up-to-date SVG."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=int(GUARD * 2),
                                     store_widget_state=True, allow_errors=False)
    client.execute()

    timelines = [m["state"] for m in _widget_states(nb).values()
                 if m["state"].get("_anywidget_id", "").endswith("Timeline")]
    assert len(timelines) == 2  # the Timeline, and the one inside the playground
    by_bars = sorted(timelines, key=lambda s: len(s["_state"]["bars"]))
    played, watched = by_bars[0]["_state"], by_bars[1]["_state"]
    assert len(watched["bars"]) == 8 and watched["methods"] == ["Pairs.run_task"]
    assert {lane[1] for lane in watched["lanes"]} == {"slot 0", "slot 1"}
    assert all(row[7] == 2 for row in watched["bars"])  # finished
    assert len(played["bars"]) == 4
    assert [s["title"] for s in played["sections"]] == ["max_concurrency=2"]

    (shown,) = [o for o in nb.cells[0].outputs if "data" in o]
    assert shown["data"]["text/plain"] == "Timeline(Pairs)"
    html = shown["data"]["text/html"]
    # Displayed before any call; updated after cell 1 ran them.
    assert re.search(r"8 calls, wall time", html) and "max overlap 2" in html
    assert len(re.findall(r'<rect class="ja-bar', html)) == 8

    (pg_out,) = [o for o in nb.cells[2].outputs if "data" in o]
    assert pg_out["data"]["text/plain"].startswith("ConcurrencyPlayground(kind='threaded'")
    assert "4 calls, wall time" in pg_out["data"]["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in pg_out["data"]
