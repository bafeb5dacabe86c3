"""Printing what workers print, on the driver, as ``(ClassName pid=N) line``; asking their
prompts; drawing their progress bars.

The runtime asks the router for a context when a call is submitted and hands
it back with every line the call prints. The plain router ignores the context
and writes to the driver's current sys.stdout / sys.stderr; the Jupyter
integration installs a router whose context is the cell that made the call.
"""
from __future__ import annotations

import sys

from . import _prompting, _terminal_bars


class OutputRouter:
    """Writes worker output to this process's stdout/stderr."""

    def capture(self):
        """Context of the code submitting a call right now (None: nothing to remember)."""
        return None

    def write(self, context, stream: str, prefix: str, text: str) -> None:
        out = sys.stdout if stream == "stdout" else sys.stderr
        if out is None:
            return
        with _terminal_bars.writing_around_bars(out):
            out.write(format_lines(prefix, text, _isatty(out)))
            out.flush()

    # A call's tqdm bars (in a worker) are drawn where its output goes.
    def open_bar(self, context, prefix: str):
        """A view with ``update(state, closed)`` for one bar of a call, or None."""
        if sys.stderr is None:
            return None
        return _terminal_bars.TerminalBar(prefix)

    # Workers' breakpoint() and input() are answered where their output goes.
    def can_ask(self, context) -> bool:
        """Whether someone can answer a prompt of the call with this context."""
        return _prompting.terminal_available()

    def ask(self, context, prompt: str, password: bool = False, cancel=None) -> str:
        """One line from the user (blocks; ends with ``_prompting.Interrupted`` on an
        interrupt, or once the ``cancel`` event is set)."""
        return _prompting.ask_terminal(prompt, password, cancel)

    def why_nobody_answers(self) -> str:
        """Said once when a breakpoint is skipped because ``can_ask`` is False."""
        if _prompting.in_kernel_without_extension():
            return ("a notebook kernel without the extension: `%load_ext jupyter_actors` "
                    "lets the calling cell answer")
        return ("a notebook run without input, such as nbconvert or nbval, or a script "
                "without a terminal")

    def abort_prompts(self, reason: str = "the cell was interrupted") -> None:
        """End every ask under way (the user interrupted, or the runtime stops)."""
        _prompting.abort_all(reason)


def format_lines(prefix: str, text: str, colour: bool) -> str:
    if colour:
        prefix = f"\x1b[36m{prefix}\x1b[0m"
    return "".join(f"{prefix} {line}\n" for line in text.splitlines())


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except Exception:
        return False
