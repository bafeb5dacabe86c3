"""State shared by a worker's reading threads and its executor: streams, look-ups, results."""
from __future__ import annotations

import concurrent.futures
import itertools
import os
import sys
import threading

from .._wire.messages import LookupRef
from .._wire.payloads import deserialize
from .capture import CapturedStream


class Worker:
    """State shared by the reader thread and the executors."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.pid = os.getpid()
        self.stdout = CapturedStream("stdout", channel, sys.__stdout__)
        self.stderr = CapturedStream("stderr", channel, sys.__stderr__)
        self.executor = None
        self.lookups: dict = {}
        self._lookup_ids = itertools.count(1)
        self._lookup_lock = threading.Lock()

    # Output of a call is flushed before its result.
    def finish(self, message, soon: bool = False) -> None:
        call_id = message.call_id
        self.stdout.flush_call(call_id)
        self.stderr.flush_call(call_id)
        if soon:
            self.channel.send_soon(message)
        else:
            self.channel.send(message)

    def lookup(self, ref_id: int) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lookup_lock:
            lookup_id = next(self._lookup_ids)
            self.lookups[lookup_id] = fut
        self.channel.send(LookupRef(lookup_id, ref_id))
        return fut

    def on_ref_answer(self, lookup_id: int, ok: bool, payload) -> None:
        with self._lookup_lock:
            fut = self.lookups.pop(lookup_id, None)
        if fut is None:
            return
        try:
            value = deserialize(payload)
        except BaseException as exc:
            fut.set_exception(exc)
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
