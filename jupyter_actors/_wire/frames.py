"""Frames on the driver <-> worker channel (message shapes and framing, no I/O state).

A frame is ``<Q body-length>`` then the body: ``<I n>``, ``n`` part lengths as
``<Q>``, then the parts. Part 0 is the message; the others are the small
buffers of the user payloads it carries, so user data is never copied into the
message encoding. Part 0 starts with one byte saying how the rest is encoded:

- ``M``: ``marshal`` of ``(message, payloads)``, where each ``Payload`` in the
  message (top level, or one tuple deep) was replaced by ``None`` and
  ``payloads`` says where it goes and what it holds. This is the common case
  and costs a fraction of pickling the message.
- ``P``: pickle of the message (anything marshal cannot encode), with the
  buffers as pickle-5 out-of-band parts.
- ``C``: a run of calls the driver queued together (``encode_calls``), as
  ``marshal`` of ``(call_id, method, args blob, num_returns, group)`` each:
  one frame, decoded into one ``CallMethod`` per call.

A message is one of the named types in ``messages`` (the table of every kind
is there); on the wire it is the plain tuple ``(tag, *fields)``, so marshal
can encode it, and it is decoded back into its named type.
"""
from __future__ import annotations

import marshal
import pickle
import struct
from array import array

from .messages import BY_TAG, CallMethod, CallOk, CallsOk
from .payloads import Payload, ShmBuffer, _rebuild_shm, builtin_only

_LEN = struct.Struct("<Q")
_COUNT = struct.Struct("<I")
_MARSHAL = b"M"
_PICKLE = b"P"
_CALLS = b"C"
_M = _MARSHAL[0]
_C = _CALLS[0]


def encode(message) -> list:
    """The buffers to write for one frame (header, message, out-of-band parts)."""
    if type(message) is CallOk:  # most frames a worker sends: one small return value
        payloads = message.payloads
        if len(payloads) == 1 and not payloads[0].buffers:
            meta = _MARSHAL + marshal.dumps(
                (("ok", message.call_id, (None,), message.t_start, message.t_end, message.slot),
                 ((2, 0, payloads[0].blob, ()),)))
            return [struct.pack("<QIQ", 4 + 8 + len(meta), 1, len(meta)) + meta]
    message = (message.TAG,) + message  # a plain tuple: marshal takes exact types only
    extra: list = []
    try:
        meta = _MARSHAL + marshal.dumps(_lift_payloads(message, extra))
    except ValueError:  # something marshal cannot encode: pickle the message
        extra = []
        meta = _PICKLE + pickle.dumps(message, protocol=5,
                                      buffer_callback=lambda b: extra.append(b.raw()))
    if not extra:
        return [struct.pack("<QIQ", 4 + 8 + len(meta), 1, len(meta)) + meta]
    parts = [meta] + extra
    lengths = [p.nbytes if isinstance(p, memoryview) else len(p) for p in parts]
    n = len(parts)
    head = struct.pack(f"<QI{n}Q", 4 + 8 * n + sum(lengths), n, *lengths)
    return [head] + parts


def ok_end(message):
    """``(call_id, blob, t_start, t_end, slot)`` of a ``CallOk`` that a ``CallsOk`` can
    carry (one value, no out-of-band buffers, plain fields); else None."""
    if type(message) is CallOk:
        payloads = message.payloads
        if len(payloads) == 1 and not payloads[0].buffers:
            call_id, _, t_start, t_end, slot = message
            if type(payloads[0].blob) is bytes and type(call_id) is int and type(t_start) is float and type(t_end) is float \
                    and type(slot) is int:
                return (call_id, payloads[0].blob, t_start, t_end, slot)
    return None


def encode_ok(end: tuple) -> bytes:
    """The frame of the ``CallOk`` whose ``ok_end`` is ``end`` (as ``encode`` writes it)."""
    call_id, blob, t_start, t_end, slot = end
    meta = _MARSHAL + marshal.dumps((("ok", call_id, (None,), t_start, t_end, slot),
                                     ((2, 0, blob, ()),)))
    return struct.pack("<QIQ", 4 + 8 + len(meta), 1, len(meta)) + meta


def encode_oks(ends: list) -> bytes:
    """The frame of a run of ends (see ``ok_end``): one ``CallsOk``, its numbers packed as
    ``messages`` says (the driver's trace keeps them as arrays, with no object per call)."""
    call_ids, blobs, starts, finishes, slots = zip(*ends)
    count = len(blobs)
    try:
        numbers = struct.pack(f"{count}q{2 * count}d{count}q", *call_ids, *starts, *finishes,
                              *slots)
    except struct.error:  # a number past 64 bits: each end in a frame of its own
        return b"".join(map(encode_ok, ends))
    meta = _MARSHAL + marshal.dumps((("oks", blobs, numbers), None))
    return struct.pack("<QIQ", 4 + 8 + len(meta), 1, len(meta)) + meta


