"""The wire format on its own: every message kind through encode and the frame decoder."""
from __future__ import annotations

import pickle
import re
import socket
import threading
import time

import numpy as np
import pytest

from jupyter_actors._wire import frames, messages
from jupyter_actors._wire.payloads import Payload, deserialize, serialize
from tests.helpers import GUARD

ALL_KINDS = messages.TO_WORKER + messages.TO_DRIVER


def _sample_field(kind, name: str, index: int):
    """A value for one field, with payloads wherever a message carries them."""
    if name in ("args", "class_payload", "function_payload", "payload"):
        return serialize({"field": name, "array": np.arange(10 + index)})
    if name in ("deps", "payloads"):
        return (serialize(index), serialize(b"x" * 100), serialize([1, 2, 3]))
    if name == "error":
        return (serialize(ValueError("boom")), "builtins.ValueError", "boom", "Traceback ...")
    if name == "options":
        return {"sys_path": ["/a", "/b"], "cwd": "/tmp", "class_name": "A",
                "max_concurrency": 3, "is_async": True}
    if name in ("t", "t_start", "t_end"):
        return 1234.5 + index
    if name in ("method", "func_id", "label", "stream", "text"):
        return f"{name}-{index}\n"
    if name == "ok":
        return bool(index % 2)
    return 100 + index  # ids, slots, num_returns


def sample(kind):
    return kind(*[_sample_field(kind, f, i) for i, f in enumerate(kind._fields)])


def _plain(value):
    """A comparable form of a field: payloads become their values."""
    if isinstance(value, Payload):
        return ("payload", _plain(deserialize(value)))
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return ("array", value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, BaseException):
        return (type(value).__name__, str(value))
    return value


def assert_same(decoded, original) -> None:
    assert type(decoded) is type(original)
    assert _plain(tuple(decoded)) == _plain(tuple(original))


def _frame_bytes(message) -> bytes:
    return b"".join(bytes(memoryview(p).cast("B")) for p in frames.encode(message))


def ends_of(message) -> list:
    """A CallsOk's calls as ``(call_id, value, t_start, t_end, slot)``."""
    assert type(message) is messages.CallsOk
    call_ids, starts, finishes, slots = frames.unpack_oks(message)
    return list(zip(call_ids, map(pickle.loads, message.blobs), starts, finishes, slots))


def read_messages(sock, count: int) -> list:
    """The first ``count`` messages that arrive on ``sock`` (at least; frames may carry more)."""
    decoder = frames.FrameDecoder()
    out: list = []
    while len(out) < count:
        got = decoder.read(sock)
        assert got is not None, "end of file before the messages arrived"
        out.extend(got)
    return out


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.__name__)
def test_every_message_round_trips(kind):
    """encode → FrameDecoder gives back the same named message, payloads included."""
    message = sample(kind)
    (decoded,) = frames.FrameDecoder().feed(_frame_bytes(message))
    assert_same(decoded, message)


def test_a_message_marshal_cannot_encode_goes_through_pickle():
    """A field marshal cannot carry (a numpy scalar) still arrives, via the pickle encoding."""
    message = messages.CallStarted(1, np.float64(2.5), 3)
    data = _frame_bytes(message)
    assert data[20:21] == b"P"  # part 0 (after the 20-byte header) is pickled
    (decoded,) = frames.FrameDecoder().feed(data)
    assert decoded == message and type(decoded) is messages.CallStarted


def test_split_frames_many_frames_in_one_read():
    """Frames split at every byte, and many frames in one chunk, decode in order."""
    batch = [sample(kind) for kind in ALL_KINDS]
    stream = b"".join(_frame_bytes(m) for m in batch)
    decoder = frames.FrameDecoder()
    out = []
    for i in range(len(stream)):
        out.extend(decoder.feed(stream[i:i + 1]))
    assert len(out) == len(batch)
    for got, want in zip(out, batch):
        assert_same(got, want)
    all_at_once = frames.FrameDecoder().feed(stream)
    for got, want in zip(all_at_once, batch):
        assert_same(got, want)


