"""breakpoint(), pdb and input() inside actors and tasks, answered through the kernel's stdin channel."""
from __future__ import annotations

import queue
import sys
import textwrap
import time

import pytest

from tests.helpers import GUARD
from tests.kernel_utils import ansi_free, kernel_with_extension

pytestmark = pytest.mark.kernel

# pdb.set_trace() / breakpoint() stop at their own line from Python 3.13 on, at the next before.
STOPS_AT_CALL = sys.version_info >= (3, 13)

ACTORS = textwrap.dedent("""\
    %%remote
    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self, by):
            total = self.n + by
            breakpoint()
            self.n = total
            return self.n

        def value(self):
            return self.n

        def ask_name(self):
            return "hello " + input("your name? ")
    """)

PAIR = textwrap.dedent("""\
    %%remote
    class Stopper:
        def stop(self, started, tag):
            FileEvent(started).set()
            here = tag
            breakpoint()
            return here
    """)


@pytest.fixture(scope="module")
def kernel():
    k = kernel_with_extension(ACTORS, PAIR)
    yield k
    k.shutdown()


def next_prompt(kernel, timeout: float = GUARD) -> str:
    """The prompt of the next input request on the stdin channel."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = kernel.client.get_stdin_msg(timeout=0.5)
        except queue.Empty:
            assert time.monotonic() < deadline, "no input request arrived"
            continue
        if msg["msg_type"] == "input_request":
            return msg["content"]["prompt"]


def answer(kernel, text: str) -> None:
    kernel.client.input(text)


def test_pdb_in_an_actor_method_is_driven_from_the_calling_cell(kernel):
    """n, p and c behave as in a local pdb; the prompt names the actor and its pid."""
    kernel.run("c = Counter.remote()")
    cell = kernel.submit("print('result', ray.get(c.incr.remote(5)))")
    prompt = next_prompt(kernel)
    assert "(Counter pid=" in prompt and prompt.endswith("(Pdb) ")
    answer(kernel, "p total")
    assert next_prompt(kernel).endswith("(Pdb) ")
    answer(kernel, "p self.n")
    next_prompt(kernel)
    answer(kernel, "n")
    next_prompt(kernel)
    answer(kernel, "p self.n")
    next_prompt(kernel)
    answer(kernel, "c")
    kernel.wait_done(cell)
    cell.check_ok()
    out = ansi_free(cell.stdout)
    lines = [line.split(") ", 1)[1] for line in out.splitlines() if line.startswith("(Counter")]
    # Where pdb stopped, the two values before "n" (total, self.n), the next line, self.n then.
    # As a local pdb does: from Python 3.13 on, it stops at the breakpoint() line itself.
    stops = ["-> breakpoint()", "-> self.n = total"] if STOPS_AT_CALL else \
        ["-> self.n = total", "-> return self.n"]
    assert lines[0].startswith("> ") and lines[0].endswith("incr()"), out
    assert lines[1] == stops[0], out
    assert lines[2:4] == ["5", "0"], out
    assert lines[5] == stops[1], out
    assert lines[6] == ("0" if STOPS_AT_CALL else "5"), out
    assert "result 5" in out


def test_input_in_an_actor_and_in_a_task(kernel):
    """input() in a worker is an input request of the calling cell."""
    cell = kernel.submit("print(ray.get(c.ask_name.remote()))")
    assert next_prompt(kernel).endswith("your name? ")
    answer(kernel, "Ada")
    kernel.wait_done(cell)
    assert "hello Ada" in cell.check_ok().stdout
    kernel.run("@ray.remote\ndef ask_twice():\n    return input('a? ') + input('b? ')")
    cell = kernel.submit("print(ray.get(ask_twice.remote()))")
    assert "(ask_twice pid=" in next_prompt(kernel)
    answer(kernel, "x")
    assert next_prompt(kernel).endswith("b? ")
    answer(kernel, "y")
    kernel.wait_done(cell)
    assert "xy" in cell.check_ok().stdout


def test_calls_wait_behind_a_debugger_session(kernel):
    """Another call to the actor runs only after the session lets the first one go on."""
    cell = kernel.submit("r1 = c.incr.remote(1); r2 = c.value.remote()\n"
                         "print(ray.wait([r2], timeout=0.5)[0])\n"
                         "print(ray.get([r1, r2]))")
    next_prompt(kernel)  # the first call is at its breakpoint...
    kernel.pump_for_output(cell, "[]")  # ...and the second is not done meanwhile
    answer(kernel, "c")
    kernel.wait_done(cell)
    assert "[6, 6]" in cell.check_ok().stdout


def test_two_breakpoints_at_once_are_asked_one_after_the_other(kernel, tmp_path):
    """The second actor's prompt comes only once the first session let its call go on."""
    first, second = tmp_path / "a", tmp_path / "b"
    kernel.run("s1, s2 = Stopper.remote(), Stopper.remote()")
    cell = kernel.submit(f"print(ray.get([s1.stop.remote({str(first)!r}, 'one'), "
                         f"s2.stop.remote({str(second)!r}, 'two')]))")
    deadline = time.monotonic() + GUARD
    while not (first.exists() and second.exists()):
        assert time.monotonic() < deadline, "the actors never reached their breakpoints"
        time.sleep(0.01)
    prompt = next_prompt(kernel)
    owner = prompt.split(" (Pdb)")[0]
    seen = [owner]
    for _ in range(3):  # both have hit their breakpoints: only the first one asks meanwhile
        answer(kernel, "p here")
        seen.append(next_prompt(kernel).split(" (Pdb)")[0])
    answer(kernel, "c")
    other = next_prompt(kernel).split(" (Pdb)")[0]
    answer(kernel, "c")
    kernel.wait_done(cell)
    assert seen == [owner] * 4
    assert other != owner and other.startswith("(Stopper pid=")
    assert "['one', 'two']" in cell.check_ok().stdout


