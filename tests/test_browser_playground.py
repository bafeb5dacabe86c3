"""The playground in a real JupyterLab, rendered by headless Chromium (Debian's, via Playwright).

The test starts JupyterLab on 127.0.0.1 (free port, random token, no browser),
opens a notebook that shows a ConcurrencyPlayground, clicks Run and watches
bars appear while the run goes on, then runs compare mode and saves the
screenshot the README shows (docs/images/playground.png).
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("JUPYTER_ACTORS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = pathlib.Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "images" / "playground.png"
GUARD_MS = 60_000  # deadlock guard for any single wait in the browser
BARS = ".jupyter-actors-timeline-view rect.ja-bar"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed"
    if importlib.util.find_spec("anywidget") is None:
        return "anywidget is not installed"
    return None


if _missing():
    pytest.skip(_missing(), allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(cells: list) -> dict:
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}",
                   "metadata": {}, "outputs": [], "source": src} for i, src in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with its own settings, serving a temporary folder."""
    root = tmp_path_factory.mktemp("lab")
    (root / "playground.ipynb").write_text(json.dumps(_notebook([
        "from jupyter_actors.widgets import ConcurrencyPlayground\n"
        "pg = ConcurrencyPlayground(kind='async', max_concurrency=2, n_tasks=16, duration=0.2)\n"
        "pg",
    ])))
    (root / "timeline.ipynb").write_text(json.dumps(_notebook([TIMELINE_SETUP, TIMELINE_RUN])))
    settings = root / ".settings"
    # No news pop-up over the screenshot.
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".config"),
               JUPYTER_RUNTIME_DIR=str(root / ".runtime"), PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_TOKEN", None)
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabServerApp.user_settings_dir={settings}",
         f"--LabServerApp.workspaces_dir={root / '.workspaces'}",
         "--ServerApp.open_browser=False"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("JupyterLab did not start:\n" + (root / "lab.log").read_text()[-3000:])
        time.sleep(0.2)
    yield {"base": base, "token": token, "root": root}
    proc.terminate()  # shuts the kernel down; its workers exit with it
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    log.close()


# A threaded actor with four threads: thousands of calls, one failing, and an
# async actor with a running call that gets cancelled (waited for, not slept on).
TIMELINE_SETUP = """\
import asyncio, time
import jupyter_actors as ray
from jupyter_actors.widgets import Timeline

@ray.remote
class Worker:
    def f(self, x):
        return x
    def fail(self):
        raise ValueError("deliberate")

@ray.remote
class Waiter:
    async def wait_forever(self):
        await asyncio.sleep(600)

worker = Worker.options(max_concurrency=4).remote()
waiter = Waiter.remote()
tl = Timeline(worker, waiter)
tl"""

TIMELINE_RUN = """\
N = 3000
refs = [worker.f.remote(i) for i in range(N)] + [worker.fail.remote()]
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
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _open(browser, lab, name: str):
    context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                  device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(GUARD_MS)
    page.goto(f"{lab['base']}/lab/tree/{name}?token={lab['token']}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    # The kernel must be up before a cell runs: the status bar says "Idle".
    page.wait_for_selector("text=/Python 3 \\(ipykernel\\) \\| Idle/")
    return context, page


@pytest.fixture
def page(browser, lab):
    context, page = _open(browser, lab, "playground.ipynb")
    yield page
    context.close()


@pytest.fixture
def timeline_page(browser, lab):
    context, page = _open(browser, lab, "timeline.ipynb")
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


# Long main-thread tasks in the page, collected while calls are drawn.
LONG_TASKS = """() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push(e.duration);
  }).observe({type: "longtask", buffered: false});
}"""


def test_timeline_of_thousands_of_calls_stays_responsive(timeline_page):
    """3000 calls drawn live without freezing the page; failed and cancelled calls marked."""
    page = timeline_page
    page.evaluate(LONG_TASKS)
    page.locator(".jp-Cell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")  # shows the Timeline, moves to the next cell
    page.wait_for_selector(".jupyter-actors-timeline-view svg")
    page.keyboard.press("Shift+Enter")  # runs the calls
    page.wait_for_function(
        f"document.querySelectorAll('{BARS}').length === 3002", timeout=GUARD_MS * 2)
    page.wait_for_selector(".jp-OutputArea-output:has-text('ran 3000')")
    assert page.locator(f"{BARS}.failed").count() == 1
    page.wait_for_function(f"document.querySelectorAll('{BARS}.cancelled').length === 1")
    text = page.locator(".jupyter-actors-timeline-view").inner_text()
    assert "max overlap 4" in text and "1 failed" in text and "1 cancelled" in text
    # The page answered throughout: no main-thread task came near freezing it (redrawing
    # everything for each update would take seconds here; on an idle machine the longest
    # task is about 0.1 s, the bound leaves room for a loaded CI machine).
    tasks = page.evaluate("window.__longTasks") or [0]
    assert max(tasks) < 2500, f"the page froze: main-thread tasks of {tasks} ms"
    start = time.monotonic()
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(1)))")
    assert time.monotonic() - start < 2.5
