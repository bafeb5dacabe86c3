"""Ids of calls, refs and actors: unique within a session, plain values that pickle as themselves."""
from __future__ import annotations

import itertools
import os
import threading

_counter = itertools.count(1)
_lock = threading.Lock()
# Actor ids also name actors across processes (a handle pickles to its id),
# so they carry this process's pid as well as a count.
_actor_counter = itertools.count(1)


def use_process_prefix() -> None:
    """In a worker: ids carry this process's pid in their high bits, so the refs a
    worker makes never share an id with the driver's or another worker's."""
    global _counter
    with _lock:
        _counter = itertools.count((os.getpid() << 32) + 1)


def next_id() -> int:
    """A new call or ref id (the id of a call's first ref is the call's id)."""
    # No lock: next() of an itertools.count is one step of the interpreter, and the
    # counter is replaced (use_process_prefix) before a worker makes any id.
    return next(_counter)


def new_actor_id() -> str:
    """A new actor id: 16 hex digits, like the first half of Ray's."""
    with _lock:
        n = next(_actor_counter)
    return f"{os.getpid() & 0xFFFFFFFF:08x}{n:08x}"
