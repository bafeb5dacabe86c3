"""Interrupting cells that wait on actors, and restarting the kernel without orphans."""
from __future__ import annotations

import textwrap
import time

import psutil
import pytest

from tests.helpers import FileEvent, pid_gone
from tests.kernel_utils import Kernel, kernel_with_extension

pytestmark = pytest.mark.kernel

# The issue asks for 0.5 s; the assertion leaves room for a loaded machine and
# the measured number is printed (run with -s to see it).
INTERRUPT_BOUND = 2.0

GATE_ACTOR = textwrap.dedent("""\
    %%remote --max-concurrency 1
    class Gate:
        def __init__(self):
            self.counted = 0

        async def block(self, gate):
            print("blocking")
            await asyncio.to_thread(FileEvent(gate).wait, 60)
            return "released"

        async def count(self):
            self.counted += 1
            return self.counted

        async def counted_calls(self):
            return self.counted
    """)


@pytest.fixture(scope="module")
def kernel():
    k = kernel_with_extension()
    k.run(GATE_ACTOR)
    yield k
    k.shutdown()


def interrupt_when_blocked(kernel, cell) -> float:
    """Interrupt once the actor says the call started; seconds until the cell's error arrived."""
    kernel.pump_for_output(cell, "blocking")
    started = time.monotonic()
    kernel.interrupt()
    kernel.wait_done(cell)
    return cell.error_received() - started


def test_interrupting_get_raises_keyboard_interrupt_and_cancels_queued_calls(kernel, tmp_path):
    """Ctrl-C in get: KeyboardInterrupt at once; the cell's queued calls never run; actor lives."""
    gate = str(tmp_path / "gate")
    kernel.run("gate_actor = Gate.remote()")
    cell = kernel.submit(f"refs = [gate_actor.block.remote({gate!r})]\n"
                         f"refs += [gate_actor.count.remote() for _ in range(3)]\n"
                         f"ray.get(refs)")
    latency = interrupt_when_blocked(kernel, cell)
    print(f"\nget interrupted: KeyboardInterrupt {latency * 1000:.0f} ms after the interrupt")
    assert cell.error["ename"] == "KeyboardInterrupt"
    assert latency < INTERRUPT_BOUND
    # The queued calls were cancelled; the running one was left alone.
    after = kernel.run("states = []\n"
                       "for r in refs[1:]:\n"
                       "    try:\n"
                       "        ray.get(r, timeout=GUARD)\n"
                       "    except ray.exceptions.TaskCancelledError:\n"
                       "        states.append('cancelled')\n"
                       "print(states, refs[0].done())")
    assert after.stdout == "['cancelled', 'cancelled', 'cancelled'] False\n"
    FileEvent(gate).set()
    usable = kernel.run("print(ray.get(refs[0], timeout=GUARD),"
                        " ray.get(gate_actor.counted_calls.remote(), timeout=GUARD),"
                        " ray.get(gate_actor.count.remote(), timeout=GUARD))")
    assert usable.stdout == "released 0 1\n"


def test_interrupting_await_ends_the_cell_and_keeps_the_ref(kernel, tmp_path):
    """Ctrl-C in 'await ref' ends the cell promptly; the call runs on and its ref still works."""
    gate = str(tmp_path / "gate")
    kernel.run("await_actor = Gate.remote()")
    cell = kernel.submit(f"awaited = await_actor.block.remote({gate!r})\n"
                         f"queued = await_actor.count.remote()\n"
                         f"await awaited")
    latency = interrupt_when_blocked(kernel, cell)
    print(f"\nawait interrupted: {cell.error['ename']} {latency * 1000:.0f} ms after the interrupt")
    assert cell.error["ename"] in ("CancelledError", "KeyboardInterrupt")
    assert latency < INTERRUPT_BOUND
    FileEvent(gate).set()
    after = kernel.run("print(ray.get(awaited, timeout=GUARD))\n"
                       "try:\n"
                       "    ray.get(queued, timeout=GUARD)\n"
                       "except ray.exceptions.TaskCancelledError:\n"
                       "    print('queued call cancelled')\n"
                       "print(ray.get(await_actor.counted_calls.remote(), timeout=GUARD))")
    assert after.stdout == "released\nqueued call cancelled\n0\n"


