"""The playground in a real JupyterLab, rendered by headless Chromium (Debian's, via Playwright).

The test starts JupyterLab on 127.0.0.1 (free port, random token, no browser),
opens a notebook that shows a ConcurrencyPlayground, clicks Run and watches
bars appear while the run goes on, then runs compare mode and saves the
screenshot the README shows (docs/images/playground.png).
"""
from __future__ import annotations

import pathlib
import time

import pytest

from tests.browser_utils import (GUARD_MS, LONG_TASKS, launch_chromium, missing, open_notebook,
                                 serve_lab)

pytestmark = pytest.mark.browser

REPO = pathlib.Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "images" / "playground.png"
BARS = ".jupyter-actors-timeline-view rect.ja-bar"

if missing():
    pytest.skip(missing(), allow_module_level=True)


# A threaded actor with four threads: thousands of calls, one failing, four that
# meet at a barrier (so four run at once), and an async actor with a running call
# that gets cancelled (waited for, not slept on).
TIMELINE_SETUP = """\
import asyncio, threading, time
import jupyter_actors as ray
from jupyter_actors.widgets import Timeline

@ray.remote
class Worker:
    def __init__(self):
        self.all_four = threading.Barrier(4)
    def f(self, x):
        return x
    def fail(self):
        raise ValueError("deliberate")
    def meet(self):
        self.all_four.wait(60)

@ray.remote(concurrency_groups={"waits": 1})
class Waiter:
    @ray.method(concurrency_group="waits")
    async def wait_forever(self):
        await asyncio.sleep(600)

worker = Worker.options(max_concurrency=4).remote()
waiter = Waiter.remote()
tl = Timeline(worker, waiter)
tl"""

TIMELINE_RUN = """\
N = 3000
refs = [worker.f.remote(i) for i in range(N)] + [worker.fail.remote()]
refs += [worker.meet.remote() for _ in range(4)]
ready, _ = ray.wait(refs, num_returns=len(refs), timeout=120)
assert len(ready) == len(refs)
stuck = waiter.wait_forever.remote()
deadline = time.monotonic() + 60
while stuck._owner.started is None and time.monotonic() < deadline:
    time.sleep(0.01)
ray.cancel(stuck)
ray.wait([stuck], timeout=60)
print("ran", N)"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with its own settings, serving a temporary folder."""
    yield from serve_lab(tmp_path_factory.mktemp("lab"), {
        "playground.ipynb": [
            "from jupyter_actors.widgets import ConcurrencyPlayground\n"
            "pg = ConcurrencyPlayground(kind='async', max_concurrency=2, n_tasks=16, "
            "duration=0.2)\n"
            "pg"],
        "timeline.ipynb": [TIMELINE_SETUP, TIMELINE_RUN],
    })


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


@pytest.fixture
def page(browser, lab):
    context, page = open_notebook(browser, lab, "playground.ipynb")
    yield page
    context.close()


@pytest.fixture
def timeline_page(browser, lab):
    context, page = open_notebook(browser, lab, "timeline.ipynb")
    yield page
    context.close()


def _bar_count(page) -> int:
    return page.locator(BARS).count()


def test_playground_draws_bars_live_and_saves_a_screenshot(page):
    """Run adds bars while the run goes on; compare mode draws four stacked runs; PNG saved."""
    page.locator(".jp-Cell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")
    playground = page.locator(".jupyter-actors-playground")
    run = playground.locator("button", has_text="Run")
    run.wait_for()
    assert _bar_count(page) == 0

    # A live run: 16 calls of 0.2 s at max_concurrency=2 take eight waves (≈1.6 s).
    run.click()
    page.wait_for_function(f"document.querySelectorAll('{BARS}.running').length > 0")
    seen = []
    deadline = time.monotonic() + GUARD_MS / 1000
    while time.monotonic() < deadline:
        n = _bar_count(page)
        if not seen or n != seen[-1]:
            seen.append(n)
        if n == 16 and "done" in playground.locator(".widget-html-content").inner_text():
            break
        page.wait_for_timeout(40)
    assert seen[-1] == 16, seen
    growing = [n for n in seen if 0 < n < 16]
    assert len(growing) >= 3, f"bars did not appear while the run went on: {seen}"
    assert seen == sorted(seen), seen
    # At most max_concurrency=2 slots, and the summary says so.
    lanes = page.locator(".jupyter-actors-timeline-view .ja-lane-bars").count()
    assert lanes == 2
    assert "max overlap 2" in page.locator(".jupyter-actors-timeline-view").inner_text()

    # Hovering a bar tells which call it is.
    page.locator(BARS).first.hover()
    tip = page.locator(".jupyter-actors-timeline-view .ja-tip")
    assert "call id" in tip.inner_text()
    assert "AsyncActor.run_task" in tip.inner_text()
    page.mouse.move(5, 5)

    # Compare mode: max_concurrency 1, 2, 4 and the default, stacked with their wall times.
    playground.locator("label", has_text="compare").click()
    run.click()
    page.wait_for_function(
        f"document.querySelectorAll('{BARS}').length === 64 && "
        "[...document.querySelectorAll('.jupyter-actors-playground .widget-html-content')]"
        ".some(e => e.textContent.includes('done'))")
    sections = page.locator(".jupyter-actors-timeline-view text.ja-section").all_text_contents()
    assert len(sections) == 4, sections
    assert sections[0].startswith("max_concurrency=1 ") and "wall" in sections[0]
    assert sections[3].startswith("max_concurrency=1000 (default)")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    playground.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000


def test_timeline_of_thousands_of_calls_stays_responsive(timeline_page):
    """3000 calls drawn live without freezing the page; failed and cancelled calls marked;
    a bar's tooltip names its concurrency group."""
    page = timeline_page
    page.evaluate(LONG_TASKS)
    page.locator(".jp-Cell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")  # shows the Timeline, moves to the next cell
    page.wait_for_selector(".jupyter-actors-timeline-view svg")
    page.keyboard.press("Shift+Enter")  # runs the calls
    page.wait_for_function(
        f"document.querySelectorAll('{BARS}').length === 3006", timeout=GUARD_MS * 2)
    page.wait_for_selector(".jp-OutputArea-output:has-text('ran 3000')")
    # The failed call's end reaches the widget on the trace's own way, which may be
    # a moment behind the cell's output.
    page.wait_for_function(f"document.querySelectorAll('{BARS}.failed').length === 1")
    page.wait_for_function(f"document.querySelectorAll('{BARS}.cancelled').length === 1")
    text = page.locator(".jupyter-actors-timeline-view").inner_text()
    assert "max overlap 4" in text and "1 failed" in text and "1 cancelled" in text
    page.locator(f"{BARS}.cancelled").hover()
    tip = page.locator(".jupyter-actors-timeline-view .ja-tip")
    assert "Waiter.wait_forever" in tip.inner_text()
    assert "concurrency group waits" in tip.inner_text()
    page.mouse.move(5, 5)
    # The page answered throughout: no main-thread task came near freezing it (redrawing
    # everything for each update would take seconds here; on an idle machine the longest
    # task is about 0.1 s, the bound leaves room for a loaded CI machine).
    tasks = page.evaluate("window.__longTasks") or [0]
    assert max(tasks) < 2500, f"the page froze: main-thread tasks of {tasks} ms"
    start = time.monotonic()
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(1)))")
    assert time.monotonic() - start < 2.5
