"""Ray's log stream on the driver: each call's lines to its cell, trace events to the trace.

    Ray's log monitor ─▶ driver's "ray_print_logs" thread ─▶ LogRouter.handle(batch)
        "<RS>ja:ROUTE PROCESS SEQ<RS>text" → the output router, with the context of call ROUTE
        "<RS>jt:[pid, origin, events]"  → the call records: started / finished / slot / pid;
                                          tqdm bar states → drawn in the call's cell (bars.py)
        anything else                   → Ray's own printer, unchanged
    a result carrying its process's recent lines (output.py) ─▶ LogRouter.carried, in the
        thread that unpickles it (get(), or Ray's callback): the lines not written yet, now

Ray prints worker output in whichever cell runs when it arrives (Ray issues
#3692, #45262); routing by the call's route keeps it in the cell that made the
call, also after that cell finished. The lines a result carries are in the cell
before ``get()`` returns; whichever copy of a line comes second (carried, or by
the stream) is dropped, by its process and number.
"""
from __future__ import annotations

import collections
import json
import threading
import time

from . import output
from .bars import BAR, RayBars
from .host import EVENTS_MARK
from .nested import NESTED_EVENTS, NestedCalls
from .records import report_event
from .output import LINE_MARK, TAG

_HANDLER = "ray_print_logs"
REMEMBERED_PROCESSES = 4096   # worker processes whose written line numbers are kept
CATCH_UP_WAIT = 0.5       # seconds carried lines wait for the stream to bring the ones before
BOTH = ("sf", "sx")       # trace events with a start and a finish time


