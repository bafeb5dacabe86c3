"""Turning user values into payloads and back.

A payload is a cloudpickle blob plus its pickle-5 out-of-band buffers, so a
numpy array or a large ``bytes`` is never copied into the blob. Buffers of
``SHM_THRESHOLD`` bytes or more go through a file in shared memory instead of
the channel: the sender writes it once, the receiver maps it without copying.

Who owns a shared-memory file:
- the process that writes it, until it is sent;
- sent with ``handoff`` (a call's arguments, a result), the receiver from
  then on: the sender forgets it (if the sender has it mapped itself, it is
  sent as shared instead);
- sent without handoff (a ``put`` value, a result forwarded to another call),
  it stays with its owner and may now be mapped elsewhere, so it is only ever
  removed, never written again.
The owner removes a file, or keeps it in a small per-process pool for reuse,
once no payload and no mapping in the process refers to it. Writing into a
file whose pages already exist costs one copy; a new file must first get
(and zero) every page, which takes longer than the copy itself. Whatever is
left when the runtime stops is removed with its session folder.
"""
from __future__ import annotations

import collections
import io
import linecache
import os
import pickle
import threading
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
    return _temp_dir()


def _temp_dir() -> str:
    import tempfile  # loaded when needed: a worker starts without it
    return tempfile.gettempdir()


def set_session_dir(path: str | None) -> None:
    global _session_dir
    if path != _session_dir:
        _pool.clear()
    _session_dir = path


# -- shared-memory files ----------------------------------------------------

POOL_FILES = 4              # files a process keeps for reuse...
POOL_BYTES = 512 << 20      # ...holding at most this many bytes


class _Pool:
    """Shared-memory files this process owns and nothing maps any more."""

    def __init__(self):
        self.lock = threading.Lock()
        self.files: list = []   # (capacity, path), oldest first

    def take(self, size: int):
        """The path of the smallest pooled file of at least ``size`` bytes, or None."""
        with self.lock:
            best = None
            for entry in self.files:
                if entry[0] >= size and (best is None or entry[0] < best[0]):
                    best = entry
            if best is None:
                return None
            self.files.remove(best)
            return best[1]

    def give(self, path: str) -> None:
        try:
            capacity = os.stat(path).st_size
        except OSError:
            return
        drop = []
        with self.lock:
            if _session_dir is None or os.path.dirname(path) != _session_dir:
                drop.append(path)
            else:
                self.files.append((capacity, path))
                while (len(self.files) > POOL_FILES
                       or sum(c for c, _ in self.files) > POOL_BYTES):
                    drop.append(self.files.pop(0)[1])
        for p in drop:
            _unlink_quietly(p)

    def clear(self) -> None:
        with self.lock:
            files, self.files = self.files, []
        for _, p in files:
            _unlink_quietly(p)


_pool = _Pool()
_owned_lock = threading.Lock()


class _Owned:
    """A file this process owns, and how many things here still use it."""

    __slots__ = ("path", "users", "shared")

    def __init__(self, path: str):
        self.path = path
        self.users = 0
        self.shared = False   # sent without handoff: may be mapped elsewhere


def _use(owned: _Owned) -> None:
    with _owned_lock:
        owned.users += 1


def _unuse(owned: _Owned) -> None:
    with _owned_lock:
        owned.users -= 1
        last = owned.users == 0
    if last:
        if owned.shared:
            _unlink_quietly(owned.path)
        else:
            _pool.give(owned.path)


