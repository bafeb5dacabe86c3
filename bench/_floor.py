"""The floor: what two bare Python processes on a socketpair manage.

The echo server is a fresh interpreter that reads length-prefixed frames,
unpickles each and sends it back pickled, one ``send`` per reply: the least
an RPC between two Python processes must do. The task rows use
``concurrent.futures.ProcessPoolExecutor`` instead, and the sleep row plain
``asyncio`` in one process.

``Sampler`` takes one sample of a call-rate row at a time: ``run`` (the floor's
own column) repeats it, and bench.py's turn-about rows call it from our column
between our samples, so the floor is measured by the same code either way.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time

_HEAD = struct.Struct("<Q")

SERVER = r"""
import pickle, socket, struct, sys
head = struct.Struct("<Q")
sock = socket.socket(fileno=int(sys.argv[1]))
buf = bytearray(1 << 16)
start = end = 0
while True:
    if end == len(buf):
        if start:  # move the unread part to the front
            buf[:end - start] = buf[start:end]
            start, end = 0, end - start
        else:
            buf.extend(bytes(len(buf)))
    with memoryview(buf) as view:
        n = sock.recv_into(view[end:])
    if not n:
        break
    end += n
    while end - start >= 8:
        (size,) = head.unpack_from(buf, start)
        if end - start - 8 < size:
            if 8 + size > len(buf):
                buf.extend(bytes(8 + size - len(buf) + start))
            break
        frame_start, start = start, start + 8 + size
        if buf[frame_start + 8] == 0x52:   # b"R": raw bytes, echoed as they are
            with memoryview(buf) as view:
                sock.sendall(view[frame_start:start])
        else:
            reply = pickle.dumps(pickle.loads(buf[frame_start + 8:start]), protocol=5)
            sock.sendall(head.pack(len(reply)) + reply)
    if start == end:
        start = end = 0
