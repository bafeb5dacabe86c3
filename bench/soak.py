"""Soak: 100,000 calls that pass refs and handles between three actors; memory must stay flat.

    python bench/soak.py [--calls 100000] [--batch 1000]

Each call hands actor A a fresh put() ref inside a list and a handle to B; A
passes both on to B (an actor calling an actor), B reads the value. Every
batch also creates a short-lived actor whose only handle goes to C and is
dropped there, so unnamed actors must exit once no process holds them. Prints
the driver's and the workers' memory (RSS and unique memory, USS), how many
refs the driver still lends to workers, and how many actors are alive, as the
calls go.
"""
from __future__ import annotations

import argparse
import os
import time

import psutil

import jupyter_actors as ray
from jupyter_actors._api import session
from jupyter_actors._trace import tracer


class _Pid:
    def pid(self):
        return os.getpid()


@ray.remote
class Forwarder(_Pid):
    def forward(self, items, other):
        return ray.get(other.take.remote(items))


@ray.remote
class Taker(_Pid):
    def take(self, items):
        return sum(ray.get(r) for r in items)


@ray.remote
class Keeper(_Pid):
    def hold_and_drop(self, handle):
        kept = handle
        return ray.get(kept.ping.remote())


@ray.remote
class ShortLived:
    def ping(self):
        return True


def _mib(n: int) -> str:
    return f"{n / 2**20:7.1f}"


def snapshot(label: str, workers: list) -> str:
    me = psutil.Process()
    uss = [psutil.Process(p).memory_full_info().uss for p in workers]
    runtime = session.backend().runtime
    lent = len([r for r in runtime.lent.refs if r not in runtime.lent.pinned])
    alive = sum(1 for row in session.backend().describe_actors() if row["alive"])
    return (f"{label:>10}  driver RSS {_mib(me.memory_info().rss)} MiB  USS "
            f"{_mib(me.memory_full_info().uss)} MiB  workers USS "
            f"{' / '.join(_mib(u).strip() for u in uss)} MiB  lent refs {lent:5d}  "
            f"actors alive {alive}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--trace", type=int, default=10_000,
                        help="calls the trace remembers (the default 200,000 fills ~200 MiB)")
    args = parser.parse_args()
    # The trace (for timelines) keeps the last calls on purpose; a small one lets
    # this run show the rest of the driver's memory staying flat.
    tracer.resize(args.trace)
    ray.init()
    a, b, c = Forwarder.remote(), Taker.remote(), Keeper.remote()
    workers = ray.get([x.pid.remote() for x in (a, b, c)])
    print(snapshot("start", workers), flush=True)
    t0 = time.perf_counter()
    done = 0
    marks = {args.calls // 10, args.calls // 4, args.calls // 2, 3 * args.calls // 4, args.calls}
    while done < args.calls:
        n = min(args.batch, args.calls - done)
        refs = [a.forward.remote([ray.put(i)], b) for i in range(done, done + n)]
        total = sum(ray.get(refs))
        assert total == sum(range(done, done + n)), "a value went wrong"
        assert ray.get(c.hold_and_drop.remote(ShortLived.remote()))
        done += n
        if done in marks:
            rate = done / (time.perf_counter() - t0)
            print(snapshot(f"{done:,}", workers) + f"  ({rate:,.0f} calls/s)", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
