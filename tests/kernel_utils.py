"""Drive a real ipykernel the way a notebook frontend does, and keep each cell's outputs apart.

Every IOPub message is filed under the ``msg_id`` of the request that caused it
(its parent header), so a test can ask what one cell showed, including output
that arrived after the cell finished, and check that nothing landed in another.
"""
from __future__ import annotations

import os
import queue
import re
import time
from dataclasses import dataclass, field

from jupyter_client import KernelManager

from tests.helpers import GUARD

OUTPUT_TYPES = {"stream", "execute_result", "display_data", "error", "update_display_data"}


@dataclass
class Cell:
    """One execute request: its code, the reply, and every output published for it."""

    code: str
    msg_id: str
    reply: dict | None = None
    outputs: list = field(default_factory=list)
    idle: bool = False

    @property
    def stdout(self) -> str:
        return "".join(o["content"]["text"] for o in self.outputs
                       if o["msg_type"] == "stream" and o["content"]["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(o["content"]["text"] for o in self.outputs
                       if o["msg_type"] == "stream" and o["content"]["name"] == "stderr")

    @property
    def error(self) -> dict | None:
        for o in self.outputs:
            if o["msg_type"] == "error":
                return o["content"]
        return None

    def error_received(self) -> float | None:
        """When the test received the cell's error output (time.monotonic())."""
        for o in self.outputs:
            if o["msg_type"] == "error":
                return o["received"]
        return None

    @property
    def result(self) -> dict | None:
        """The data of the cell's execute_result, or None."""
        for o in self.outputs:
            if o["msg_type"] == "execute_result":
                return o["content"]["data"]
        return None

    def displays(self) -> list:
        return [o["content"]["data"] for o in self.outputs if o["msg_type"] == "display_data"]

    def check_ok(self) -> "Cell":
        """Raise with the kernel's traceback if the cell failed."""
        if self.reply is None or self.reply["status"] != "ok":
            error = self.error or (self.reply or {})
            tb = "\n".join(error.get("traceback", []))
            raise AssertionError(f"cell failed: {error.get('ename')}: {error.get('evalue')}\n"
                                 f"{tb}\n--- code ---\n{self.code}")
        return self


class Kernel:
    """A started ipykernel plus a client; ``run`` executes a cell and waits for it."""

    def __init__(self, cwd: str | None = None, extra_env: dict | None = None):
        env = dict(os.environ)
        env.pop("PYTEST_CURRENT_TEST", None)
        # The kernel imports this checkout's package and the tests' helpers.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        env.update(extra_env or {})
        self.manager = KernelManager(kernel_name="python3")
        # An explicit interpreter lets a run test another ipykernel version.
        python = os.environ.get("JUPYTER_ACTORS_TEST_KERNEL_PYTHON")
        if python:
            self.manager.kernel_cmd = [python, "-m", "ipykernel_launcher", "-f",
                                       "{connection_file}"]
        self.manager.start_kernel(env=env, cwd=cwd or root)
        self.cells: dict = {}
        self.stray: list = []        # IOPub messages with no known parent
        self._connect()

    def _connect(self) -> None:
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    # -- executing ------------------------------------------------------------
    def submit(self, code: str) -> Cell:
        """Send an execute request without waiting (cells queue as in 'Run All')."""
        msg_id = self.client.execute(code, store_history=True)
        cell = Cell(code, msg_id)
        self.cells[msg_id] = cell
        return cell

    def run(self, code: str, timeout: float = GUARD, ok: bool = True) -> Cell:
        """Execute a cell and wait until it is idle and replied."""
        cell = self.submit(code)
        self.wait_done(cell, timeout)
        return cell.check_ok() if ok else cell

    def wait_done(self, cell: Cell, timeout: float = GUARD) -> Cell:
        self.pump_until(lambda: cell.idle, timeout, f"cell to finish:\n{cell.code}")
        deadline = time.monotonic() + timeout
        while cell.reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no execute_reply for:\n{cell.code}")
            reply = self.client.get_shell_msg(timeout=remaining)
            target = self.cells.get(reply["parent_header"].get("msg_id"))
            if target is not None:
                target.reply = reply["content"]
        return cell

    def pump_until(self, predicate, timeout: float = GUARD, what: str = "a condition") -> None:
        """Read IOPub messages, filing each under its cell, until ``predicate()`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            try:
                msg = self.client.get_iopub_msg(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            self._file(msg)

    def pump_for_output(self, cell: Cell, text: str, timeout: float = GUARD) -> None:
        """Wait until ``text`` has appeared in the cell's stdout or stderr."""
        self.pump_until(lambda: text in cell.stdout or text in cell.stderr, timeout,
                        f"{text!r} in the output of:\n{cell.code}")

    def _file(self, msg: dict) -> None:
        msg["received"] = time.monotonic()  # when the test saw it, for latency checks
        cell = self.cells.get(msg["parent_header"].get("msg_id"))
        if cell is None:
            self.stray.append(msg)
            return
        kind = msg["msg_type"]
        if kind in OUTPUT_TYPES:
            cell.outputs.append(msg)
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            cell.idle = True

    # -- lifecycle ---------------------------------------------------------------
    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def restart(self, now: bool = False) -> None:
        self.client.stop_channels()
        self.manager.restart_kernel(now=now)
        self.cells.clear()
        self._connect()

    def pid(self) -> int:
        return self.manager.provisioner.process.pid

    def shutdown(self) -> None:
        try:
            self.client.stop_channels()
        finally:
            self.manager.shutdown_kernel(now=False)


def ansi_free(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# What every kernel test module runs first.
PRELUDE = ("%load_ext jupyter_actors\n"
           "import asyncio, sys\n"
           "import jupyter_actors as ray\n"
           "from tests.helpers import FileEvent, GUARD")


def kernel_with_extension(*cells: str) -> Kernel:
    """A new kernel with the extension loaded and ``cells`` run in it."""
    kernel = Kernel()
    for cell in (PRELUDE,) + cells:
        kernel.run(cell)
    return kernel
