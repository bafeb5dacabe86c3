"""Every line a call prints lands in the cell that made the call, also when it comes late."""
from __future__ import annotations

import textwrap

import pytest

from tests.helpers import FileEvent
from tests.kernel_utils import kernel_with_extension

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def kernel():
    k = kernel_with_extension()
    k.run(textwrap.dedent("""\
        %%remote
        class Talker:
            async def late(self, tag, gate):
                print(f"{tag} early")
                await asyncio.to_thread(FileEvent(gate).wait, 60)
                print(f"{tag} late")
                print(f"{tag} to stderr", file=sys.stderr)
                return f"{tag} result"

            def lines(self, tag, n):
                for i in range(n):
                    print(f"{tag} line {i}")
                return n
        """))
    k.run("talker = Talker.remote()")
    yield k
    k.shutdown()


def no_stray_output(kernel) -> None:
    stray = [m for m in kernel.stray if m["msg_type"] in ("stream", "error", "display_data")]
    assert not stray, stray


def test_output_arrives_before_the_result_in_the_same_cell(kernel):
    """The cell shows the actor's lines (prefixed), then its own print of the result."""
    cell = kernel.run("n = ray.get(talker.lines.remote('now', 3), timeout=GUARD)\n"
                      "print('got', n)")
    lines = cell.stdout.splitlines()
    assert [line.split(") ", 1)[1] for line in lines[:3]] == ["now line 0", "now line 1",
                                                              "now line 2"]
    assert all(line.startswith("(Talker pid=") for line in lines[:3])
    assert lines[3:] == ["got 3"]


def test_late_output_goes_to_the_cell_that_made_the_call(kernel, tmp_path):
    """Lines printed while another cell runs land in the first cell, never in the running one."""
    gate = str(tmp_path / "gate-a")
    # (The cell prints before it calls: a print racing the actor's first line
    # could be split by it, as with any two threads printing at once.)
    first = kernel.run(f"print('A submits')\nref_a = talker.late.remote('A', {gate!r})")
    kernel.pump_for_output(first, "A early")
    # The second cell releases the call, then waits for its result: the late
    # lines are printed while the second cell is the one running.
    second = kernel.run(f"print('B starts')\n"
                        f"FileEvent({gate!r}).set()\n"
                        f"print(ray.get(ref_a, timeout=GUARD))\n"
                        f"print('B ends')")
    assert second.stdout == "B starts\nA result\nB ends\n"
    assert second.stderr == ""
    kernel.pump_for_output(first, "A late")
    kernel.pump_for_output(first, "A to stderr")
    assert [line.split(") ", 1)[-1] for line in first.stdout.splitlines()] == [
        "A submits", "A early", "A late"]
    assert first.stderr.endswith("A to stderr\n")
    no_stray_output(kernel)


def test_late_output_after_every_cell_finished(kernel, tmp_path):
    """With no cell running, late lines still go to the cell that made the call."""
    gate = str(tmp_path / "gate-c")
    cell = kernel.run(f"ref_c = talker.late.remote('C', {gate!r})")
    kernel.pump_for_output(cell, "C early")
    other = kernel.run("print('unrelated')")
    FileEvent(gate).set()
    kernel.pump_for_output(cell, "C late")
    assert other.stdout == "unrelated\n"
    no_stray_output(kernel)


def test_two_cells_interleaved_keep_their_own_lines(kernel, tmp_path):
    """Calls from two cells, finishing in the opposite order, each print into their own cell."""
    gate_x, gate_y = str(tmp_path / "gate-x"), str(tmp_path / "gate-y")
    x = kernel.run(f"ref_x = talker.late.remote('X', {gate_x!r})")
    y = kernel.run(f"ref_y = talker.late.remote('Y', {gate_y!r})")
    kernel.pump_for_output(x, "X early")
    kernel.pump_for_output(y, "Y early")
    FileEvent(gate_y).set()
    kernel.pump_for_output(y, "Y late")
    FileEvent(gate_x).set()
    kernel.pump_for_output(x, "X late")
    assert "Y" not in x.stdout.replace("(Talker", "") and "X" not in y.stdout
    no_stray_output(kernel)


def test_many_lines_are_never_dropped(kernel):
    """A burst of lines from several concurrent calls arrives complete and in per-call order."""
    cell = kernel.run("ray.get([talker.lines.remote(f'burst{k}', 200) for k in range(3)],"
                      " timeout=GUARD)")
    for k in range(3):
        mine = [line.split(") ", 1)[1] for line in cell.stdout.splitlines()
                if f") burst{k} " in line]
        assert mine == [f"burst{k} line {i}" for i in range(200)]


def test_captured_cell_keeps_the_actor_output(kernel):
    """Inside %%capture the actor's lines go into the capture, like the cell's own prints."""
    cell = kernel.run("%%capture captured\n"
                      "ray.get(talker.lines.remote('captured', 2), timeout=GUARD)")
    assert cell.stdout == ""
    shown = kernel.run("print(captured.stdout)")
    assert "captured line 0" in shown.stdout and "captured line 1" in shown.stdout


def test_function_task_output_is_prefixed_with_its_name(kernel):
    """A remote function's lines carry '(name pid=N)' and land in the calling cell."""
    kernel.run("%%remote\ndef shout(word):\n    print(word.upper())\n    return len(word)\n")
    cell = kernel.run("print(ray.get(shout.remote('hey'), timeout=GUARD))")
    first, second = cell.stdout.splitlines()
    assert first.startswith("(shout pid=") and first.endswith(") HEY")
    assert second == "3"