def test_a_frame_larger_than_the_buffer_through_a_socket():
    """A frame bigger than the decoder's buffer (and than one recv) arrives whole."""
    array = np.arange(3 * frames.FrameDecoder._CHUNK, dtype=np.uint8)  # < 1 MiB: no shm
    big = serialize(array)
    assert big.buffers and not any(type(b).__name__ == "ShmBuffer" for b in big.buffers)
    batch = [messages.CallOk(7, (big,), 1.0, 2.0, 0), messages.CancelCall(8)]
    data = b"".join(_frame_bytes(m) for m in batch)
    left, right = socket.socketpair()
    try:
        writer = threading.Thread(target=left.sendall, args=(data,), daemon=True)
        writer.start()
        decoder = frames.FrameDecoder()
        out = []
        right.settimeout(30)
        while len(out) < 2:
            got = decoder.read(right)
            assert got is not None, "end of file before the frames arrived"
            out.extend(got)
        writer.join(30)
    finally:
        left.close()
        right.close()
    assert type(out[0]) is messages.CallOk and out[1] == messages.CancelCall(8)
    assert np.array_equal(deserialize(out[0].payloads[0]), array)


def test_the_protocol_table_matches_the_code():
    """The table at the top of messages.py lists every kind with its tag and fields."""
    rows = {}
    for line in messages.__doc__.splitlines():
        m = re.match(r"^    (\w+)\s{2,}(\w+)\s{2,}(.+)$", line)
        if m and m.group(2) in vars(messages):
            fields = () if m.group(3).strip() == "(none)" else tuple(
                f.strip() for f in m.group(3).split(","))
            rows[m.group(2)] = (m.group(1), fields)
    assert set(rows) == {k.__name__ for k in ALL_KINDS}
    for kind in ALL_KINDS:
        assert rows[kind.__name__] == (kind.TAG, kind._fields), kind.__name__
    assert len(messages.BY_TAG) == len(ALL_KINDS)  # no two kinds share a tag


def test_many_payloads_in_one_tuple_keep_their_places():
    """A batch of generator items (payloads in one tuple, some with out-of-band buffers)
    decodes to the same payloads in the same order."""
    values = [i if i % 3 else np.arange(i, dtype=np.int64) for i in range(300)]
    payloads = tuple(serialize(v) for v in values)
    message = messages.GeneratorItems(5, 40, payloads)
    (out,) = frames.FrameDecoder().feed(_frame_bytes(message))
    assert type(out) is messages.GeneratorItems and out.index == 40
    for got, want in zip([deserialize(p) for p in out.payloads], values, strict=True):
        assert np.array_equal(got, want)


def test_a_run_of_calls_is_one_frame_that_decodes_into_each_call_in_order():
    """Calls queued together travel as one frame; the decoder gives back one CallMethod
    per call, in order, between the frames around it."""
    calls = [frames.call_fields(i, f"m{i}", serialize(i), 1, None if i % 2 else "io")
             for i in range(5)]
    assert None not in calls
    with_buffers = serialize(np.arange(4))
    assert frames.call_fields(9, "m", with_buffers, 1, None) is None  # goes on its own
    stream = (_frame_bytes(messages.CancelCall(100)) + frames.encode_calls(calls)
              + _frame_bytes(messages.CancelCall(101)) + frames.encode_calls(calls[:1]))
    out = frames.FrameDecoder().feed(stream)
    assert out[0] == messages.CancelCall(100) and out[6] == messages.CancelCall(101)
    for got, i in zip(out[1:6] + out[7:], [0, 1, 2, 3, 4, 0]):
        assert type(got) is messages.CallMethod
        assert (got.call_id, got.method, got.deps, got.num_returns, got.group) == \
            (i, f"m{i}", (), 1, None if i % 2 else "io")
        assert deserialize(got.args) == i


