"""Asking the user for a line on the driver's terminal, in a way an interrupt can end.

Workers' ``breakpoint()`` and ``input()`` are answered here when the driver is
a script or terminal IPython (the Jupyter layer asks through the kernel
instead). A line is read from the terminal's file descriptor with a short
poll, so that an interrupt or the end of the runtime (``abort_all``) ends the
wait; nothing is asked when stdin is not a terminal.
"""
from __future__ import annotations

import os
import select
import sys
import threading

_lock = threading.Lock()
_generation = 0          # bumped by abort_all(): every ask started before it ends
_leftover = b""          # what was typed after the line last returned
_reason = ""             # why the last abort_all() ended the asks


class Interrupted(KeyboardInterrupt):
    """The wait for the user's answer was ended (an interrupt, or the runtime stopping)."""


def abort_all(reason: str = "the cell was interrupted") -> None:
    global _generation, _reason
    with _lock:
        _generation += 1
        _reason = reason


def start(cancel: threading.Event | None = None) -> tuple:
    """A token for one ask; ``check(token)`` raises once ``abort_all`` was called since,
    or once ``cancel`` is set (the worker that asked is gone)."""
    return _generation, cancel


def check(token: tuple) -> None:
    generation, cancel = token
    if _generation != generation:
        raise Interrupted(_reason)
    if cancel is not None and cancel.is_set():
        raise Interrupted("the worker that asked has ended")


def terminal_available() -> bool:
    stdin = sys.stdin
    try:
        return stdin is not None and not stdin.closed and stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def in_kernel_without_extension() -> bool:
    """A Jupyter kernel runs this process, but nothing routes prompts to its cells."""
    kernel_module = sys.modules.get("ipykernel.kernelbase")
    if kernel_module is None:
        return False
    try:
        from IPython import get_ipython
        return getattr(get_ipython(), "kernel", None) is not None
    except Exception:
        return False


def ask_terminal(prompt: str, password: bool = False, cancel=None) -> str:
    """Write the prompt to stdout and read one line from stdin (a terminal)."""
    global _leftover
    token = start(cancel)
    out = sys.stdout
    out.write(prompt)
    out.flush()
    fd = sys.stdin.fileno()
    echo = _echo_off(fd) if password else None
    try:
        buffer = _leftover
        while b"\n" not in buffer:
            check(token)
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    if buffer:
                        break
                    raise EOFError("end of input on the terminal")
                buffer += chunk
    finally:
        if echo is not None:
            _restore(fd, echo)
    line, _, _leftover = buffer.partition(b"\n")
    if password:
        out.write("\n")
    return line.decode(errors="replace").rstrip("\r")


def _echo_off(fd: int):
    try:
        import termios
        old = termios.tcgetattr(fd)
        new = list(old)
        new[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSADRAIN, new)
        return old
    except Exception:
        return None


def _restore(fd: int, old) -> None:
    import termios
    termios.tcsetattr(fd, termios.TCSADRAIN, old)
