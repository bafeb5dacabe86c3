"""The floor: what two bare Python processes on a socketpair manage.

The echo server is a fresh interpreter that reads length-prefixed frames,
unpickles each and sends it back pickled, one ``send`` per reply: the least
an RPC between two Python processes must do. The task rows use
``concurrent.futures.ProcessPoolExecutor`` instead, and the sleep row plain
``asyncio`` in one process.
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


def run(rows, cfg) -> dict:
    reps, sync_n, pipe_n = cfg["reps"], cfg["sync_n"], cfg["pipe_n"]
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

    echo = Echo()
    echo.send(0)
    echo.recv()

    def sync_calls():
        samples = []
        for _ in range(reps + 1):
            t = time.perf_counter()
            for i in range(sync_n):
                echo.send((i, "f", (1,)))
                echo.recv()
            samples.append(sync_n / (time.perf_counter() - t))
        return samples[1:]

    def pipelined():
        samples = []
        for _ in range(reps + 1):
            t = time.perf_counter()
            # A second thread sends while this one reads, as a runtime's I/O would.
            sender = threading.Thread(target=lambda: [echo.send((i, "f", (1,)))
                                                      for i in range(pipe_n)])
            sender.start()
            for _ in range(pipe_n):
                echo.recv()
            sender.join()
            samples.append(pipe_n / (time.perf_counter() - t))
        return samples[1:]

    for kind in ("threaded", "mc16", "async", "group", "group_async"):
        if f"sync_{kind}" in rows:
            out[f"sync_{kind}"] = sync_calls()
        if f"pipe_{kind}" in rows:
            out[f"pipe_{kind}"] = pipelined()

    if "await_one" in rows or "await_gather" in rows:
        out.update(_await_rows(rows, reps, sync_n, pipe_n))

    if "array" in rows:
        n = cfg["array_bytes"]
        payload = b"R" + os.urandom(n - 1)
        into = bytearray(n)
        samples = []
        for _ in range(reps + 1):
            t = time.perf_counter()
            # The server echoes only once it has read the whole frame.
            echo.sock.sendall(_HEAD.pack(n))
            echo.sock.sendall(payload)
            echo._read_exact(8)
            echo._read_exact(n, into)
            samples.append(2 * n / (time.perf_counter() - t) / 1e9)
        if bytes(into[:64]) != payload[:64]:
            raise AssertionError("the echo came back different")
        out["array"] = samples[1:]
    echo.close()

    if "task_sync" in rows or "task_pipe" in rows:
        with task_pool() as pool:
            for row in ("task_sync", "task_pipe"):
                if row in rows:
                    out[row] = [task_rate(pool, row, cfg) for _ in range(reps + 1)][1:]

    if "sleep" in rows:
        async def sleeps():
            t = time.perf_counter()
            await asyncio.gather(*[asyncio.sleep(0.05) for _ in range(1000)])
            return time.perf_counter() - t
        out["sleep"] = [asyncio.run(sleeps()) for _ in range(reps)]

    import _bars
    out.update(_bars.run_floor(rows, cfg))
    return out


def _await_rows(rows, reps, sync_n, pipe_n) -> dict:
    """An echo driven from asyncio: one await at a time, and a gather."""
    out = {}
    echo = Echo()
    sock = echo.sock

    async def main():
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        waiters: dict = {}

        async def read_replies():
            while True:
                head = await reader.readexactly(8)
                msg = pickle.loads(await reader.readexactly(_HEAD.unpack(head)[0]))
                waiters.pop(msg[0]).set_result(msg)

        async def call(i):
            fut = loop.create_future()
            waiters[i] = fut
            body = pickle.dumps((i, "f", (1,)), protocol=5)
            writer.write(_HEAD.pack(len(body)) + body)
            return await fut

        read_task = asyncio.create_task(read_replies())
        for row, n in (("await_one", sync_n), ("await_gather", pipe_n)):
            if row not in rows:
                continue
            samples = []
            for _ in range(reps + 1):
                t = time.perf_counter()
                if row == "await_one":
                    for i in range(n):
                        await call(i)
                else:
                    await asyncio.gather(*[call(i) for i in range(n)])
                samples.append(n / (time.perf_counter() - t))
            out[row] = samples[1:]
        read_task.cancel()
        writer.close()

    asyncio.run(main())
    echo.proc.wait(10)
    return out