"""


class Echo:
    """A fresh echo process on a socketpair."""

    def __init__(self):
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(child.fileno())],
                                     pass_fds=(child.fileno(),))
        child.close()
        self.sock = parent
        self.buf = bytearray(1 << 16)
        self.start = self.end = 0

    def send(self, obj) -> None:
        body = pickle.dumps(obj, protocol=5)
        self.sock.sendall(_HEAD.pack(len(body)) + body)

    def _fill(self, need: int) -> None:
        """Receive until ``need`` unread bytes are buffered (into one reused buffer)."""
        buf = self.buf
        while self.end - self.start < need:
            if len(buf) - self.start < need:
                buf[:self.end - self.start] = buf[self.start:self.end]
                self.end -= self.start
                self.start = 0
                if len(buf) < need:
                    buf.extend(bytes(need - len(buf)))
            with memoryview(buf) as view:
                n = self.sock.recv_into(view[self.end:])
            if not n:
                raise EOFError
            self.end += n

    def _read_exact(self, n: int, into=None):
        out = into if into is not None else bytearray(n)
        got = min(n, self.end - self.start)
        out[:got] = self.buf[self.start:self.start + got]
        self.start += got
        with memoryview(out) as view:
            while got < n:
                r = self.sock.recv_into(view[got:])
                if not r:
                    raise EOFError
                got += r
        return out

    def recv(self):
        self._fill(8)
        (n,) = _HEAD.unpack_from(self.buf, self.start)
        self._fill(8 + n)
        msg = pickle.loads(self.buf[self.start + 8:self.start + 8 + n])
        self.start += 8 + n
        if self.start == self.end:
            self.start = self.end = 0
        return msg

    def close(self) -> None:
        self.sock.close()
        self.proc.wait(10)


def _task(x=None):
    return x


def task_pool() -> concurrent.futures.ProcessPoolExecutor:
    """The task rows' floor: a ProcessPoolExecutor with a worker per core, warmed up.

    Its workers are started at once (fork, as ``ProcessPoolExecutor`` does on Linux
    before Python 3.14): made in a process that has started no threads of its own.
    """
    pool = concurrent.futures.ProcessPoolExecutor(os.cpu_count())
    pool.submit(_task, 1).result()
    return pool


def task_rate(pool, row: str, cfg) -> float:
    """One sample of ``task_sync`` (one call at a time) or ``task_pipe`` (all submitted,
    then waited for) on ``pool``: calls per second."""
    if row == "task_sync":
        n = cfg["sync_n"]
        t = time.perf_counter()
        for _ in range(n):
            pool.submit(_task, 1).result()
    else:
        n = cfg["pipe_n"]
        t = time.perf_counter()
        futures = [pool.submit(_task, 1) for _ in range(n)]
        for f in futures:
            f.result()
    return n / (time.perf_counter() - t)


class AsyncEcho:
    """An echo process driven from asyncio streams, on an event loop of its own that
    runs only while a sample is taken (so samples can be taken between other work)."""

    def __init__(self):
        self.echo = Echo()
        self.loop = asyncio.new_event_loop()
        self.reader, self.writer = self.loop.run_until_complete(
            asyncio.open_unix_connection(sock=self.echo.sock))
        self.waiters: dict = {}
        self.reading = self.loop.create_task(self._read_replies())

    async def _read_replies(self):
        reader, waiters = self.reader, self.waiters
        while True:
            head = await reader.readexactly(8)
            msg = pickle.loads(await reader.readexactly(_HEAD.unpack(head)[0]))
            waiters.pop(msg[0]).set_result(msg)

    async def _call(self, i):
        fut = self.loop.create_future()
        self.waiters[i] = fut
        body = pickle.dumps((i, "f", (1,)), protocol=5)
        self.writer.write(_HEAD.pack(len(body)) + body)
        return await fut

    async def _sample(self, row: str, n: int) -> float:
        t = time.perf_counter()
        if row == "await_one":
            for i in range(n):
                await self._call(i)
        else:
            await asyncio.gather(*[self._call(i) for i in range(n)])
        return n / (time.perf_counter() - t)

    def rate(self, row: str, n: int) -> float:
        """One sample of ``await_one`` (n awaits one by one) or ``await_gather`` (a
        gather of n): calls per second."""
        return self.loop.run_until_complete(self._sample(row, n))

    def close(self) -> None:
        self.reading.cancel()
        self.writer.close()
        self.loop.run_until_complete(asyncio.gather(self.reading, return_exceptions=True))
        self.loop.close()
        self.echo.proc.wait(10)


# The rows Sampler takes one sample of at a time; their floor is one of these.
ECHO_ROWS = tuple(f"{mode}_{kind}" for kind in ("threaded", "mc16", "async", "group",
                                                "group_async") for mode in ("sync", "pipe"))
AWAIT_ROWS = ("await_one", "await_gather")
TASK_ROWS = ("task_sync", "task_pipe")
BAR_ROWS = ("bar_auto", "bar_ray")     # _bars.ROWS: plain tqdm in this process
SAMPLED_ROWS = (*ECHO_ROWS, *AWAIT_ROWS, *TASK_ROWS, "sleep", *BAR_ROWS)


class Sampler:
    """The floor of the call-rate rows (SAMPLED_ROWS), one sample per ``sample(row)``.

    The floor's column takes its samples of these rows with it, and bench.py's
    turn-about rows take theirs with the same object inside our column, between
    ours. Its processes (an echo server, a ProcessPoolExecutor) are started at
    the first sample that needs them and kept until ``close()``; the first
    sample of each row is a warm-up, as everywhere in the bench.
    """

    def __init__(self, cfg, pool=None):
        self.cfg = cfg
        self.pool = pool          # give one made before any thread started (task_pool)
        self._echo = None
        self._await = None

    def echo(self) -> Echo:
        if self._echo is None:
            self._echo = Echo()
            self._echo.send(0)
            self._echo.recv()
        return self._echo

    def sample(self, row: str) -> float:
        cfg = self.cfg
        if row in ECHO_ROWS:
            return (self._sync if row.startswith("sync_") else self._pipelined)()
        if row in AWAIT_ROWS:
            if self._await is None:
                self._await = AsyncEcho()
            return self._await.rate(row, cfg["sync_n" if row == "await_one" else "pipe_n"])
        if row in TASK_ROWS:
            if self.pool is None:
                self.pool = task_pool()
            return task_rate(self.pool, row, cfg)
        if row == "sleep":
            return asyncio.run(_sleeps())
        if row in BAR_ROWS:
            import _bars
            return _bars.floor_sample(cfg)
        raise ValueError(f"no floor sampler for row {row!r}")

    def _sync(self) -> float:
        echo, n = self.echo(), self.cfg["sync_n"]
        t = time.perf_counter()
        for i in range(n):
            echo.send((i, "f", (1,)))
            echo.recv()
        return n / (time.perf_counter() - t)

    def _pipelined(self) -> float:
        echo, n = self.echo(), self.cfg["pipe_n"]
        t = time.perf_counter()
        # A second thread sends while this one reads, as a runtime's I/O would.
        sender = threading.Thread(target=lambda: [echo.send((i, "f", (1,))) for i in range(n)])
        sender.start()
        for _ in range(n):
            echo.recv()
        sender.join()
        return n / (time.perf_counter() - t)

    def close(self) -> None:
        if self._echo is not None:
            self._echo.close()
        if self._await is not None:
            self._await.close()
        if self.pool is not None:
            self.pool.shutdown()
        self._echo = self._await = self.pool = None


async def _sleeps() -> float:
    """The sleep row's floor: 1000 concurrent asyncio.sleep(0.05) in this process."""
    t = time.perf_counter()
    await asyncio.gather(*[asyncio.sleep(0.05) for _ in range(1000)])
    return time.perf_counter() - t


