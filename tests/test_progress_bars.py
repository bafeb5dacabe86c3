"""tqdm inside actors and tasks: one bar per call, drawn in the calling cell (or on stderr)."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import GUARD, FileEvent
from tests.kernel_utils import kernel_with_extension

pytestmark = pytest.mark.kernel

DISPLAYS = ("display_data", "update_display_data")


@pytest.fixture(scope="module")
def kernel():
    k = kernel_with_extension()
    k.run(textwrap.dedent("""\
        import time
        from tqdm.auto import tqdm
        from jupyter_actors.experimental.tqdm_ray import tqdm as ray_tqdm

        @ray.remote
        class Stepper:
            async def steps(self, name, n, started, gate):
                bar = tqdm(total=n, desc=name)
                bar.update(1)
                FileEvent(started).set()
                await asyncio.to_thread(FileEvent(gate).wait, GUARD)
                bar.update(n - 1)
                bar.close()
                return n

            async def fail_at(self, k, n):
                for i in tqdm(range(n), desc="failing"):
                    if i == k:
                        raise ValueError(f"stopped at {i}")

            async def chatty(self, n):
                for i in tqdm(range(n), desc="chatty"):
                    print(f"line {i}")
                return n

            async def many(self, n):
                t = time.monotonic()
                bar = tqdm(total=n, desc="many")
                for _ in range(n):
                    bar.update()
                bar.close()
                return time.monotonic() - t

        @ray.remote
        def summed(n):
            total = 0
            for i in ray_tqdm(range(n), desc="ray api"):
                total += i
            return total

        stepper = Stepper.remote()
        """))
    yield k
    k.shutdown()


def bars(cell) -> dict:
    """display id -> the bar's messages in order: (msg_type, text/plain, text/html)."""
    found: dict = {}
    for o in cell.outputs:
        if o["msg_type"] in DISPLAYS:
            content = o["content"]
            display_id = content.get("transient", {}).get("display_id")
            found.setdefault(display_id, []).append(
                (o["msg_type"], content["data"]["text/plain"], content["data"]["text/html"]))
    return found


def no_stray_displays(kernel) -> None:
    stray = [m for m in kernel.stray if m["msg_type"] in DISPLAYS + ("stream", "comm_open")]
    assert not stray, stray


def test_one_bar_drawn_in_the_calling_cell_and_updated_in_place(kernel):
    """One display, then updates of that display (never a new line), ending at 100%."""
    cell = kernel.run("ray.get(stepper.many.remote(20_000))")
    found = bars(cell)
    assert len(found) == 1, found
    (display_id, messages), = found.items()
    assert display_id
    assert messages[0][0] == "display_data"
    assert all(kind == "update_display_data" for kind, _, _ in messages[1:])
    kind, text, page = messages[-1]
    assert re.match(r"\(Stepper pid=\d+\) many: 100%\|█+\| 20000/20000 \[", text), text
    assert "#3c9a3c" in page  # drawn as done
    assert "many" not in cell.stdout + cell.stderr  # the bar is not printed as lines
    no_stray_displays(kernel)


def test_concurrent_calls_get_a_bar_each(kernel, tmp_path):
    """Two calls running at once on one actor: two bars in the cell, each closed at its end."""
    events = {name: (str(tmp_path / f"{name}-started"), str(tmp_path / f"{name}-gate"))
              for name in ("first", "second")}
    cell = kernel.run(textwrap.dedent(f"""\
        events = {events!r}
        refs = [stepper.steps.remote(name, 4, started, gate)
                for name, (started, gate) in events.items()]
        for started, gate in events.values():
            assert FileEvent(started).wait(GUARD)   # both bars are open now
        for started, gate in events.values():
            FileEvent(gate).set()
        ray.get(refs)
        """))
    found = bars(cell)
    assert len(found) == 2, found
    finals = sorted(messages[-1][1] for messages in found.values())
    assert [re.sub(r"^\(Stepper pid=\d+\) ", "", t).split(":")[0] for t in finals] == [
        "first", "second"]
    assert all("100%" in t and "4/4" in t for t in finals), finals
    for messages in found.values():
        assert messages[0][0] == "display_data" and "0/4" in messages[0][1]  # drawn at once


def test_a_failed_call_closes_its_bar_where_it_stopped(kernel):
    """The call raises mid-loop: the bar ends at 3/10, drawn as stopped short (red)."""
    cell = kernel.run("ray.get(stepper.fail_at.remote(3, 10))", ok=False)
    assert cell.error["ename"] == "ValueError"
    (messages,) = bars(cell).values()
    kind, text, page = messages[-1]
    assert "failing:  30%" in text and "3/10" in text, text
    assert "#d9534f" in page