def test_interrupting_the_cell_ends_the_session_and_fails_the_call(kernel):
    """The interrupted call fails with a clear error; the actor goes on serving calls."""
    cell = kernel.submit("ref = c.incr.remote(10)\nray.get(ref)")
    next_prompt(kernel)
    kernel.interrupt()
    kernel.wait_done(cell)
    assert cell.error["ename"] == "KeyboardInterrupt"
    after = kernel.run("try:\n    ray.get(ref)\nexcept ray.exceptions.TaskCancelledError as e:\n"
                       "    print('failed:', e)\nprint('still', ray.get(c.value.remote()))")
    out = ansi_free(after.stdout)
    assert "failed:" in out and "interrupted" in out and "Counter.incr" in out
    assert "still 6" in out


def test_without_stdin_a_breakpoint_goes_on_and_says_so_once(kernel):
    """allow_stdin=False (nbconvert, nbval): no prompt, one notice, the calls finish."""
    msg_id = kernel.client.execute("print(ray.get([c.incr.remote(1), c.incr.remote(1)]))",
                                   allow_stdin=False)
    from tests.kernel_utils import Cell
    cell = kernel.cells[msg_id] = Cell("", msg_id)
    kernel.wait_done(cell)
    assert "[7, 8]" in cell.check_ok().stdout
    assert cell.stderr.count("breakpoint() in Counter.incr was skipped") == 1
    assert "PYTHONBREAKPOINT=0" in cell.stderr


def test_ray_util_pdb_set_trace_and_post_mortem(kernel):
    """Ray's ray.util.pdb.set_trace() and post_mortem() inside tasks ask like breakpoint()."""
    kernel.run(textwrap.dedent("""\
        @ray.remote
        def halve(x):
            half = x / 2
            ray.util.pdb.set_trace()
            return half

        @ray.remote
        def invert(x):
            try:
                return 1 / x
            except ZeroDivisionError:
                ray.util.pdb.post_mortem()
                raise
        """))
    cell = kernel.submit("print('result', ray.get(halve.remote(8)))")
    assert "(halve pid=" in next_prompt(kernel)
    answer(kernel, "p half * 10")
    next_prompt(kernel)
    answer(kernel, "c")
    kernel.wait_done(cell)
    out = ansi_free(cell.check_ok().stdout)
    assert ") 40.0" in out and "result 4.0" in out
    cell = kernel.submit("try:\n    ray.get(invert.remote(0))\n"
                         "except ZeroDivisionError:\n    print('raised')")
    assert "(invert pid=" in next_prompt(kernel)
    answer(kernel, "p x - 7")
    next_prompt(kernel)
    answer(kernel, "c")
    kernel.wait_done(cell)
    out = ansi_free(cell.check_ok().stdout)
    assert "-> return 1 / x" in out and ") -7" in out and "raised" in out


def test_a_kernel_without_the_extension_says_how_to_get_the_prompt():
    """Without %load_ext the breakpoint is skipped, and the notice says what to load."""
    from tests.kernel_utils import Kernel
    kernel = Kernel()
    try:
        cell = kernel.run("import jupyter_actors as ray\n"
                          "@ray.remote\ndef stop(x):\n    breakpoint()\n    return x\n"
                          "print(ray.get(stop.remote(3)))")
        assert "3" in cell.stdout
        assert "%load_ext jupyter_actors" in cell.stderr + "".join(
            m["content"].get("text", "") for m in kernel.stray)
    finally:
        kernel.shutdown()


def test_an_actor_that_dies_at_its_prompt_leaves_the_next_prompts_working(kernel):
    """The dead worker's ask ends at once: the next prompt gets the next answer."""
    import os
    import re
    import signal
    kernel.run("doomed = Counter.remote()")
    cell = kernel.submit("ray.get(doomed.incr.remote(1))")
    pid = int(re.search(r"pid=(\d+)", next_prompt(kernel)).group(1))
    os.kill(pid, signal.SIGKILL)  # never answered
    kernel.wait_done(cell)
    assert cell.error["ename"] == "ActorDiedError"
    cell = kernel.submit("print('asked', ray.get(c.ask_name.remote()))")
    assert next_prompt(kernel).endswith("your name? ")
    answer(kernel, "Grace")
    kernel.wait_done(cell)
    assert "asked hello Grace" in cell.check_ok().stdout
