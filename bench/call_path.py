"""Where the time of one sync call goes: ``get(h.f.remote(1))`` cut into five stretches.

    python bench/call_path.py [--calls 3000]

Each stretch is measured with time.monotonic() stamps, which are the same
clock in the driver and in the worker (one machine):

    submit      .remote() called → its frame about to be written (caller thread)
    to worker   → the worker's "start" stamp (the write, a worker thread wakes and reads)
    run         the worker's start → end stamps (decoding arguments, the method, encoding)
    to driver   the worker's end stamp → the driver's I/O thread handles the result
    to caller   result handled → get() returns in the caller (the caller thread wakes)

It wraps two driver methods to take the stamps (the result handler and the
connection's send), so run it on its own, not as part of bench.py.
"""
from __future__ import annotations

import argparse
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

    def send_call(self, call_id, *rest):  # most calls are sent this way
        sent.setdefault(call_id, time.monotonic())
        return plain_send_call(self, call_id, *rest)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    print("median microseconds per call, " + ", ".join(STRETCHES))
    for kind in ("threaded", "mc16", "async"):
        rows = measure(kind, args.calls)
        medians = [statistics.median(r[i] for r in rows) * 1e6 for i in range(len(STRETCHES))]
        print(f"{kind:9s} " + "  ".join(f"{name} {m:6.1f}" for name, m in zip(STRETCHES, medians)))


if __name__ == "__main__":
    main()
