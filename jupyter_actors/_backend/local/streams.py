"""Generator calls in the driver: each yielded item becomes a ref as soon as it arrives.

    producer worker                I/O thread (this module)                 consumer
    ───────────────                ────────────────────────                 ────────
    GeneratorItems(index, ...) ─▶  Feed.add: a ref holding each value ──▶   the driver's Stream
                                     (index already had: a retry; dropped)  (ObjectRefGenerator), or
                                                                        ──▶ StreamItem to the worker
                                                                            that made the call
    the call's result or error  ─▶ the call's own ref: the stream ends (ObjectRefGenerator.end_with)
    ItemsConsumed(count)        ◀─ the consumer took items (calls with backpressure only);
                                   a consumer worker says so with StreamConsumed

``num_returns="dynamic"`` collects the items instead, and the ref the caller
holds gets a ``DynamicObjectRefGenerator`` of them when the call has finished.
Nothing here runs for calls that are not generators.
"""
from __future__ import annotations

import concurrent.futures

from ... import _ids
from ..._api import refs as _refs
from ..._api.generators import (ALL, DynamicObjectRefGenerator, ObjectRefGenerator, Stream,
                                done_future, failed_ref)
from ..._api.refs import ObjectRef
from ..._wire.messages import (DYNAMIC, GeneratorItems, ItemsConsumed, StreamConsumed,
                               StreamItem, backpressure_of)
from ..._wire.payloads import deserialize
from ...exceptions import TaskError
from .results import _REBUILD


class Feed:
    """Where the items of one generator call go: a Stream, a worker, or a list (dynamic)."""

    __slots__ = ("record", "stream", "conn", "items", "received", "taken")

    def __init__(self, record):
        self.record = record
        self.stream = None      # the driver consumes
        self.conn = None        # a worker consumes (it made the call)
        self.items = None       # num_returns="dynamic"
        self.received = 0
        self.taken = 0          # items the consumer took (calls with backpressure)

    def took(self, count: int) -> None:
        """The consumer has taken ``count`` items: its producer may go on."""
        self.taken = count
        consumed(self.record, count)

    def add(self, index: int, payloads: tuple) -> None:
        """Items ``index``, ``index + 1``, ... arrived."""
        had = self.received - index
        if had:
            if had < 0:
                return
            # Had already: a call sent again (a retried task, a restarted actor) yields
            # from item 0. With backpressure its new producer must hear how far the
            # consumer got, or it would wait for items nobody will take again.
            if self.taken:
                consumed(self.record, self.taken)
            if had >= len(payloads):
                return
            payloads = payloads[had:]
        self.received += len(payloads)
        record = self.record
        refs = [_item_ref(record, payload) for payload in payloads]
        if self.stream is not None:
            self.stream.push(refs)
        elif self.conn is not None:
            conn = self.conn
            if conn.exited:  # the consumer died: its producer must not wait for it
                consumed(record, ALL)
                return
            lent = record.owner.runtime.lent
            for ref, payload in zip(refs, payloads):
                lent.lend(conn, [ref])
                lent.lend_with_value(conn, ref)
                conn.send(StreamItem(record.call_id, ref._id, payload))
        elif self.items is not None:
            self.items.extend(refs)


def _item_ref(record, payload) -> ObjectRef:
    """A ref holding one yielded item (and noting the refs and handles inside it)."""
    capture = _REBUILD in payload.blob
    previous = _refs.start_capture() if capture else None
    try:
        value = deserialize(payload)
    except Exception as exc:
        error = TaskError(f"could not unpickle an item yielded by {record.label}: "
                          f"{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        ref = failed_ref(error, record)
        ref._payload = payload
        return ref
    finally:
        inner = _refs.stop_capture(previous) if capture else None
    ref = ObjectRef(_ids.next_id(), done_future(value))
    ref._owner = record
    ref._payload = payload
    ref._inner = inner or None
    return ref


def consumed(record, count: int) -> None:
    """Tell the producer how many items its consumer has taken (backpressure)."""
    conn = record.conn
    if conn is not None:
        conn.send(ItemsConsumed(record.call_id, count))


def open_stream(record, first: ObjectRef, for_worker: bool):
    """What a generator call gives its caller; ``first`` is the call's own ref.

    The driver gets an ObjectRefGenerator (or, for "dynamic", the ref of the
    DynamicObjectRefGenerator); a worker gets the call's ref (its client makes
    the generator, and ``forward`` sends it the items).
    """
    streams = record.owner.runtime.streams
    call_id = record.call_id
    feed = streams[call_id] = Feed(record)
    if record.num_returns == DYNAMIC:
        return _open_dynamic(record, first, feed, streams)
    limit = backpressure_of(record.num_returns)

    def ended(_):
        streams.pop(call_id, None)
        if limit:  # a cancelled threaded call runs on: nobody will take its items
            consumed(record, ALL)
    first._future.add_done_callback(ended)
    if for_worker:
        return first
    feed.stream = Stream(feed.took if limit else None)
    return ObjectRefGenerator(feed.stream, first, record.label)


def _open_dynamic(record, user: ObjectRef, feed: Feed, streams: dict) -> ObjectRef:
    # The call's own ref is internal; the caller's ref gets the items when it ends.
    done = ObjectRef(_ids.next_id(), concurrent.futures.Future())
    done._owner = record
    record.refs = [done]
    feed.items = []

    def finished(fut):
        streams.pop(record.call_id, None)
        error = fut.exception()
        if error is not None and not isinstance(error, TaskError):
            user._future.set_exception(error)  # cancelled, or the actor died
            return
        items = feed.items
        if error is not None:  # raised by the generator: the item where it happened
            items = items + [failed_ref(error, record)]
        value = DynamicObjectRefGenerator(items)
        user._payload, inner = _refs.serialize_noting(value)
        user._inner = inner or None
        user._future.set_result(value)
    done._future.add_done_callback(finished)
    return user


def forward(runtime, call_id: int, conn) -> None:
    """The worker on ``conn`` made this generator call: its items go there."""
    feed = runtime.streams.get(call_id)
    if feed is not None and feed.items is None:
        feed.conn = conn


class StreamHandlers:
    """The I/O thread's handlers of the generator messages."""

    def __init__(self, runtime):
        self.runtime = runtime

    def table(self) -> dict:
        return {GeneratorItems: self.items, StreamConsumed: self.consumed}

    def items(self, conn, m: GeneratorItems) -> None:
        feed = self.runtime.streams.get(m.call_id)
        if feed is not None:
            feed.add(m.index, m.payloads)

    def consumed(self, conn, m: StreamConsumed) -> None:
        feed = self.runtime.streams.get(m.call_id)
        if feed is not None:
            feed.took(m.count)
