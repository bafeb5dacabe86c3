"""A breakpoint in an actor, answered in a real JupyterLab's input box (headless Chromium)."""
from __future__ import annotations

import pytest

from tests.browser_utils import launch_chromium, missing, open_notebook, serve_lab

pytestmark = pytest.mark.browser

if missing():
    pytest.skip(missing(), allow_module_level=True)

CELL = """\
%load_ext jupyter_actors
import jupyter_actors as ray

@ray.remote
class Counter:
    def incr(self, by):
        total = 40 + by
        breakpoint()
        return total

counter = Counter.remote()
print("result", ray.get(counter.incr.remote(2)))"""

STDIN = ".jp-OutputArea-output .jp-Stdin-input"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from serve_lab(tmp_path_factory.mktemp("lab"), {"debug.ipynb": [CELL]})


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


def test_the_pdb_prompt_of_an_actor_is_an_input_box_in_the_calling_cell(browser, lab):
    """The cell shows where pdb stopped and an input box; what is typed there drives pdb."""
    context, page = open_notebook(browser, lab, "debug.ipynb")
    try:
        page.locator(".jp-Cell .jp-InputArea-editor").first.click()
        page.keyboard.press("Shift+Enter")
        box = page.locator(STDIN)
        box.wait_for()
        cell = page.locator(".jp-Cell").first
        assert "(Counter pid=" in cell.locator(".jp-Stdin-prompt").inner_text()
        assert "incr()" in cell.locator(".jp-OutputArea").inner_text()
        box.fill("p total * 2")
        box.press("Enter")
        page.wait_for_selector(".jp-OutputArea-output:has-text('84')")
        page.wait_for_function(f"document.querySelectorAll('{STDIN}').length === 2")
        page.locator(STDIN).last.fill("c")
        page.locator(STDIN).last.press("Enter")
        page.wait_for_selector(".jp-OutputArea-output:has-text('result 42')")
    finally:
        context.close()
