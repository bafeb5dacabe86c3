"""The Jupyter layer over Ray: a real ipykernel joined to a real Ray head node.

The kernel chooses Ray by its environment only (``JUPYTER_ACTORS_BACKEND=ray``
and ``RAY_ADDRESS``), as a notebook moved from a laptop to a cluster would.
"""
from __future__ import annotations

import os
import re

import nbformat
import pytest

from tests.helpers import GUARD
from tests.kernel_utils import PRELUDE, Kernel, ansi_free

pytestmark = [pytest.mark.ray, pytest.mark.kernel, pytest.mark.timeout(600)]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ray_env(head) -> dict:
    return {"JUPYTER_ACTORS_BACKEND": "ray", "RAY_ADDRESS": head.address}


@pytest.fixture(scope="module")
def kernel(ray_head):
    k = Kernel(extra_env=_ray_env(ray_head))
    try:
        k.run(PRELUDE)
        k.run("import os, time, threading\n"
              "@ray.remote\n"
              "class Talker:\n"
              "    def say(self, text, gate=None):\n"
              "        print(text)\n"
              "        if gate:\n"
              "            FileEvent(gate).wait(GUARD)\n"
              "            print(text + ' after the gate')\n"
              "        return text\n"
              "    def pid(self):\n"
              "        return os.getpid()\n"
              "talker = Talker.remote()\n"
              "assert ray.backend_name() == 'ray'", timeout=4 * GUARD)
        yield k
    finally:
        k.shutdown()


def test_actor_output_lands_in_the_calling_cell(kernel):
    """A print in an actor on Ray shows up in the cell that made the call, prefixed."""
    cell = kernel.run("ray.get(talker.say.remote('hello from ray'))")
    kernel.pump_for_output(cell, "hello from ray")
    assert "(Talker pid=" in ansi_free(cell.stdout)


CHATTY = ("@ray.remote\n"
          "class Chatty:\n"
          "    def talk(self, n, fail=False):\n"
          "        for i in range(n):\n"
          "            print(f'line {i}', file=sys.stderr if i % 7 == 3 else sys.stdout)\n"
          "        print('last words', end='')\n"
          "        if fail:\n"
          "            raise ValueError('it failed after talking')\n"
          "        return 'the result'\n"
          "@ray.remote\n"
          "class AsyncChatty:\n"
          "    async def talk(self, n):\n"
          "        for i in range(n):\n"
          "            print(f'line {i}')\n"
          "        print('last words', end='')\n"
          "        return 'the result'\n"
          "@ray.remote\n"
          "def talk(n):\n"
          "    for i in range(n):\n"
          "        print(f'line {i}')\n"
          "    print('last words', end='')\n"
          "    return 'the result'\n")


def _lines_then(cell, n: int, last: str) -> None:
    """Every line the call printed is in the cell once, before ``last`` (the cell's result)."""
    streams = [o for o in cell.outputs if o["msg_type"] == "stream"]
    text = ansi_free("".join(o["content"]["text"] for o in streams))
    for i in range(n):
        assert text.count(f") line {i}\n") == 1, (i, text[-2000:])
    assert text.count("last words") == 1
    assert text.index(f") line {n - 1}\n") < text.index(last)
    assert text.index("last words") < text.index(last)


@pytest.mark.parametrize("call", ["ray.get(Chatty.remote().talk.remote(N))",
                                  "await AsyncChatty.remote().talk.remote(N)",
                                  "ray.get(talk.remote(N))"])
def test_a_calls_output_is_in_the_cell_before_its_result(kernel, call):
    """All a call printed is in the calling cell before get() / await gives its result
    (Ray's log stream alone brings the last lines after it), each line once."""
    kernel.run("import sys\n" + CHATTY)
    n = 400
    cell = kernel.run(f"N = {n}\nprint('RESULT:', {call})")
    _lines_then(cell, n, "RESULT: the result")


def test_a_failed_calls_output_is_in_the_cell_before_its_error(kernel):
    """A call that printed and raised: its lines come before get() raises."""
    kernel.run("import sys\n" + CHATTY)
    n = 400
    cell = kernel.run(f"try:\n"
                      f"    ray.get(Chatty.remote().talk.remote({n}, fail=True))\n"
                      f"except ValueError as exc:\n"
                      f"    print('RAISED:', exc)")
    _lines_then(cell, n, "RAISED: it failed after talking")


def test_late_output_goes_to_the_cell_that_made_the_call(kernel, tmp_path):
    """Output printed after the calling cell finished still lands in that cell, not the next."""
    gate = str(tmp_path / "gate")
    first = kernel.run(f"late = talker.say.remote('early', {gate!r})")
    second = kernel.run(f"FileEvent({gate!r}).set()\n"
                        f"print(ray.get(late, timeout=GUARD))")
    kernel.pump_for_output(first, "early after the gate")
    assert "early after the gate" not in second.stdout
    assert "early" in second.stdout   # the value printed by the second cell itself


