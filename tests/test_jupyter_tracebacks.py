"""A remote error reads like a local one: the cell's frames, then the remote code's frames."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import GUARD
from tests.kernel_utils import Cell, ansi_free, kernel_with_extension

pytestmark = pytest.mark.kernel

RUNTIME_TRACES = ("concurrent/futures", "asyncio/", "jupyter_actors/", "skipping hidden",
                  "ipykernel_", "RemoteTraceback")


@pytest.fixture(scope="module")
def kernel():
    k = kernel_with_extension()
    k.run(textwrap.dedent("""\
        @ray.remote
        class Parser:
            def parse(self, text):
                cleaned = text.strip()
                return int(cleaned)

            async def parse_later(self, text):
                await asyncio.sleep(0)
                return int(text)

            async def ask(self, other, text):
                return await other.parse.remote(text)

        @ray.remote
        def halve(n):
            if n % 2:
                raise ArithmeticError(f"{n} is odd")
            return n // 2
        """))
    k.run("parser = Parser.remote()")
    yield k
    k.shutdown()


def traceback_text(cell: Cell) -> str:
    assert cell.reply["status"] == "error", cell.outputs
    return ansi_free("\n".join(cell.error["traceback"]))


def frames(cell: Cell) -> list:
    """Each frame IPython drew (its header line, then its source lines), outermost first."""
    traceback_text(cell)
    return [ansi_free(entry) for entry in cell.error["traceback"]
            if ansi_free(entry).startswith(("Cell In[", "File "))]


def frames_of(text: str) -> list:
    """The frame headers ("Cell In[2], line 5, in Parser.parse(self, text)"), in order."""
    return [line for line in text.splitlines() if line.startswith(("Cell In[", "File "))]


def test_actor_error_shows_the_cell_line_then_the_method_with_its_source(kernel):
    """Cell In[N] of the get line, then Cell In[M], line K, in Parser.parse with context lines."""
    cell = kernel.run("ray.get(parser.parse.remote('x1'))", ok=False)
    text = traceback_text(cell)
    defined = _cell_number(kernel, "class Parser")
    assert frames_of(text) == [
        f"Cell In[{cell_number(kernel, cell)}], line 1",
        f"Cell In[{defined}], line 5, in Parser.parse(self, text)",
    ], text
    # The source lines around the failing line, with IPython's arrow, as for a local error.
    # (IPython 8 dedents the lines, IPython 9 does not: only the layout differs.)
    assert re.search(r"\n +4 +cleaned = text.strip\(\)\n----> 5 +return int\(cleaned\)\n", text), text
    assert text.rstrip().endswith("ValueError: invalid literal for int() with base 10: 'x1'")
    for runtime in RUNTIME_TRACES:
        assert runtime not in text, (runtime, text)


def test_the_remote_part_is_drawn_exactly_as_the_same_code_failing_locally(kernel):
    """The same class called in the cell and in an actor: the method's frame is drawn the same."""
    kernel.run(textwrap.dedent("""\
        class Plain:
            def parse(self, text):
                cleaned = text.strip()
                return int(cleaned)

        RemotePlain = ray.remote(Plain)
        """))
    local = frames(kernel.run("Plain().parse('oops')", ok=False))
    remote = frames(kernel.run("ray.get(RemotePlain.remote().parse.remote('oops'))", ok=False))
    assert remote[-1] == local[-1]
    assert remote[-1].startswith(f"Cell In[{_cell_number(kernel, 'class Plain')}], line 4, "
                                 f"in Plain.parse(self, text)\n")


def test_error_keeps_its_type_cause_and_remote_traceback(kernel):
    """isinstance of ValueError and RayTaskError, __cause__ and remote_traceback as before."""
    cell = kernel.run(textwrap.dedent("""\
        try:
            ray.get(parser.parse.remote('x2'))
        except Exception as exc:
            caught = exc
        print(type(caught).__name__, isinstance(caught, ValueError),
              isinstance(caught, ray.exceptions.RayTaskError))
        print(type(caught.__cause__).__name__, 'in parse' in str(caught.__cause__))
        print("return int(cleaned)" in caught.remote_traceback)
        """))
    assert cell.stdout.splitlines() == ["ValueError True True", "RemoteTraceback True", "True"]


def test_await_in_a_cell_and_an_async_method(kernel):
    """`await ref` of an async method: the await line, then the coroutine's frame."""
    cell = kernel.run("value = await parser.parse_later.remote('x3')", ok=False)
    text = traceback_text(cell)
    assert frames_of(text) == [
        f"Cell In[{cell_number(kernel, cell)}], line 1",
        f"Cell In[{_cell_number(kernel, 'class Parser')}], line 9, "
        f"in Parser.parse_later(self, text)",
    ], text
    for runtime in RUNTIME_TRACES:
        assert runtime not in text, (runtime, text)