def test_print_lines_and_the_bar_stay_apart(kernel):
    """Lines printed between updates arrive whole, in order; the bar is its own display."""
    cell = kernel.run("ray.get(stepper.chatty.remote(5))")
    lines = [re.sub(r"^\(Stepper pid=\d+\) ", "", line) for line in cell.stdout.splitlines()]
    assert lines == [f"line {i}" for i in range(5)]
    (messages,) = bars(cell).values()
    assert "5/5" in messages[-1][1]


def test_a_million_updates_send_at_most_ten_states_a_second(kernel):
    """update() a million times: the cell gets a handful of states, not a flood."""
    cell = kernel.run("elapsed = ray.get(stepper.many.remote(1_000_000))\nprint(elapsed)")
    elapsed = float(cell.stdout.split()[-1])
    (messages,) = bars(cell).values()
    # The first state, one per 0.1 s at most, and the last.
    assert len(messages) <= 10 * elapsed + 3, (len(messages), elapsed)
    assert "1000000/1000000" in messages[-1][1]


def test_a_late_bar_stays_with_the_cell_that_made_the_call(kernel, tmp_path):
    """Updates after the cell finished go to that cell, never to the one running now."""
    started, gate = str(tmp_path / "started"), str(tmp_path / "gate")
    first = kernel.run(f"late = stepper.steps.remote('late', 5, {started!r}, {gate!r})\n"
                       f"assert FileEvent({started!r}).wait(GUARD)")
    second = kernel.run(f"FileEvent({gate!r}).set()\nray.get(late)")
    kernel.pump_until(lambda: any("5/5" in m[-1][1] for m in bars(first).values()),
                      what="the late bar's last state in the first cell")
    assert not bars(second)
    assert second.result["text/plain"] == "5"
    no_stray_displays(kernel)


def test_ray_tqdm_api_in_a_task(kernel):
    """jupyter_actors.experimental.tqdm_ray.tqdm (Ray's API) in a task draws in the cell."""
    cell = kernel.run("ray.get(summed.remote(100))")
    assert cell.result["text/plain"] == "4950"
    (messages,) = bars(cell).values()
    assert re.match(r"\(summed pid=\d+\) ray api: 100%.*100/100", messages[-1][1])


# -- scripts --------------------------------------------------------------------------------
def run_script(tmp_path, code: str) -> subprocess.CompletedProcess:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=GUARD)


def test_script_draws_the_bar_on_stderr_and_keeps_print_lines_whole(tmp_path):
    """In a script: the bar on the driver's stderr, ending at 20/20; printed lines intact."""
    out = run_script(tmp_path, """\
        import sys
        import jupyter_actors as ray
        from tqdm.auto import tqdm

        @ray.remote
        class Worker:
            def work(self, n):
                for i in tqdm(range(n), desc="steps"):
                    if i % 5 == 0:
                        print(f"line {i}")
                return n

        sys.stderr = sys.stdout   # one stream, as on a terminal
        print(ray.get(Worker.remote().work.remote(20)))
        """)
    assert out.returncode == 0, out.stderr
    pieces = re.split(r"[\r\n]", out.stdout)
    for i in (0, 5, 10, 15):
        assert any(re.fullmatch(rf"\(Worker pid=\d+\) line {i}", p) for p in pieces), out.stdout
    assert re.search(r"\(Worker pid=\d+\) steps: 100%\|█+\| 20/20 \[", out.stdout), out.stdout
    assert pieces[-2:] == ["20", ""] or "20\n" in out.stdout


def test_script_ray_tqdm_through_use_as_ray(tmp_path):
    """`import ray; from ray.experimental.tqdm_ray import tqdm` after use_as_ray() works."""
    out = run_script(tmp_path, """\
        import jupyter_actors
        jupyter_actors.use_as_ray(quiet=True)
        import ray
        from ray.experimental.tqdm_ray import tqdm

        @ray.remote
        def count(n):
            bar = tqdm(total=n, desc="counting")
            for _ in range(n):
                bar.update(1)
            bar.close()
            return n

        print(ray.get(count.remote(10)))
        """)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "10\n"
    assert re.search(r"\(count pid=\d+\) counting: 100%\|█+\| 10/10 \[", out.stderr), out.stderr
