"""Printing what workers print, on the driver, as ``(ClassName pid=N) line``.

The runtime asks the router for a context when a call is submitted and hands
it back with every line the call prints. The plain router ignores the context
and writes to the driver's current sys.stdout / sys.stderr; the Jupyter
integration installs a router whose context is the cell that made the call.
"""
from __future__ import annotations

import sys


class OutputRouter:
    """Writes worker output to this process's stdout/stderr."""

    def capture(self):
        """Context of the code submitting a call right now (None: nothing to remember)."""
        return None

    def write(self, context, stream: str, prefix: str, text: str) -> None:
        out = sys.stdout if stream == "stdout" else sys.stderr
        if out is None:
            return
        out.write(format_lines(prefix, text, _isatty(out)))
        out.flush()


def format_lines(prefix: str, text: str, colour: bool) -> str:
    if colour:
        prefix = f"\x1b[36m{prefix}\x1b[0m"
    return "".join(f"{prefix} {line}\n" for line in text.splitlines())


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except Exception:
        return False