def run(rows, cfg) -> dict:
    reps = cfg["reps"]
    out: dict = {}

    if "cold" in rows:
        # What any runtime's first worker pays at least: start Python, import cloudpickle.
        import _cold
        out["cold"] = _cold.floor_samples(reps)

    if "create" in rows:
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            e = Echo()
            e.send((0, "f", (1,)))
            e.recv()
            samples.append(time.perf_counter() - t)
            e.close()
        out["create"] = samples

    if "restart" in rows:
        # A restart's floor: kill -9 a bare echo process, start another, get its first echo.
        old = Echo()
        old.send(0)
        old.recv()
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            old.proc.kill()
            new = Echo()
            new.send((0, "f", (1,)))
            new.recv()
            samples.append(time.perf_counter() - t)
            old.close()
            old = new
        old.close()
        out["restart"] = samples

    sampler = Sampler(cfg)
    try:
        for row in (*ECHO_ROWS, *AWAIT_ROWS):
            if row in rows:
                out[row] = [sampler.sample(row) for _ in range(reps + 1)][1:]
        if "array" in rows:
            out["array"] = _array(sampler.echo(), cfg)
        for row in (*TASK_ROWS, "sleep"):
            if row in rows:
                out[row] = [sampler.sample(row) for _ in range(reps + 1)][1:]
    finally:
        sampler.close()

    import _bars
    out.update(_bars.run_floor(rows, cfg))
    return out


def _array(echo: Echo, cfg) -> list:
    """The array row: 100 MiB of raw bytes through the echo and back, in GB/s."""
    n = cfg["array_bytes"]
    payload = b"R" + os.urandom(n - 1)
    into = bytearray(n)
    samples = []
    for _ in range(cfg["reps"] + 1):
        t = time.perf_counter()
        # The server echoes only once it has read the whole frame.
        echo.sock.sendall(_HEAD.pack(n))
        echo.sock.sendall(payload)
        echo._read_exact(8)
        echo._read_exact(n, into)
        samples.append(2 * n / (time.perf_counter() - t) / 1e9)
    if bytes(into[:64]) != payload[:64]:
        raise AssertionError("the echo came back different")
    return samples[1:]