class ShmBuffer:
    """A buffer that lives in a shared-memory file (only its name travels)."""

    __slots__ = ("path", "size", "handoff", "_owned", "_finalizer", "__weakref__")

    def __init__(self, path: str, size: int, handoff: bool):
        self.path = path
        self.size = size
        # handoff: the receiver becomes the owner (see the module docstring).
        self.handoff = handoff
        self._owned = None
        self._finalizer = None

    @classmethod
    def create(cls, data: memoryview, handoff: bool) -> "ShmBuffer":
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        size = len(view)
        path = _pool.take(size)
        fd = None
        if path is not None:
            try:
                fd = os.open(path, os.O_WRONLY)
            except OSError:
                fd = None
        if fd is None:
            path = os.path.join(_session_dir or _temp_dir(), uuid.uuid4().hex)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            written = 0
            while written < size:
                written += os.write(fd, view[written:])
        except BaseException:
            os.close(fd)
            _unlink_quietly(path)
            raise
        os.close(fd)
        buf = cls(path, size, handoff)
        buf._own()
        return buf

    def _own(self) -> None:
        owned = self._owned = _Owned(self.path)
        _use(owned)
        self._finalizer = weakref.finalize(self, _unuse, owned)

    def describe(self) -> tuple:
        """``(path, size, handoff)`` for a frame that carries this buffer.

        Handed off, the file is the receiver's from now on; sent without
        handoff, it may be mapped elsewhere, so this process never reuses it.
        """
        owned = self._owned
        if owned is None:
            return (self.path, self.size, self.handoff)
        with _owned_lock:
            if self.handoff and owned.users == 1:
                self._finalizer.detach()
                self._owned = None
                return (self.path, self.size, True)
            owned.shared = True   # also when mapped here: keep it, share it
        return (self.path, self.size, False)

    def open(self) -> memoryview:
        """Map the file copy-on-write: zero copies, and writes stay private."""
        import mmap   # here: most workers never map a buffer
        fd = os.open(self.path, os.O_RDONLY)
        try:
            mapped = mmap.mmap(fd, self.size, access=mmap.ACCESS_COPY)
        finally:
            os.close(fd)
        owned = self._owned
        if owned is not None:
            # The file is reused only once this mapping is gone too.
            _use(owned)
            weakref.finalize(mapped, _unuse, owned)
        return memoryview(mapped)

    def __reduce__(self):
        return (_rebuild_shm, self.describe())


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


_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})


def builtin_only(value, scalars=_SCALARS, max_depth: int = 3, max_len: int | None = 16,
                 depth: int = 0) -> bool:
    """Whether ``value`` holds only ``scalars`` in tuples, lists and dicts (at most
    ``max_depth`` deep and ``max_len`` long): then the C pickler writes exactly
    what cloudpickle would, several times faster, and marshal carries it unchanged."""
    kind = type(value)
    if kind in scalars:
        return True
    if depth > max_depth:
        return False
    if kind is tuple or kind is list:
        if max_len is not None and len(value) > max_len:
            return False
        for item in value:
            if type(item) not in scalars and not builtin_only(item, scalars, max_depth,
                                                              max_len, depth + 1):
                return False
        return True
    if kind is dict:
        if max_len is not None and len(value) > max_len:
            return False
        for key, item in value.items():
            if type(key) not in scalars or (type(item) not in scalars and not builtin_only(
                    item, scalars, max_depth, max_len, depth + 1)):
                return False
        return True
    return False


def serialize(value: Any, handoff: bool = False) -> Payload:
    """Pickle ``value``; raises whatever pickling raises, in the caller's thread."""
    if builtin_only(value):
        return Payload(pickle.dumps(value, protocol=PROTOCOL))
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


class LazyDefinition:
    """A class's or function's payload, pickled once, on first use (thread-safe)."""

    def __init__(self, obj, payload: Payload | None = None):
        self._obj = obj
        self._payload = payload
        self._lock = threading.RLock()
        self._making = False

    @property
    def value(self):
        """The class or function itself (a backend that pickles it its own way, Ray, wants it)."""
        return self._obj

    @classmethod
    def of_payload(cls, obj, payload: Payload) -> "LazyDefinition":
        """The definition of ``obj``, already pickled as ``payload`` (it arrived so)."""
        return cls(obj, payload)

    def payload(self) -> Payload:
        with self._lock:
            if self._payload is None:
                if self._making:
                    raise TypeError(f"{getattr(self._obj, '__qualname__', self._obj)} refers "
                                    f"to an actor handle of its own class in its definition; "
                                    f"pass the handle as an argument instead")
                self._making = True
                try:
                    self._payload = serialize_definition(self._obj)
                finally:
                    self._making = False
            return self._payload


def deserialize_definition(payload: Payload):
    obj, sources = deserialize(payload)
    for filename, lines in sources.items():
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    return obj


class DepArg:
    """Placeholder for a top-level ObjectRef argument, filled in before the call runs."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __reduce__(self):
        return (DepArg, (self.index,))


NONE_PAYLOAD = serialize(None)
EMPTY_ARGS_PAYLOAD = serialize(((), {}))
