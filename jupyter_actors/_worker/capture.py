"""A worker's sys.stdout and sys.stderr: complete lines go to the driver, tagged with their call."""
from __future__ import annotations

import contextvars
import io
import threading

from .._wire.messages import OutputLines, new

current_call: contextvars.ContextVar = contextvars.ContextVar("jupyter_actors_call", default=None)


class CapturedStream(io.TextIOBase):
    """Replaces sys.stdout / sys.stderr: complete lines go to the driver, tagged with their call."""

    def __init__(self, name: str, channel, original):
        self.name = name
        self._channel = channel
        self._original = original
        self._partial: dict = {}
        self._lock = threading.Lock()

    @property
    def encoding(self):
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._original.fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        call_id = current_call.get()
        with self._lock:
            pending = self._partial.pop(call_id, "") + text
            head, newline, tail = pending.rpartition("\n")
            if tail:
                self._partial[call_id] = tail
            if newline:
                self._channel.send(new(OutputLines, (call_id, self.name, head + "\n")))
        return len(text)

    def take_partial(self, call_id) -> str:
        """What a call wrote after its last newline (a prompt's text), taken back."""
        with self._lock:
            return self._partial.pop(call_id, "")

    def flush_call(self, call_id) -> None:
        """Send what is left of a call's last line, before the call's result."""
        if not self._partial:
            return  # nothing unfinished (most calls print nothing): no lock to take
        with self._lock:
            tail = self._partial.pop(call_id, None)
            if tail:
                self._channel.send(OutputLines(call_id, self.name, tail + "\n"))
