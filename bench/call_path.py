"""Where the time of one sync call goes: ``get(h.f.remote(1))`` cut into five stretches.

    python bench/call_path.py [--calls 3000] [--cpu]

Each stretch is measured with time.monotonic() stamps, which are the same
clock in the driver and in the worker (one machine):

    submit      .remote() called → its frame about to be written (caller thread)
    to worker   → the worker's "start" stamp (the write, a worker thread wakes and reads)
    run         the worker's start → end stamps (decoding arguments, the method, encoding)
    to driver   the worker's end stamp → the driver handles the result (the thread
                blocked in get() reads it, on Linux; elsewhere the I/O thread)
    to caller   result handled → get() returns in the caller

It wraps two driver methods to take the stamps (the result handler and the
connection's send), so run it on its own, not as part of bench.py.

``--cpu`` (Linux) measures instead what a sync call costs the machine, which a shared
machine's load sways less than the time: the CPU time of the driver's and the worker's
threads per call, and how often they went to sleep (voluntary context switches: each is a
wake-up too), from /proc/PID/task/*.
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import time

STRETCHES = ("submit", "to worker", "run", "to driver", "to caller", "total")


def measure(kind: str, calls: int) -> list:
    import jupyter_actors as ray
    from jupyter_actors._backend.local import connection, results

    sent, handled = {}, {}
    plain_send, plain_ok = connection.Connection.send, results.ResultHandlers.ok
    plain_send_call = connection.Connection.send_call

    def send(self, message, parts=None):
        if message and type(message[0]) is int:
            sent.setdefault(message[0], time.monotonic())
        plain_send(self, message, parts)

    def send_call(self, record):  # most calls are sent this way
        sent.setdefault(record.call_id, time.monotonic())
        return plain_send_call(self, record)

    def ok(self, conn, message):
        handled[message.call_id] = time.monotonic()
        plain_ok(self, conn, message)

    connection.Connection.send, results.ResultHandlers.ok = send, ok
    connection.Connection.send_call = send_call
    try:
        ray.init()

        @ray.remote
        class Threaded:
            def f(self, x=None):
                return x

        @ray.remote
        class Async:
            async def f(self, x=None):
                return x

        cls = Async if kind == "async" else Threaded
        actor = (cls.options(max_concurrency=16) if kind == "mc16" else cls).remote()
        rows = []
        for i in range(calls + calls // 10):  # the first tenth warms up
            t0 = time.monotonic()
            ref = actor.f.remote(1)
            ray.get(ref)
            t4 = time.monotonic()
            record = ref._owner
            t1, t3 = sent.pop(record.call_id, None), handled.pop(record.call_id, None)
            if i >= calls // 10 and None not in (t1, t3, record.started, record.finished):
                rows.append((t1 - t0, record.started - t1, record.finished - record.started,
                             t3 - record.finished, t4 - t3, t4 - t0))
        return rows
    finally:
        ray.shutdown()
        connection.Connection.send, results.ResultHandlers.ok = plain_send, plain_ok
        connection.Connection.send_call = plain_send_call


def _threads(pid: int) -> dict:
    """thread id -> (CPU nanoseconds, voluntary context switches) of a process's threads."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/schedstat") as f:
                cpu = int(f.read().split()[0])
            with open(f"{task}/status") as f:
                status = f.read()
        except OSError:
            continue  # the thread ended
        out[task] = (cpu, int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0]))
    return out


def _per_call(before: dict, after: dict, calls: int) -> tuple:
    """(CPU µs, sleeps) per call over the threads alive at both ends, and the busiest one."""
    rows = [((after[t][0] - before[t][0]) / calls / 1e3, (after[t][1] - before[t][1]) / calls)
            for t in after if t in before]
    return sum(r[0] for r in rows), sum(r[1] for r in rows), max(rows)


def cpu_per_call(kind: str, calls: int) -> tuple:
    import jupyter_actors as ray
    ray.init()
    try:
        @ray.remote
        class Threaded:
            def f(self, x=None):
                return x

            def pid(self):
                return os.getpid()

        @ray.remote
        class Async:
            async def f(self, x=None):
                return x

            def pid(self):
                return os.getpid()

        cls = Async if kind == "async" else Threaded
        actor = (cls.options(max_concurrency=16) if kind == "mc16" else cls).remote()
        worker = ray.get(actor.pid.remote())
        for _ in range(calls // 10):  # warm up
            ray.get(actor.f.remote(1))
        before = _threads(os.getpid()), _threads(worker)
        t = time.perf_counter()
        for _ in range(calls):
            ray.get(actor.f.remote(1))
        wall = (time.perf_counter() - t) / calls * 1e6
        after = _threads(os.getpid()), _threads(worker)
        return wall, _per_call(before[0], after[0], calls), _per_call(before[1], after[1], calls)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--cpu", action="store_true",
                        help="CPU time and sleeps per call of each process (Linux)")
    args = parser.parse_args()
    if args.cpu:
        print("per call: round trip; CPU µs and sleeps of the driver's threads, of the worker's "
              "threads (in brackets: the busiest thread)")
        for kind in ("threaded", "mc16", "async"):
            wall, (dc, ds, dmax), (wc, ws, wmax) = cpu_per_call(kind, args.calls)
            print(f"{kind:9s} {wall:6.1f} µs   driver {dc:5.1f} µs {ds:4.2f} sleeps "
                  f"({dmax[0]:5.1f} µs {dmax[1]:4.2f})   worker {wc:5.1f} µs {ws:4.2f} sleeps "
                  f"({wmax[0]:5.1f} µs {wmax[1]:4.2f})")
        return
    print("median microseconds per call, " + ", ".join(STRETCHES))
    for kind in ("threaded", "mc16", "async"):
        rows = measure(kind, args.calls)
        medians = [statistics.median(r[i] for r in rows) * 1e6 for i in range(len(STRETCHES))]
        print(f"{kind:9s} " + "  ".join(f"{name} {m:6.1f}" for name, m in zip(STRETCHES, medians)))


if __name__ == "__main__":
    main()