def test_the_same_failed_ref_twice_shows_only_the_second_cell(kernel):
    """The shared error object does not carry the first cell's frames into the second."""
    first = kernel.run("failed = halve.remote(3)\nray.get(failed)", ok=False)
    second = kernel.run("ray.get(failed)", ok=False)
    text = traceback_text(second)
    assert frames_of(text) == [
        f"Cell In[{cell_number(kernel, second)}], line 1",
        f"Cell In[{_cell_number(kernel, 'def halve')}], line 17, in halve(n)",
    ], text
    assert f"In[{cell_number(kernel, first)}]" not in text


def test_error_inside_a_user_function_keeps_that_frame(kernel):
    """get inside a function of another cell: both local frames, then the remote one."""
    kernel.run("def halve_all(values):\n    return ray.get([halve.remote(v) for v in values])")
    cell = kernel.run("halve_all([2, 4, 5])", ok=False)
    text = traceback_text(cell)
    assert frames_of(text) == [
        f"Cell In[{cell_number(kernel, cell)}], line 1",
        f"Cell In[{_cell_number(kernel, 'def halve_all')}], line 2, in halve_all(values)",
        f"Cell In[{_cell_number(kernel, 'def halve')}], line 17, in halve(n)",
    ], text
    assert text.rstrip().endswith("ArithmeticError: 5 is odd")


def test_nested_call_continues_into_the_inner_actor(kernel):
    """An actor waiting on another actor's failed call: its frame, then the inner method's."""
    cell = kernel.run("inner = Parser.remote()\nray.get(parser.ask.remote(inner, 'x4'))",
                      ok=False)
    defined = _cell_number(kernel, "class Parser")
    assert frames_of(traceback_text(cell)) == [
        f"Cell In[{cell_number(kernel, cell)}], line 2",
        f"Cell In[{defined}], line 12, in Parser.ask(self, other, text)",
        f"Cell In[{defined}], line 5, in Parser.parse(self, text)",
    ], traceback_text(cell)


def test_remote_cell_class(kernel):
    """A %%remote cell's class: its lines are the cell's lines (line 1 is %%remote)."""
    kernel.run("%%remote\nclass Counter:\n    def bump(self, by):\n        return 1 + by\n")
    cell = kernel.run("ray.get(Counter.remote().bump.remote('one'))", ok=False)
    assert frames_of(traceback_text(cell))[-1] == (
        f"Cell In[{_cell_number(kernel, 'class Counter')}], line 4, in Counter.bump(self, by)")


def test_tb_and_debug_work_on_the_local_part(kernel):
    """%tb draws the same; %debug opens at the cell's get line, with the cell's variables."""
    failing = kernel.run("local_value = 41\nray.get(halve.remote(7))", ok=False)
    shown = traceback_text(failing)
    again = kernel.run("%tb")
    assert ansi_free("\n".join(again.error["traceback"])) == shown
    debug = _run_answering(kernel, "%debug", ["p local_value + 1", "q"])
    out = ansi_free(debug.stdout)
    assert "ipykernel_" in out.splitlines()[0] and "(2)<module>()" in out.splitlines()[0]
    assert "----> 2 ray.get(halve.remote(7))" in out
    assert "\n42\n" in out


def test_script_names_the_real_file_and_line(tmp_path):
    """In a script the remote frames name the script's file and line, with the source."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""\
        import jupyter_actors as ray

        @ray.remote
        def divide(a, b):
            return a / b

        ray.get(divide.remote(1, 0))
        """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=GUARD)
    assert out.returncode == 1
    assert f'File "{script}", line 5, in divide\n    return a / b' in out.stderr
    assert f'File "{script}", line 7, in <module>' in out.stderr
    assert out.stderr.rstrip().endswith("ZeroDivisionError: division by zero")


# -- helpers -------------------------------------------------------------------------------
def cell_number(kernel, cell: Cell) -> int:
    return cell.reply["execution_count"]


def _cell_number(kernel, text: str) -> int:
    """The execution count of the first cell whose code contains ``text``."""
    for cell in kernel.cells.values():
        if text in cell.code and cell.reply:
            return cell.reply["execution_count"]
    raise AssertionError(f"no cell with {text!r}")


def _run_answering(kernel, code: str, answers: list) -> Cell:
    """Run a cell that reads stdin (pdb), answering its prompts in order."""
    msg_id = kernel.client.execute(code, allow_stdin=True)
    cell = Cell(code, msg_id)
    kernel.cells[msg_id] = cell
    for answer in answers:
        kernel.client.get_stdin_msg(timeout=GUARD)
        kernel.client.input(answer)
    return kernel.wait_done(cell)


def test_a_chained_remote_error_keeps_the_remote_text(kernel):
    """`raise ... from` in the worker: the remote text (with its chain) stays above the frames."""
    kernel.run(textwrap.dedent("""\
        @ray.remote
        def lookup(text):
            try:
                return int(text)
            except ValueError as exc:
                raise KeyError(text) from exc
        """))
    text = traceback_text(kernel.run("ray.get(lookup.remote('z'))", ok=False))
    assert "RemoteTraceback" in text and "The above exception was the direct cause" in text
    assert frames_of(text)[-1] == (f"Cell In[{_cell_number(kernel, 'def lookup')}], line 6, "
                                   f"in lookup(text)")
