"""``breakpoint()``, ``pdb.set_trace()`` and ``input()`` in a worker: the user answers on the driver.

    a call in this worker                          the driver (_backend/local/prompts)
    ─────────────────────                          ───────────────────────────────────
    breakpoint() / input() → PromptOpen      ──▶   waits for this call's turn (one prompt
      (the call's thread blocks)             ◀──   session at a time): can anyone answer?
    each line pdb or input() reads           ──▶   the calling cell's input box, or the
      → PromptLine                           ◀──   driver's terminal: the line typed
    pdb continues, quits, or the call ends   ──▶   PromptClose: the next session's turn

The call's thread stays blocked meanwhile, so the actor's other calls wait as
they would behind any running call. pdb writes to ``sys.stdout`` like any
print, so its lines are tagged with the call and land in the calling cell.
When nobody can answer (nbconvert, nbval, a script without a terminal),
``breakpoint()`` returns at once, as with ``PYTHONBREAKPOINT=0`` (the driver
says so once), and ``input()`` raises ``EOFError``.
"""
from __future__ import annotations

import builtins
import io
import os
import sys
import threading

from .._wire.messages import PromptClose, PromptLine, PromptOpen
from .bars import patch_on_import
from .capture import current_call

# pdb never stops in these: stepping past the end of a method must not land in
# the worker's machinery (or asyncio's), but in the user's next line, if any.
RUNTIME_MODULES = ("jupyter_actors", "jupyter_actors.*", "asyncio", "asyncio.*",
                   "concurrent.*", "threading", "contextvars", "selectors")


installed = None  # the worker's Prompts, once installed (util.pdb finds it here)


class Prompts:
    """The calls of this worker that hold the driver's prompt, and how they ask."""

    def __init__(self, worker):
        self.worker = worker
        self.open_calls: set = set()   # read on every call's end (Worker.finish): keep it cheap
        self.lock = threading.Lock()

    def install(self) -> None:
        global installed
        installed = self
        sys.breakpointhook = self.breakpoint
        builtins.input = self.input
        sys.stdin = PromptStdin(self)
        # pdb.set_trace() builds a WorkerPdb; getpass asks like input(). Both are
        # patched when first imported: most workers never load them.
        patch_on_import({"pdb": _patch_pdb, "getpass": _patch_getpass})

    # -- the session -----------------------------------------------------------------
    def open(self, call_id, kind: str) -> bool:
        """Wait for this call's turn at the prompt; False when nobody can answer."""
        if call_id in self.open_calls:
            return True
        granted = self.worker.client.request(
            None, message=lambda request_id: PromptOpen(request_id, call_id, kind))
        if granted:
            with self.lock:
                self.open_calls.add(call_id)
        return granted

    def close(self, call_id) -> None:
        with self.lock:
            if call_id not in self.open_calls:
                return
            self.open_calls.discard(call_id)
        self.worker.channel.send(PromptClose(call_id))

    def ask(self, call_id, prompt: str, password: bool = False) -> str:
        """One line from the user (without its newline); the call must hold the prompt."""
        worker = self.worker
        # What the call printed without a newline yet belongs in front of the prompt,
        # and its earlier lines before it.
        prompt = worker.stdout.take_partial(call_id) + prompt
        worker.stderr.flush_call(call_id)
        return worker.client.request(
            None, message=lambda request_id: PromptLine(request_id, call_id, prompt, password))

    # -- what user code calls ------------------------------------------------------------
    def breakpoint(self, *args, **kwargs):
        self.debug(sys._getframe(1))

    def debug(self, frame) -> None:
        """Stop in ``frame`` under pdb, if someone can answer."""
        if os.environ.get("PYTHONBREAKPOINT") == "0":
            return
        if not self.open(current_call.get(), "debugger"):
            return  # nobody can answer: go on, as PYTHONBREAKPOINT=0 would
        import pdb  # noqa: F401  (its import defines WorkerPdb)
        WorkerPdb().set_trace(frame)

    def input(self, prompt: object = "", password: bool = False) -> str:
        call_id = current_call.get()
        held = call_id in self.open_calls   # inside a debugger session already
        if not held and not self.open(call_id, "input"):
            raise EOFError("input(): nobody can answer here (no terminal, or a notebook run "
                           "without input such as nbconvert or nbval)")
        try:
            return self.ask(call_id, str(prompt), password)
        finally:
            if not held:
                self.close(call_id)

    def getpass(self, prompt: str = "Password: ", stream=None, **_ignored) -> str:
        return self.input(prompt, password=True)


class PromptStdin(io.TextIOBase):
    """``sys.stdin`` of a worker: each line read is asked of the user."""

    def __init__(self, prompts: Prompts):
        self._prompts = prompts

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def readline(self, size: int = -1) -> str:
        try:
            return self._prompts.input("") + "\n"
        except EOFError:
            return ""

    def read(self, size: int = -1) -> str:
        return self.readline()


WorkerPdb = None  # pdb.Pdb's subclass below, once pdb is imported


def _patch_getpass(module) -> None:
    module.getpass = installed.getpass


def _patch_pdb(module) -> None:
    global WorkerPdb

    class WorkerPdb(module.Pdb):
        """pdb, asking through the driver; the prompt is freed when it lets the call go on."""

        prompts: Prompts | None = installed

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("skip", RUNTIME_MODULES)
            super().__init__(*args, **kwargs)
            self._call_id = current_call.get()

        def interaction(self, frame, traceback):
            # Each stop asks for the prompt first: after "c" another session may have it.
            prompts = self.prompts
            if prompts is not None and not prompts.open(self._call_id, "debugger"):
                self.set_continue()
                return
            super().interaction(frame, traceback)

        def set_continue(self):
            super().set_continue()
            self._let_go()

        def set_quit(self):
            super().set_quit()
            self._let_go()

        def _let_go(self) -> None:
            # Breakpoints set with "b" may stop again: the next line read opens anew.
            if self.prompts is not None:
                self.prompts.close(self._call_id)

    module.Pdb = WorkerPdb  # pdb.set_trace() builds one of these