def unpack_oks(message: CallsOk) -> tuple:
    """``(call_ids, starts, finishes, slots)`` of a ``CallsOk``, in the order of its blobs:
    four arrays of machine numbers (copies of its ``numbers``' columns, which a garbage
    collection never walks)."""
    width = 8 * len(message.blobs)
    numbers = memoryview(message.numbers)
    columns = (array("q"), array("d"), array("d"), array("q"))
    for k, column in enumerate(columns):
        column.frombytes(numbers[k * width:(k + 1) * width])
    return columns


def encode_call(call_id: int, method: str, args: Payload, num_returns: int, group) -> list:
    """``encode(CallMethod(call_id, method, args, (), num_returns, group))``, the frame of
    most calls (no ref arguments, small arguments), without the general walk."""
    if args.buffers or type(method) is not str or (group is not None and type(group) is not str):
        return encode(CallMethod(call_id, method, args, (), num_returns, group))
    meta = _MARSHAL + marshal.dumps((("call", call_id, method, None, (), num_returns, group),
                                     ((3, -1, args.blob, ()),)))
    return [struct.pack("<QIQ", 4 + 8 + len(meta), 1, len(meta)) + meta]


def call_fields(call_id: int, method: str, args: Payload, num_returns: int, group):
    """``(call_id, method, blob, num_returns, group)`` of a call that ``encode_calls`` can
    carry (no ref arguments, no out-of-band buffers, plain fields); else None."""
    if args.buffers or type(args.blob) is not bytes or type(method) is not str \
            or type(call_id) is not int or type(num_returns) is not int \
            or (group is not None and type(group) is not str):
        return None
    return (call_id, method, args.blob, num_returns, group)


def encode_calls(calls: list) -> bytes:
    """One frame for a run of calls, each ``(call_id, method, args blob, num_returns,
    group)`` (no ref arguments, no out-of-band buffers, plain fields), in order."""
    if len(calls) == 1:  # the frame of a lone call, as encode_call writes it
        call_id, method, blob, num_returns, group = calls[0]
        meta = _MARSHAL + marshal.dumps((("call", call_id, method, None, (), num_returns, group),
                                         ((3, -1, blob, ()),)))
    else:
        meta = _CALLS + marshal.dumps(calls)
    return struct.pack("<QIQ", 4 + 8 + len(meta), 1, len(meta)) + meta


def _decode_calls(meta) -> list:
    return [_new_tuple(CallMethod, (call_id, method, Payload(blob), (), num_returns, group))
            for call_id, method, blob, num_returns, group in marshal.loads(meta)]


def _lift_payloads(message: tuple, extra: list):
    """``(message with payloads as None, payload descriptions)`` for marshal.

    A description is ``(index, sub_index or -1, blob, buffers)``; a buffer is
    the number of its out-of-band part, or ``(path, size, handoff)`` for a
    shared-memory file.
    """
    found = None
    i = 0
    for item in message:
        kind = type(item)
        if kind in _ATOMS:
            pass
        elif kind is Payload:
            if found is None:
                found = []
            found.append((i, -1, item))
        elif kind is tuple:
            j = 0
            for sub in item:
                if type(sub) in _ATOMS:
                    pass
                elif type(sub) is Payload:
                    if found is None:
                        found = []
                    found.append((i, j, sub))
                elif not _plain(sub):
                    raise ValueError("not for marshal")
                j += 1
        elif not _plain(item):
            # marshal would write any buffer (a numpy scalar, a bytearray) as bytes
            raise ValueError("not for marshal")
        i += 1
    if found is None:
        return message, None
    items = list(message)
    described = []
    inner = None   # field -> its tuple as a list (many payloads: one copy, not one each)
    for i, j, payload in found:
        if j < 0:
            items[i] = None
        else:
            if inner is None:
                inner = {}
            sub = inner.get(i)
            if sub is None:
                sub = inner[i] = list(items[i])
            sub[j] = None
        if payload.buffers:
            buffers = []
            for b in payload.buffers:
                if type(b) is ShmBuffer:
                    buffers.append(b.describe())
                else:
                    extra.append(memoryview(b).cast("B"))
                    buffers.append(len(extra))  # its part number (part 0 is the message)
            described.append((i, j, payload.blob, tuple(buffers)))
        else:
            described.append((i, j, payload.blob, ()))
    if inner is not None:
        for i, sub in inner.items():
            items[i] = tuple(sub)
    return tuple(items), tuple(described)


_new_tuple = tuple.__new__


