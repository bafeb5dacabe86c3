"""Turning user values into payloads and back.

A payload is a cloudpickle blob plus its pickle-5 out-of-band buffers, so a
numpy array or a large ``bytes`` is never copied into the blob. Buffers of
``SHM_THRESHOLD`` bytes or more go through a file in shared memory instead of
the channel: the sender writes it once, the receiver maps it without copying.

Who removes a shared-memory file:
- a file made for a call's arguments or by ``put`` belongs to the driver and is
  removed when the driver's payload is garbage-collected (the driver keeps it
  until the call that carried it has finished, so the worker has mapped it);
- a file made by a worker for a result is handed over: the worker forgets it
  and the driver's copy of the payload owns it from then on.
Whatever is left when the runtime stops is removed with its session folder.
"""
from __future__ import annotations

import collections
import io
import linecache
import mmap
import os
import pickle
import tempfile
import types
import uuid
import weakref
from typing import Any

import cloudpickle

SHM_THRESHOLD = 1 << 20
PROTOCOL = 5

# Set by the driver at start and by a worker from its environment.
_session_dir: str | None = None


def session_dir_root() -> str:
    """Where the shared-memory folder of a session lives: RAM-backed where the OS has it."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


def set_session_dir(path: str | None) -> None:
    global _session_dir
    _session_dir = path


class ShmBuffer:
    """A buffer that lives in a shared-memory file (only its name travels)."""

    __slots__ = ("path", "size", "handoff", "_finalizer", "__weakref__")

    def __init__(self, path: str, size: int, handoff: bool):
        self.path = path
        self.size = size
        # handoff: the receiver becomes the owner and removes the file.
        self.handoff = handoff
        self._finalizer = None

    @classmethod
    def create(cls, data: memoryview, handoff: bool) -> "ShmBuffer":
        path = os.path.join(_session_dir or tempfile.gettempdir(), uuid.uuid4().hex)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
            written = 0
            while written < len(view):
                written += os.write(fd, view[written:])
        finally:
            os.close(fd)
        buf = cls(path, len(view), handoff)
        if not handoff:
            buf._own()
        return buf

    def _own(self) -> None:
        self._finalizer = weakref.finalize(self, _unlink_quietly, self.path)

    def open(self) -> memoryview:
        """Map the file copy-on-write: zero copies, and writes stay private."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            mapped = mmap.mmap(fd, self.size, access=mmap.ACCESS_COPY)
        finally:
            os.close(fd)
        return memoryview(mapped)

    def __reduce__(self):
        return (_rebuild_shm, (self.path, self.size, self.handoff))


def _rebuild_shm(path: str, size: int, handoff: bool) -> ShmBuffer:
    buf = ShmBuffer(path, size, handoff=False)
    if handoff:
        buf._own()
    return buf


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class Payload:
    """A serialized value: a pickle blob and its out-of-band buffers."""

    __slots__ = ("blob", "buffers")

    def __init__(self, blob: bytes, buffers: tuple = ()):
        self.blob = blob
        self.buffers = buffers

    def __reduce__(self):
        if not self.buffers:
            return (Payload, (self.blob,))
        # Small buffers become out-of-band parts of the frame; ShmBuffers
        # pickle as their (tiny) descriptors.
        parts = tuple(b if isinstance(b, ShmBuffer) else pickle.PickleBuffer(b)
                      for b in self.buffers)
        return (Payload, (self.blob, parts))

    @property
    def nbytes(self) -> int:
        return len(self.blob) + sum(
            b.size if isinstance(b, ShmBuffer) else memoryview(b).nbytes for b in self.buffers)


def serialize(value: Any, handoff: bool = False) -> Payload:
    """Pickle ``value``; raises whatever pickling raises, in the caller's thread."""
    buffers: list = []
    blob = cloudpickle.dumps(value, protocol=PROTOCOL, buffer_callback=buffers.append)
    if not buffers:
        return Payload(blob)
    out = []
    for pb in buffers:
        raw = pb.raw()
        if raw.nbytes >= SHM_THRESHOLD:
            out.append(ShmBuffer.create(raw, handoff))
        else:
            # Copied now: the value is captured at call time, even if the
            # frame is sent later and the caller mutates it meanwhile.
            out.append(bytearray(raw))
    return Payload(blob, tuple(out))


def deserialize(payload: Payload) -> Any:
    if not payload.buffers:
        return pickle.loads(payload.blob)
    bufs = [b.open() if isinstance(b, ShmBuffer) else b for b in payload.buffers]
    return pickle.loads(payload.blob, buffers=bufs)


def _code_reduce_keeping_filename(code: types.CodeType):
    # cloudpickle (3.x) renames the file of code it pickles by value to
    # "<dynamic-code>"; keep the real name so remote tracebacks point at the
    # user's cell or file.
    rebuild, args = cloudpickle.cloudpickle._code_reduce(code)
    args = tuple(code.co_filename if a == "<dynamic-code>" else a for a in args)
    return rebuild, args


class _DefinitionPickler(cloudpickle.Pickler):
    dispatch_table = collections.ChainMap({types.CodeType: _code_reduce_keeping_filename},
                                          cloudpickle.Pickler.dispatch_table)


def _source_files(obj) -> set:
    """The files holding the code of a function or of a class's methods."""
    files = set()
    members = vars(obj).values() if isinstance(obj, type) else [obj]
    for member in members:
        fn = getattr(member, "__func__", member)
        code = getattr(fn, "__code__", None)
        if code is not None:
            files.add(code.co_filename)
    return files


def serialize_definition(obj) -> Payload:
    """Pickle a class or function with the source lines of its file, so that a
    worker's tracebacks show the user's lines, even for code typed in a cell."""
    sources = {}
    for filename in _source_files(obj):
        lines = linecache.getlines(filename)
        if lines and not os.path.exists(filename):
            sources[filename] = lines
    out = io.BytesIO()
    _DefinitionPickler(out, protocol=PROTOCOL).dump((obj, sources))
    return Payload(out.getvalue())


def deserialize_definition(payload: Payload):
    obj, sources = deserialize(payload)
    for filename, lines in sources.items():
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    return obj


NONE_PAYLOAD = serialize(None)
EMPTY_ARGS_PAYLOAD = serialize(((), {}))