def test_interrupting_asyncio_run_cancels_the_coroutine(kernel, tmp_path):
    """Ctrl-C in asyncio.run typed in a cell: KeyboardInterrupt, the coroutine is cancelled."""
    gate = str(tmp_path / "gate")
    kernel.run("run_actor = Gate.remote()\ncoroutine_saw = []")
    cell = kernel.submit(textwrap.dedent(f"""\
        async def wait_for_gate():
            try:
                await run_actor.block.remote({gate!r})
            except asyncio.CancelledError:
                coroutine_saw.append("cancelled")
                raise
        asyncio.run(wait_for_gate())
        """))
    latency = interrupt_when_blocked(kernel, cell)
    print(f"\nasyncio.run interrupted: {latency * 1000:.0f} ms after the interrupt")
    assert cell.error["ename"] == "KeyboardInterrupt"
    assert latency < INTERRUPT_BOUND
    FileEvent(gate).set()
    after = kernel.run("print(coroutine_saw)\n"
                       "print(ray.get(run_actor.count.remote(), timeout=GUARD))")
    assert after.stdout == "['cancelled']\n1\n"


def test_interrupt_leaves_other_cells_calls_alone(kernel, tmp_path):
    """Only the interrupted cell's queued calls are cancelled, not those of earlier cells."""
    gate = str(tmp_path / "gate")
    earlier = kernel.run(f"other_actor = Gate.remote()\n"
                         f"earlier_block = other_actor.block.remote({gate!r})\n"
                         f"earlier_count = other_actor.count.remote()")
    kernel.pump_for_output(earlier, "blocking")
    cell = kernel.submit("import sys\n"
                         "print('waiting', flush=True)\n"
                         "ray.get(earlier_count)")
    kernel.pump_for_output(cell, "waiting")
    kernel.interrupt()
    kernel.wait_done(cell)
    assert cell.error["ename"] == "KeyboardInterrupt"
    FileEvent(gate).set()
    after = kernel.run("print(ray.get(earlier_block, timeout=GUARD),"
                       " ray.get(earlier_count, timeout=GUARD))")
    assert after.stdout == "released 1\n"


def worker_pids(kernel) -> list:
    cell = kernel.run("import psutil\n"
                      "print(*[p.pid for p in psutil.Process().children(recursive=True)"
                      " if 'jupyter_actors._worker' in ' '.join(p.cmdline())])")
    return [int(p) for p in cell.stdout.split()]


@pytest.mark.parametrize("now", [False, True], ids=["graceful-restart", "killed-kernel"])
def test_restart_leaves_no_actor_process(now):
    """After a restart (graceful, or the kernel killed) no actor or idle worker survives."""
    k = Kernel()
    try:
        k.run("%load_ext jupyter_actors\nimport asyncio\nimport jupyter_actors as ray\n"
              "from tests.helpers import FileEvent, GUARD")
        k.run(GATE_ACTOR)
        k.run("actors = [Gate.remote() for _ in range(3)]\n"
              "ray.get([a.count.remote() for a in actors], timeout=GUARD)\n"
              "busy = actors[0].block.remote('/nonexistent/gate')")
        pids = worker_pids(k)
        assert len(pids) >= 3
        old_kernel = k.pid()
        k.restart(now=now)
        assert k.pid() != old_kernel
        survivors = [pid for pid in pids if not pid_gone(pid, timeout=10)]
        assert not survivors, [psutil.Process(p).cmdline() for p in survivors]
        assert k.run("print(1 + 1)").stdout == "2\n"
    finally:
        k.shutdown()