def _decode_marshal(meta, parts):
    items, described = marshal.loads(meta)
    if described is None:
        return _new_tuple(BY_TAG[items[0]], items[1:])  # _typed, inlined (every frame)
    if items[0] == "ok" and len(described) == 1 and not described[0][3]:
        # Most frames a driver reads: one small return value (as encode writes it).
        return _new_tuple(CallOk, (items[1], (Payload(described[0][2]),)) + items[3:])
    items = list(items)
    inner = None   # field -> its tuple as a list, while payloads go in
    for i, j, blob, buffers in described:
        if buffers:
            payload = Payload(blob, tuple([parts[b] if type(b) is int else _rebuild_shm(*b)
                                           for b in buffers]))
        else:
            payload = Payload(blob)
        if j < 0:
            items[i] = payload
        else:
            if inner is None:
                inner = {}
            sub = inner.get(i)
            if sub is None:
                sub = inner[i] = list(items[i])
            sub[j] = payload
    if inner is not None:
        for i, sub in inner.items():
            items[i] = tuple(sub)
    return _new_tuple(BY_TAG[items[0]], tuple(items[1:]))  # _typed, inlined


def _typed(items):
    """The named message for ``(tag, *fields)`` (tuple.__new__: what _make does, in C)."""
    return _new_tuple(BY_TAG[items[0]], items[1:])


_ATOMS = frozenset({type(None), bool, int, float, str, bytes})


def _plain(value) -> bool:
    """Whether marshal carries ``value`` unchanged (exact builtin types only)."""
    return builtin_only(value, _ATOMS, max_depth=4, max_len=None)


class FrameDecoder:
    """Reads a stream into one reusable buffer and yields complete messages.

    ``read(sock)`` receives straight into the buffer (no fresh bytes object,
    so no allocator churn per message); a frame larger than the buffer grows
    it to the frame's size so the frame is received in place.
    """

    _CHUNK = 1 << 18          # receive size, and the size the buffer returns to
    _KEEP = 4 << 20           # a grown buffer larger than this is let go when empty

    def __init__(self) -> None:
        self._buf = bytearray(self._CHUNK)
        self._start = 0       # first unparsed byte
        self._end = 0         # end of received bytes

    def read(self, sock, flags: int = 0) -> list | None:
        """Receive once from ``sock``: the complete messages, or None at end of file.

        Raises what ``recv_into`` raises (BlockingIOError on a non-blocking
        socket, or with ``flags=socket.MSG_DONTWAIT`` when nothing is there).
        """
        self._make_room()
        n = sock.recv_into(memoryview(self._buf)[self._end:], 0, flags)
        if not n:
            return None
        self._end += n
        return self._parse()

    def filled(self) -> bool:
        """Whether the last ``read`` filled all the room it had: more may wait unread."""
        return self._end == len(self._buf)

    def feed(self, data) -> list:
        """Add bytes received elsewhere; the complete messages."""
        data = memoryview(data).cast("B")
        if len(self._buf) - self._end < data.nbytes:
            self._make_room(data.nbytes)
        self._buf[self._end:self._end + data.nbytes] = data
        self._end += data.nbytes
        return self._parse()

    def _make_room(self, at_least: int = 0) -> None:
        buf, start, end = self._buf, self._start, self._end
        if start == end:
            start = end = self._start = self._end = 0
            if len(buf) > self._KEEP:
                buf = self._buf = bytearray(self._CHUNK)
        need = max(at_least, self._CHUNK // 4)
        if end - start >= 8:
            # Room for the whole frame that is arriving, so it lands in place.
            (body_len,) = _LEN.unpack_from(buf, start)
            need = max(need, 8 + body_len - (end - start))
        if len(buf) - end >= need:
            return
        pending = end - start
        if start and len(buf) - pending >= need:
            buf[:pending] = buf[start:end]
        else:
            grown = bytearray(max(pending + need, self._CHUNK))
            grown[:pending] = buf[start:end]
            self._buf = grown
        self._start, self._end = 0, pending

    def _parse(self) -> list:
        buf, offset, size = self._buf, self._start, self._end
        messages = []
        while size - offset >= 8:
            (body_len,) = _LEN.unpack_from(buf, offset)
            end = offset + 8 + body_len
            if end > size:
                break
            message = _decode_body(buf, offset + 8, end)
            if type(message) is list:  # a run of calls
                messages += message
            else:
                messages.append(message)
            offset = end
        self._start = offset
        return messages


def _decode_body(buf: bytearray, start: int, end: int):
    (n,) = _COUNT.unpack_from(buf, start)
    pos = start + 4 + 8 * n
    if n == 1:
        encoding = buf[pos]
        if encoding == _M:
            return _decode_marshal(buf[pos + 1:end], ())
        if encoding == _C:
            return _decode_calls(buf[pos + 1:end])
        return _typed(pickle.loads(buf[pos + 1:end]))
    lengths = struct.unpack_from(f"<{n}Q", buf, start + 4)
    # Out-of-band parts are copied out once, into writable memory, so the
    # receive buffer can be reused and arrays built on them are writable.
    body = buf[pos:end]
    view = memoryview(body)
    parts = []
    p = 0
    for length in lengths:
        parts.append(view[p:p + length])
        p += length
    meta = parts[0]
    if meta[0] == _M:
        return _decode_marshal(meta[1:], parts)
    return _typed(pickle.loads(meta[1:], buffers=parts[1:]))
