"""Workloads where actors and tasks call each other (run against jupyter_actors or Ray).

    a2a_sync     an actor calling another: get(other.f.remote(1)) in a loop, inside the actor
    a2a_pipe     the same, 1000 calls submitted, then one get of the list
    task_fanout  a task that submits 10 tasks and gets them (outer tasks per second)
    pool_map     ActorPool.map over 1000 items on 2 actors (items per second)
    queue        a Queue: a producer task puts 10,000 items, a consumer actor gets them
"""
from __future__ import annotations

import importlib
import time


def _define(ray):
    @ray.remote
    class Echo:
        def f(self, x=None):
            return x

    @ray.remote
    class Caller:
        def __init__(self, other):
            self.other = other

        def sync(self, n):
            t = time.perf_counter()
            for _ in range(n):
                ray.get(self.other.f.remote(1))
            return n / (time.perf_counter() - t)

        def pipelined(self, n):
            t = time.perf_counter()
            ray.get([self.other.f.remote(1) for _ in range(n)])
            return n / (time.perf_counter() - t)

    @ray.remote
    def leaf(x):
        return x

    @ray.remote
    def fan_out(k):
        return sum(ray.get([leaf.remote(i) for i in range(k)]))

    @ray.remote
    def produce(q, n):
        for i in range(n):
            q.put(i)
        return n

    @ray.remote
    class Consume:
        def drain(self, q, n):
            for _ in range(n):
                q.get()
            return n

    return Echo, Caller, fan_out, produce, Consume


ROWS = ("a2a_sync", "a2a_pipe", "task_fanout", "pool_map", "queue")


def run(ray, rows, cfg) -> dict:
    """{row: [samples]} for the rows of this module in ``rows``; the runtime is running."""
    wanted = [r for r in ROWS if r in rows]
    if not wanted:
        return {}
    util = importlib.import_module(ray.__name__ + ".util")
    queue_mod = importlib.import_module(ray.__name__ + ".util.queue")
    Echo, Caller, fan_out, produce, Consume = _define(ray)
    reps, sync_n, pipe_n = cfg["reps"], cfg["sync_n"], cfg["pipe_n"]
    out: dict = {}
    caller = Caller.remote(Echo.remote())
    ray.get(caller.sync.remote(10))
    if "a2a_sync" in rows:
        out["a2a_sync"] = [ray.get(caller.sync.remote(sync_n)) for _ in range(reps + 1)][1:]
    if "a2a_pipe" in rows:
        out["a2a_pipe"] = [ray.get(caller.pipelined.remote(pipe_n)) for _ in range(reps + 1)][1:]
    if "task_fanout" in rows:
        n = max(sync_n // 10, 20)
        samples = []
        for _ in range(reps + 1):
            t = time.perf_counter()
            ray.get([fan_out.remote(10) for _ in range(n)])
            samples.append(n / (time.perf_counter() - t))
        out["task_fanout"] = samples[1:]
    if "pool_map" in rows:
        pool = util.ActorPool([Echo.remote(), Echo.remote()])
        samples = []
        for _ in range(reps + 1):
            t = time.perf_counter()
            list(pool.map(lambda a, v: a.f.remote(v), range(1000)))
            samples.append(1000 / (time.perf_counter() - t))
        out["pool_map"] = samples[1:]
    if "queue" in rows:
        n = 10_000 if cfg["sync_n"] >= 1000 else 2_000
        samples = []
        for _ in range(reps + 1):
            q = queue_mod.Queue()
            consumer = Consume.remote()
            ray.get(consumer.drain.remote(q, 0))
            t = time.perf_counter()
            drained = consumer.drain.remote(q, n)
            ray.get([produce.remote(q, n), drained])
            samples.append(n / (time.perf_counter() - t))
            q.shutdown()
        out["queue"] = samples[1:]
    return out
