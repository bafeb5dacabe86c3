"""Timing of every call, kept by the driver for timelines.

The runtime calls ``record_submitted`` / ``record_started`` /
``record_finished`` with its ``CallRecord`` objects (from caller threads and
the I/O thread). Times are ``time.monotonic()`` values: the driver's and the
workers' are the same clock on Linux and macOS, so they line up directly.
"""
from __future__ import annotations

import collections


class Tracer:
    """Keeps recent finished calls and tells listeners as calls are submitted, start and end."""

    def __init__(self, capacity: int = 200_000):
        self.finished: collections.deque = collections.deque(maxlen=capacity)
        self.listeners: list = []

    def record_submitted(self, record) -> None:
        for listener in self.listeners:
            listener("submit", record)

    def record_started(self, record) -> None:
        for listener in self.listeners:
            listener("start", record)

    def record_finished(self, record) -> None:
        self.finished.append(record)
        for listener in self.listeners:
            listener("finish", record)


tracer = Tracer()