class LogRouter:
    """Replaces Ray's printer of worker output for as long as the backend runs."""

    def __init__(self, backend):
        from ray._private.ray_logging import global_worker_stdstream_dispatcher
        self.backend = backend
        self.dispatcher = global_worker_stdstream_dispatcher
        # time.time() in a worker minus this is the driver's time.monotonic().
        self.offset = time.time() - time.monotonic()
        self.nested = NestedCalls(backend)
        self.bars = RayBars(backend)
        self.ray_printer = next((h for n, h in self.dispatcher.handlers if n == _HANDLER), None)
        # worker process -> the numbers of its lines written so far
        self.written: collections.OrderedDict = collections.OrderedDict()
        self.writing = threading.Condition()   # one writer at a time: lines stay in order
        self.cut: dict = {}   # (pid, is_err) -> the start of a trace-event line read half-written
        if self.ray_printer is not None:
            self.dispatcher.remove_handler(_HANDLER)
            self.dispatcher.add_handler(_HANDLER, self.handle)
            output.sink = self.carried

    def close(self) -> None:
        if output.sink == self.carried:
            output.sink = None
        if self.ray_printer is not None:
            self.dispatcher.remove_handler(_HANDLER)
            self.dispatcher.add_handler(_HANDLER, _Untagged(self.ray_printer))
            self.ray_printer = None

    def handle(self, data: dict) -> None:
        lines = data.get("lines") or ()
        plain: list = []
        routed: list = []     # (route, process, number, text), in order
        source = (data.get("pid"), data.get("is_err"))
        for line in lines:
            cut = self.cut.pop(source, None)
            if cut is not None and not line.startswith(TAG):
                line = cut + line
            if line.startswith(EVENTS_MARK) and not line.rstrip("\r\n").endswith(TAG):
                # Ray's log monitor read the line while it was being written: the rest
                # comes as the next line from the same worker.
                self.cut[source] = line
                continue
            if line.startswith(LINE_MARK):
                head, _, text = line[len(LINE_MARK):].partition(TAG)
                route, process, seq = (head.split(" ") + [None, None])[:3]
                routed.append((_int(route), process, _int(seq), text))
            elif line.startswith(EVENTS_MARK):
                self._events(line[len(EVENTS_MARK):].rstrip().rstrip(TAG))
            else:
                plain.append(line)
        if routed:
            name = data.get("actor_name") or data.get("task_name")
            with self.writing:
                fresh = [(route, text) for route, process, seq, text in routed
                         if self._first_time(process, seq)]
                self._write("stderr" if data.get("is_err") else "stdout", name,
                            data.get("pid"), fresh)
                self.writing.notify_all()
        if plain and self.ray_printer is not None:
            self.ray_printer(dict(data, lines=plain))

    def carried(self, carried: tuple) -> None:
        """A worker's recent lines, carried by a result (output.py): those not written yet
        are written now, in the order they were printed."""
        process, pid, lines = carried
        first = lines[0][0]
        with self.writing:
            seen = self._seen(process)
            if seen[0] < first - 1:
                # Lines before these have not come by the stream yet: let them go first.
                if not self.writing.wait_for(lambda: seen[0] >= first - 1, CATCH_UP_WAIT):
                    seen[0] = first - 1   # lost on the way: the carried lines go on
                    seen[1].difference_update(range(first))
            fresh = [line for line in lines if self._first_time(process, line[0])]
            start = 0
            while start < len(fresh):   # consecutive lines of one stream and name together
                stream, name = fresh[start][1], fresh[start][4]
                end = start + 1
                while end < len(fresh) and fresh[end][1] == stream and fresh[end][4] == name:
                    end += 1
                self._write("stderr" if stream == output.STDERR else "stdout", name, pid,
                            [(line[2], line[3]) for line in fresh[start:end]])
                start = end

    def _seen(self, process) -> list:
        """[highest number up to which all were written, numbers written above it]."""
        seen = self.written.get(process)
        if seen is None:
            seen = self.written[process] = [-1, set()]
            if len(self.written) > REMEMBERED_PROCESSES:
                self.written.popitem(last=False)
        return seen

    def _first_time(self, process, seq) -> bool:
        """Whether line ``seq`` of ``process`` is new (noting it); under ``writing``."""
        if seq is None:
            return True
        seen = self._seen(process)
        if seq <= seen[0] or seq in seen[1]:
            return False
        above = seen[1]
        if seq == seen[0] + 1:
            seq += 1
            while seq in above:
                above.discard(seq)
                seq += 1
            seen[0] = seq - 1
        else:
            above.add(seq)
        return True

    def _write(self, stream: str, name, pid, routed: list) -> None:
        router = self.backend.router
        record_of = self.backend.record_of
        start = 0
        # Consecutive lines of one call go out together.
        while start < len(routed):
            route = routed[start][0]
            end = start + 1
            while end < len(routed) and routed[end][0] == route:
                end += 1
            text = "\n".join(t for _, t in routed[start:end])
            record = record_of(route)
            context = record.context if record is not None else None
            label = name or (record.label.split(".")[0] if record is not None else "worker")
            try:
                router.write(context, stream, f"({label} pid={pid})", text)
            except Exception:
                pass   # a closed cell stream must not stop Ray's log thread
            start = end

    def _events(self, text: str) -> None:
        try:
            pid, origin, items = json.loads(text)
        except ValueError:
            return
        record_of = self.backend.record_of
        # The worker's times are microseconds since its origin (a time.time()).
        base = origin / 1e6 - self.offset
        for item in items:
            item[2] = base + item[2] / 1e6
            if len(item) == 5 and item[1] in BOTH:
                item[4] = base + item[4] / 1e6
            if item[1] == BAR:
                self.bars.item(item, pid)
                continue
            if item[1] in NESTED_EVENTS:
                self.nested.handle(item, pid)
                continue
            record = record_of(item[0])
            if record is None:
                self.nested.handle(item, pid)   # a call made inside a worker (nested.py)
                continue
            report_event(record, item, pid)


class _Untagged:
    """Ray's printer once the session let go: lines still on their way lose their tags,
    trace events are dropped (they would print as noise in whatever runs next)."""

    def __init__(self, printer):
        self.printer = getattr(printer, "printer", printer)

    def __call__(self, data: dict) -> None:
        lines = [line.partition(TAG)[2].partition(TAG)[2] if line.startswith(LINE_MARK)
                 else line for line in data.get("lines") or ()
                 if not line.startswith(EVENTS_MARK)]
        if lines:
            self.printer(dict(data, lines=lines))


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None
