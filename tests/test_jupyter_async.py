"""Top-level await, asyncio.run typed into cells, and the progress bar of a long get."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.helpers import GUARD
from tests.kernel_utils import kernel_with_extension

pytestmark = pytest.mark.kernel

SEED_ACTOR = textwrap.dedent("""\
    %%remote
    class AsyncActor:
        # multiple invocation of this method can be running in
        # the event loop at the same time
        async def run_concurrent(self):
            print("started")
            await asyncio.sleep(0.05) # concurrent workload here
            print("finished")
    """)


@pytest.fixture(scope="module")
def kernel():
    k = kernel_with_extension()
    k.run(SEED_ACTOR)
    k.run("actor = AsyncActor.remote()\n"
          "@ray.remote\n"
          "def some_task():\n"
          "    return 1\n")
    yield k
    k.shutdown()


def payload(cell) -> list:
    """The actor lines of a cell without their '(AsyncActor pid=N) ' prefix."""
    return [line.split(") ", 1)[1] for line in cell.stdout.splitlines()
            if line.startswith("(")]


def test_top_level_await_of_a_ref(kernel):
    cell = kernel.run("await actor.run_concurrent.remote()\nprint(await some_task.remote())")
    assert payload(cell) == ["started", "finished"]
    assert cell.stdout.splitlines()[-1] == "1"


def test_top_level_gather_and_wait(kernel):
    """await asyncio.gather(*refs) and await asyncio.wait(refs) work at the top level."""
    cell = kernel.run(
        "print(await asyncio.gather(*[some_task.remote() for _ in range(5)]))\n"
        "done, pending = await asyncio.wait([some_task.remote(), some_task.remote()])\n"
        "print(len(done), len(pending), sorted(d.result() for d in done))")
    assert cell.stdout.splitlines() == ["[1, 1, 1, 1, 1]", "2 0 [1, 1]"]


def test_seed_asyncio_run_then_more_cells(kernel):
    """The seed's asyncio.run(async_get()) works, and every queued cell after it runs."""
    cells = []
    for i in range(3):
        cells.append(kernel.submit(textwrap.dedent(f"""\
            async def async_get():
                await actor.run_concurrent.remote()
            asyncio.run(async_get())
            print("after run {i}")
            """)))
        cells.append(kernel.submit(f"print('plain cell {i}')"))
        cells.append(kernel.submit(f"await asyncio.sleep(0)\nprint('await cell {i}')"))
    for cell in cells:
        kernel.wait_done(cell).check_ok()
    for i in range(3):
        run, plain, awaiting = cells[3 * i: 3 * i + 3]
        assert payload(run) == ["started", "finished"]
        assert run.stdout.splitlines()[-1] == f"after run {i}"
        assert plain.stdout == f"plain cell {i}\n"
        assert awaiting.stdout == f"await cell {i}\n"


def test_seed_objectrefs_as_futures_inside_asyncio_run(kernel):
    """The seed's await_obj_ref / wrap_future snippets, typed into cells."""
    cell = kernel.run(textwrap.dedent("""\
        async def await_obj_ref():
            await some_task.remote()
            await asyncio.wait([some_task.remote()])

        asyncio.run(await_obj_ref())

        async def convert_to_asyncio_future():
            ref = some_task.remote()
            fut: asyncio.Future = asyncio.wrap_future(ref.future())
            print(await fut)
        asyncio.run(convert_to_asyncio_future())
        """))
    assert cell.stdout == "1\n"


def test_asyncio_run_raises_the_coroutines_error_in_the_cell(kernel):
    cell = kernel.run("async def broken():\n    raise LookupError('inside')\n"
                      "asyncio.run(broken())", ok=False)
    assert cell.error["ename"] == "LookupError" and cell.error["evalue"] == "inside"
    after = kernel.run("print('still fine')")
    assert after.stdout == "still fine\n"


def test_asyncio_run_rejects_a_non_coroutine_like_asyncio(kernel):
    cell = kernel.run("asyncio.run(42)", ok=False)
    assert cell.error["ename"] == "ValueError"
    assert "a coroutine was expected" in cell.error["evalue"]


def test_asyncio_run_sees_the_cells_context(kernel):
    """Context variables set by the cell are visible inside asyncio.run, as in a script."""
    cell = kernel.run("import contextvars\n"
                      "colour = contextvars.ContextVar('colour')\n"
                      "colour.set('blue')\n"
                      "async def read():\n    return colour.get()\n"
                      "print(asyncio.run(read()))")
    assert cell.stdout == "blue\n"


def test_progress_bar_for_a_long_get(kernel):
    """get of many refs that waits longer than a second shows a tqdm bar in the cell."""
    kernel.run("%%remote\n"
               "class Slow:\n"
               "    async def nap(self, seconds):\n"
               "        await asyncio.sleep(seconds)\n"
               "        return seconds\n")
    # Each call takes 1.5 s of actor time, more than the bar's 1 s delay.
    cell = kernel.run("slow = Slow.remote()\n"
                      "print(sum(ray.get([slow.nap.remote(1.5) for _ in range(4)])))")
    assert cell.stdout.strip().endswith("6.0")
    bars = [d for d in cell.displays() if "application/vnd.jupyter.widget-view+json" in d]
    assert len(bars) == 1, cell.outputs
    assert bars[0]["text/plain"].startswith("get:") and "/4 " in bars[0]["text/plain"]


def test_no_progress_bar_when_get_is_quick(kernel):
    """Refs that are already done: no bar, just the values."""
    cell = kernel.run("refs = [some_task.remote() for _ in range(20)]\n"
                      "ray.wait(refs, num_returns=20, timeout=GUARD)\n"
                      "print(sum(ray.get(refs)))")
    assert cell.stdout == "20\n"
    assert cell.displays() == [] and cell.stderr == ""


def test_progress_get_raises_the_first_error_in_order(kernel):
    """With the bar, get still raises the error of the first failed ref in list order."""
    cell = kernel.run("@ray.remote\n"
                      "def maybe(i):\n"
                      "    if i in (2, 3):\n"
                      "        raise KeyError(i)\n"
                      "    return i\n"
                      "ray.get([maybe.remote(i) for i in range(5)])", ok=False)
    assert cell.error["ename"] == "KeyError" and cell.error["evalue"] == "2"


def test_progress_is_off_in_scripts_unless_enabled():
    """Outside a notebook there is no bar until progress.enable() asks for one."""
    code = textwrap.dedent("""\
        import asyncio, sys
        import jupyter_actors as ray
        from jupyter_actors import progress

        @ray.remote
        class Slow:
            async def nap(self, seconds):
                await asyncio.sleep(seconds)
                return seconds

        slow = Slow.remote()
        print(progress.is_enabled(), ray.get([slow.nap.remote(0.01) for _ in range(3)]))
        progress.enable(delay=0.2)
        print(progress.is_enabled(), sum(ray.get([slow.nap.remote(0.5) for _ in range(3)])))
        progress.disable()
        print(progress.is_enabled())
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=GUARD * 2, check=True)
    assert out.stdout.splitlines() == ["False [0.01, 0.01, 0.01]", "True 1.5", "False"]
    assert "get: 100%" in out.stderr and "3/3" in out.stderr
