"""Ray's log stream on the driver: each call's lines to its cell, trace events to the trace.

    Ray's log monitor ─▶ driver's "ray_print_logs" thread ─▶ LogRouter.handle(batch)
        "<RS>ja:ROUTE<RS>text"  → the output router, with the context of call ROUTE
        "<RS>jt:[pid, events]"  → the call records: started / finished / slot / pid
        anything else           → Ray's own printer, unchanged

Ray prints worker output in whichever cell runs when it arrives (Ray issues
#3692, #45262); routing by the call's route keeps it in the cell that made the
call, also after that cell finished.
"""
from __future__ import annotations

import json
import time

from .host import EVENTS_MARK, LINE_MARK, TAG
from .nested import NESTED_EVENTS, NestedCalls

_HANDLER = "ray_print_logs"


class LogRouter:
    """Replaces Ray's printer of worker output for as long as the backend runs."""

    def __init__(self, backend):
        from ray._private.ray_logging import global_worker_stdstream_dispatcher
        self.backend = backend
        self.dispatcher = global_worker_stdstream_dispatcher
        # time.time() in a worker minus this is the driver's time.monotonic().
        self.offset = time.time() - time.monotonic()
        self.nested = NestedCalls(backend, self.offset)
        self.ray_printer = next((h for n, h in self.dispatcher.handlers if n == _HANDLER), None)
        if self.ray_printer is not None:
            self.dispatcher.remove_handler(_HANDLER)
            self.dispatcher.add_handler(_HANDLER, self.handle)

    def close(self) -> None:
        if self.ray_printer is not None:
            self.dispatcher.remove_handler(_HANDLER)
            self.dispatcher.add_handler(_HANDLER, self.ray_printer)
            self.ray_printer = None

    def handle(self, data: dict) -> None:
        lines = data.get("lines") or ()
        plain: list = []
        routed: list = []     # (route, text), in order
        for line in lines:
            if line.startswith(LINE_MARK):
                route, _, text = line[len(LINE_MARK):].partition(TAG)
                routed.append((route, text))
            elif line.startswith(EVENTS_MARK):
                self._events(line[len(EVENTS_MARK):].rstrip().rstrip(TAG))
            else:
                plain.append(line)
        if routed:
            self._write(data, routed)
        if plain and self.ray_printer is not None:
            self.ray_printer(dict(data, lines=plain))

    def _write(self, data: dict, routed: list) -> None:
        stream = "stderr" if data.get("is_err") else "stdout"
        router = self.backend.router
        records = self.backend.records
        name = data.get("actor_name") or data.get("task_name")
        start = 0
        # Consecutive lines of one call go out together.
        while start < len(routed):
            route = routed[start][0]
            end = start + 1
            while end < len(routed) and routed[end][0] == route:
                end += 1
            text = "\n".join(t for _, t in routed[start:end])
            record = records.get(_int(route))
            context = record.context if record is not None else None
            label = name or (record.label.split(".")[0] if record is not None else "worker")
            try:
                router.write(context, stream, f"({label} pid={data.get('pid')})", text)
            except Exception:
                pass   # a closed cell stream must not stop Ray's log thread
            start = end

    def _events(self, text: str) -> None:
        try:
            pid, items = json.loads(text)
        except ValueError:
            return
        records = self.backend.records
        offset = self.offset
        for item in items:
            record = records.get(item[0])
            if record is None or item[1] in NESTED_EVENTS:
                self.nested.handle(item, pid)   # a call made inside a worker (nested.py)
                continue
            if item[1] == "s":
                record.report(started=item[2] - offset, slot=item[3], pid=pid)
            else:   # "f": it returned, "x": it raised
                record.report(finished=item[2] - offset, failed=item[1] == "x")


def _int(route: str):
    try:
        return int(route)
    except ValueError:
        return None