def test_worker_channel_sends_a_run_of_results_as_one_frame_in_order():
    """Results of one plain value each, sent together, become one CallsOk frame; a
    frame of another kind (output) keeps its place between them, and a result with
    out-of-band buffers goes as its own CallOk."""
    from jupyter_actors._worker.channel import Channel
    left, right = socket.socketpair()
    try:
        channel = Channel(left)
        array = serialize(np.arange(8))
        assert array.buffers
        channel.cork()  # every send below goes out in one write at uncork
        channel.send(messages.CallOk(1, (serialize("a"),), 1.0, 2.0, 0))
        channel.send(messages.CallOk(2, (serialize("b"),), 2.0, 3.0, 0))
        channel.send(messages.OutputLines(3, "stdout", "line\n"))
        channel.send(messages.CallOk(3, (serialize("c"),), 3.0, 4.0, 0))
        channel.send(messages.CallOk(4, (array,), 4.0, 5.0, 0))
        channel.send_ends([messages.CallOk(5, (serialize("e"),), 5.0, 6.0, 1),
                           messages.CallOk(6, (serialize("f"),), 6.0, 7.0, 1)])
        channel.uncork()
        right.settimeout(GUARD)
        out = read_messages(right, 5)
    finally:
        left.close()
        right.close()
    kinds = [type(m).__name__ for m in out]
    assert kinds == ["CallsOk", "OutputLines", "CallsOk", "CallOk", "CallsOk"]
    assert ends_of(out[0]) == [(1, "a", 1.0, 2.0, 0), (2, "b", 2.0, 3.0, 0)]
    assert ends_of(out[2]) == [(3, "c", 3.0, 4.0, 0)]
    assert np.array_equal(deserialize(out[3].payloads[0]), np.arange(8))
    assert ends_of(out[4]) == [(5, "e", 5.0, 6.0, 1), (6, "f", 6.0, 7.0, 1)]


def test_a_run_of_results_packs_its_numbers_and_falls_back_past_64_bits():
    """A CallsOk carries its calls' ids, times and slots as packed columns, exactly (ids
    of calls made in a worker carry its pid in their high bits); an end whose numbers do
    not fit 64 bits makes the run go as one CallOk frame per call instead."""
    worker_id = (4_194_303 << 32) + 7  # the largest pid Linux gives, in an id's high bits
    ends = [(worker_id, pickle.dumps("a"), 1.25, 2.5, 3), (8, pickle.dumps("b"), 3.0, 4.0, 1 << 40)]
    (message,) = frames.FrameDecoder().feed(frames.encode_oks(ends))
    assert ends_of(message) == [(worker_id, "a", 1.25, 2.5, 3), (8, "b", 3.0, 4.0, 1 << 40)]

    ends.append((1 << 70, pickle.dumps("c"), 5.0, 6.0, 0))
    out = frames.FrameDecoder().feed(frames.encode_oks(ends))
    assert [type(m).__name__ for m in out] == ["CallOk"] * 3
    assert [(m.call_id, deserialize(m.payloads[0]), m.t_start, m.t_end, m.slot) for m in out] == \
        [(worker_id, "a", 1.25, 2.5, 3), (8, "b", 3.0, 4.0, 1 << 40), (1 << 70, "c", 5.0, 6.0, 0)]


def test_a_result_sent_while_another_thread_writes_is_not_waited_for_and_follows_it():
    """One thread writes at a time, outside the channel's lock: a thread that sends a
    result meanwhile returns at once, and the writing thread sends it right after
    its own frame; a frame of another kind waits until it is written."""
    from jupyter_actors._worker.channel import Channel
    left, right = socket.socketpair()
    try:
        channel = Channel(left)
        big = serialize(np.ones(900 << 10, dtype=np.uint8))  # more than the socket holds
        assert not any(type(b).__name__ == "ShmBuffer" for b in big.buffers)  # all inline
        writer = threading.Thread(
            target=channel.send, args=(messages.CallOk(1, (big,), 1.0, 2.0, 0),), daemon=True)
        writer.start()
        deadline = time.monotonic() + GUARD
        while not channel.writing:  # the writer is in its (blocked) write
            assert time.monotonic() < deadline and writer.is_alive()
            time.sleep(0.001)
        result = threading.Thread(
            target=channel.send, args=(messages.CallOk(2, (serialize("b"),), 2.0, 3.0, 1),),
            daemon=True)
        result.start()
        result.join(GUARD)
        assert not result.is_alive()  # returned while the big frame is still being written
        output = threading.Thread(
            target=channel.send, args=(messages.OutputLines(3, "stdout", "x\n"),), daemon=True)
        output.start()
        right.settimeout(GUARD)
        out = read_messages(right, 3)
        writer.join(GUARD)
        output.join(GUARD)
        assert not writer.is_alive() and not output.is_alive() and not channel.writing
    finally:
        left.close()
        right.close()
    assert [type(m).__name__ for m in out] == ["CallOk", "CallsOk", "OutputLines"]
    assert out[0].call_id == 1 and deserialize(out[0].payloads[0]).nbytes == 900 << 10
    assert ends_of(out[1]) == [(2, "b", 2.0, 3.0, 1)] and out[2].text == "x\n"