def test_a_tqdm_bar_in_an_actor_is_drawn_in_the_calling_cell(kernel):
    """A tqdm bar in an actor method on Ray is one display in the calling cell, updated in
    place; the method leaves it open at 7/10, so the call's end closes it there (drawn as
    stopped short); tqdm writes nothing of its own to the cell's stderr."""
    from tests.test_progress_bars import bars
    kernel.run("from tqdm.auto import tqdm\n"
               "@ray.remote\n"
               "class Counter:\n"
               "    def count(self, n, total):\n"
               "        self.bar = tqdm(total=total, desc='counting')   # kept open\n"
               "        for _ in range(n):\n"
               "            self.bar.update()\n"
               "        return n\n"
               "counter = Counter.remote()")
    cell = kernel.run("ray.get(counter.count.remote(7, 10))")
    # The states come by Ray's log stream: the last may follow the result.
    kernel.pump_until(lambda: any("#d9534f" in page for messages in bars(cell).values()
                                  for _, _, page in messages), GUARD, "the bar closed")
    (display_id, messages), = bars(cell).items()
    assert display_id and messages[0][0] == "display_data"
    assert all(kind == "update_display_data" for kind, _, _ in messages[1:])
    kind, text, page = messages[-1]
    assert re.match(r"\(Counter pid=\d+\) counting:  70%\|.*\| 7/10 \[", text), text
    assert "counting" not in cell.stdout + cell.stderr and "it/s" not in cell.stderr


def test_percent_actors_lists_ray_actors(kernel):
    """%actors names the Ray cluster and lists the session's actors with their pids."""
    pid = kernel.run("print(ray.get(talker.pid.remote()))").stdout.strip()
    table = kernel.run("%actors").result["text/plain"]
    assert table.startswith("Actors on Ray at ")
    assert "Talker" in table and pid in table and "alive" in table


def test_interrupt_cancels_the_cells_queued_calls(kernel, tmp_path):
    """Ctrl-C stops the wait and cancels the calls the cell queued; the actor stays usable."""
    gate = str(tmp_path / "gate")
    kernel.run("blocker = Talker.remote()")
    cell = kernel.submit(f"held = blocker.say.remote('holding', {gate!r})\n"
                         f"queued = [blocker.say.remote(f'queued {{i}}') for i in range(3)]\n"
                         f"ray.get(queued)")
    kernel.pump_for_output(cell, "holding")
    kernel.interrupt()
    kernel.wait_done(cell)
    assert cell.reply["status"] == "error" and cell.reply["ename"] == "KeyboardInterrupt"
    kernel.run(f"FileEvent({gate!r}).set()\n"
               f"assert ray.get(held, timeout=GUARD) == 'holding'\n"
               f"for ref in queued:\n"
               f"    try:\n"
               f"        ray.get(ref, timeout=GUARD)\n"
               f"        raise AssertionError('a queued call ran')\n"
               f"    except ray.exceptions.TaskCancelledError:\n"
               f"        pass\n"
               f"assert ray.get(blocker.say.remote('still here'), timeout=GUARD) == 'still here'")
    assert "queued 0" not in cell.stdout


def test_timeline_draws_calls_that_ran_on_ray(kernel):
    """timeline() has the calls with the actor's pid once its worker has reported them."""
    kernel.run("pid = ray.get(talker.pid.remote())\n"
               "refs = [talker.say.remote(str(i)) for i in range(3)]\n"
               "ray.get(refs)\n"
               "deadline = time.monotonic() + GUARD\n"
               "while any(r._owner.pid is None for r in refs):\n"
               "    assert time.monotonic() < deadline\n"
               "    time.sleep(0.02)\n"
               "spans = [e for e in ray.timeline() if e.get('name') == 'Talker.say']\n"
               "assert spans and all(e['pid'] == pid for e in spans[-3:]), spans")


def test_restarting_the_kernel_ends_its_actors_on_the_cluster(ray_head):
    """Non-detached actors die with the driver, as in Ray: a restart leaves none running."""
    from tests.helpers import pid_gone
    k = Kernel(extra_env=_ray_env(ray_head))
    try:
        k.run(PRELUDE)
        pids = k.run("import os\n"
                     "@ray.remote\n"
                     "class Sleeper:\n"
                     "    def pid(self):\n"
                     "        return os.getpid()\n"
                     "sleepers = [Sleeper.remote() for _ in range(2)]\n"
                     "print(*ray.get([s.pid.remote() for s in sleepers]))",
                     timeout=4 * GUARD).stdout.split()
        assert len(pids) == 2
        k.restart(now=True)
        assert all(pid_gone(int(pid), 4 * GUARD) for pid in pids)
    finally:
        k.shutdown()


NOTEBOOKS = ["01_async_actors.ipynb", "02_objectrefs_as_futures.ipynb",
             "03_max_concurrency_and_threaded_actors.ipynb", "04_magics_and_output.ipynb"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_tutorial_notebooks_run_on_ray(ray_head, name, monkeypatch):
    """The tutorials run top to bottom on Ray, unchanged (outputs are not compared: timings
    and pids differ)."""
    from nbclient import NotebookClient
    for key, value in _ray_env(ray_head).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [ROOT,
                                                                   os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
    client = NotebookClient(nb, timeout=4 * GUARD, kernel_name="python3",
                            resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    expected = [c for c in nb.cells if "raises-exception" in c.get("metadata", {}).get("tags", [])]
    assert len(errors) <= len(expected), [(e["ename"], e["evalue"]) for e in errors]
