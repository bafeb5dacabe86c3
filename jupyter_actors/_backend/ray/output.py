"""Output in a Ray worker: tagged for Ray's log stream, its recent lines carried by results.

    print() in a call ─▶ TaggingStream ─▶ "<RS>ja:ROUTE PROCESS SEQ<RS>text" on the worker's
                          │              stdout / stderr (Ray streams it to the driver: logs.py)
                          └─▶ the process's recent lines (at most TAIL_LIMIT characters)
    a call that printed returns ─▶ with_output(result): unpickles as ``result`` itself, after
                         handing the recent lines to the driver's LogRouter (``sink``), which
                         writes those it has not written yet, each to the cell of its route

Ray's log monitor polls the workers' log files, so a call's last lines often reach
the driver after its result. Carried with the result, they are in the cell before
``get()`` returns; the copies that follow through the log stream are dropped by
their numbers. The numbers count every line of the process, and a result carries
the lines of other calls printed since its call's first line (and in the last
RECENT seconds) too, so concurrent calls' lines keep the order they were printed
in. Only calls the driver made, with one return value, carry lines: a value
fetched elsewhere (another worker) unpickles the same and carries nothing there.
"""
from __future__ import annotations

import collections
import contextvars
import io
import os
import threading
import time

TAG = "\x1e"                 # a record separator: never in ordinary text
LINE_MARK = TAG + "ja:"      # an output line: LINE_MARK "ROUTE PROCESS SEQ" TAG text
TAIL_LIMIT = 256 * 1024      # characters of recent lines a process keeps for results to carry
RECENT = 2.0                 # seconds: lines this recent ride along whichever call printed them
STDOUT, STDERR = 0, 1
PROCESS = os.urandom(6).hex()   # this process (a pid can come back in a later process)

# The call running in this thread or asyncio task (None: not in a call).
current_call: contextvars.ContextVar = contextvars.ContextVar("jupyter_actors_call",
                                                              default=None)
_lock = threading.Lock()     # numbering and keeping lines, for both streams
_recent: collections.deque = collections.deque()   # (seq, stream, route, text, name, when)
_kept = 0                    # characters in _recent
_next_seq = 0
sink = None                  # the driver's LogRouter.carried; None in workers


class CallOutput:
    """One call's side of the output: its route (whose cell gets it), its first line."""

    __slots__ = ("route", "call_id", "carries", "name", "first", "partial", "token")

    def __init__(self, route, call_id, carries: bool, name=None):
        self.route = route
        self.call_id = call_id
        self.carries = carries     # its result carries the recent lines
        self.name = name           # the actor's class or the function, as Ray names it
        self.first = None          # the number of its first line, once it prints
        self.partial = None        # text after the last newline, per stream, once it prints
        self.token = None          # current_call's token while the call runs

    def tagged(self, stream: int, lines: list) -> str:
        """``lines`` as the log stream carries them, numbered and kept (under _lock)."""
        global _next_seq, _kept
        seq = _next_seq
        _next_seq = seq + len(lines)
        if self.first is None:
            self.first = seq
        head = f"{LINE_MARK}{self.route} {PROCESS} "
        now = time.monotonic()
        for i, line in enumerate(lines):
            _recent.append((seq + i, stream, self.route, line, self.name, now))
            _kept += len(line) + 1
        while _kept > TAIL_LIMIT and len(_recent) > 1:
            _kept -= len(_recent.popleft()[3]) + 1
        return "".join([f"{head}{seq + i}{TAG}{line}\n" for i, line in enumerate(lines)])


class TaggingStream(io.TextIOBase):
    """sys.stdout / sys.stderr of a Ray worker: lines printed inside a call carry its tags."""

    def __init__(self, raw, stream: int):
        self.raw = raw
        self.stream = stream

    def write(self, text: str) -> int:
        call = current_call.get()
        if call is None:
            return self.raw.write(text)
        with _lock:
            partial = call.partial
            if partial is None:
                partial = call.partial = ["", ""]
            *lines, rest = (partial[self.stream] + text).split("\n")
            partial[self.stream] = rest
            if lines:
                self.raw.write(call.tagged(self.stream, lines))
                self.raw.flush()
        return len(text)

    def end_call(self, call: CallOutput) -> None:
        """The call ended: a last line without a newline goes out too."""
        if call.partial is not None and call.partial[self.stream]:
            with _lock:
                rest, call.partial[self.stream] = call.partial[self.stream], ""
                if rest:
                    self.raw.write(call.tagged(self.stream, [rest]))
                    self.raw.flush()

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.raw.fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self):
        return getattr(self.raw, "encoding", "utf-8")


def carried(call: CallOutput):
    """What a result of ``call`` carries: (process, pid, lines), or None."""
    if not call.carries or call.first is None:
        return None
    with _lock:
        cutoff = time.monotonic() - RECENT
        first = call.first
        lines = []
        for line in reversed(_recent):   # newest first: numbers and times only go up
            if line[0] < first and line[5] < cutoff:
                break
            lines.append(line[:5])
    lines.reverse()
    return (PROCESS, os.getpid(), lines) if lines else None


class _WithOutput:
    """A call's result and its output's tail; unpickles as the result alone."""

    __slots__ = ("value", "output")

    def __init__(self, value, output):
        self.value = value
        self.output = output

    def __reduce__(self):
        return (returned, (self.value, self.output))


def with_output(result, call: CallOutput):
    output = carried(call)
    return result if output is None else _WithOutput(result, output)


def mark_error(error: BaseException, call: CallOutput) -> None:
    """Attach the tail to a raised exception: Ray pickles it, with its attributes, as the
    cause of the error the driver gets (refs.py hands it on)."""
    output = carried(call)
    if output is not None:
        try:
            error._jupyter_actors_output = output
        except Exception:
            pass   # an exception type without attributes: its lines come by the log stream


def returned(value, output):
    """Unpickling a result that carries output: hand the output on (in the driver), then the
    value is the result."""
    deliver(output)
    return value


def deliver(output) -> None:
    target = sink
    if target is not None and output is not None:
        try:
            target(output)
        except Exception:
            pass   # output must never cost the caller its result
