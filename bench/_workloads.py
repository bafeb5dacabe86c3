"""The benchmark's workloads, written once against Ray's API.

``run(ray, rows, cfg)`` runs them with ``ray`` being either ``jupyter_actors``
or Ray itself, so both columns measure exactly the same code. Each row returns
a list of samples (one per repetition); ``bench.py`` reports their median.
"""
from __future__ import annotations

import asyncio
import time

import numpy as np


def _define(ray):
    @ray.remote
    class Threaded:
        def f(self, x=None):
            return x

    @ray.remote
    class Async:
        async def f(self, x=None):
            return x

        async def sleep(self, seconds):
            await asyncio.sleep(seconds)

    @ray.remote
    def task(x=None):
        return x

    # Concurrency groups: the same echo, in a group of one.
    @ray.remote(concurrency_groups={"io": 1})
    class GroupedThreaded:
        @ray.method(concurrency_group="io")
        def f(self, x=None):
            return x

    @ray.remote(concurrency_groups={"io": 1})
    class GroupedAsync:
        @ray.method(concurrency_group="io")
        async def f(self, x=None):
            return x

    return Threaded, Async, task, GroupedThreaded, GroupedAsync


def _rate(n, seconds):
    return n / seconds


def _scale_rows(ray, Threaded, rows) -> dict:
    """scale_N: N actors created and each one's first call answered, time per actor;
    memory: the unique memory (USS) of an idle actor's process, in MiB."""
    import os

    import psutil

    @ray.remote
    class Idle:
        def pid(self):
            return os.getpid()

    out = {}
    if "memory" in rows:
        actors = [Idle.remote() for _ in range(3)]
        pids = ray.get([a.pid.remote() for a in actors])
        time.sleep(1.0)  # let start-up work settle
        out["memory"] = [psutil.Process(p).memory_full_info().uss / 2**20 for p in pids]
        for a in actors:
            ray.kill(a)
    for row in ("scale_10", "scale_100", "scale_200", "scale_1000"):
        if row not in rows:
            continue
        n = int(row.split("_")[1])
        t = time.perf_counter()
        actors = [Threaded.remote() for _ in range(n)]
        ray.get([a.f.remote(1) for a in actors])
        out[row] = [(time.perf_counter() - t) / n]
        for a in actors:
            ray.kill(a)
        del actors
        time.sleep(1.0)  # let the killed actors go before the next size
    return out


def turn_about(ours, floor, n: int, most: int = 0, seconds: float = 0.0) -> tuple:
    """(samples of ``ours()``, as many of ``floor()``), taken turn about after a warm-up
    of each: ours first in even rounds, the floor first in odd ones, so that neither
    always runs right after the other (warm caches, a core just woken).

    At least ``n`` rounds; rounds whose samples are brief go on, up to ``most``, until
    they took ``seconds`` in all, ending on an odd count: a pipelined sample is a few
    milliseconds, at the mercy of one time slice."""
    ours(), floor()
    ours_samples, floor_samples = [], []
    start = time.perf_counter()
    i = 0
    while i < n or (i < most and (i % 2 == 0 or time.perf_counter() - start < seconds)):
        if i % 2:
            floor_samples.append(floor())
            ours_samples.append(ours())
        else:
            ours_samples.append(ours())
            floor_samples.append(floor())
        i += 1
    return ours_samples, floor_samples


def run(ray, rows, cfg, init_kwargs=None):
    """Measure ``rows`` (names from ``bench.ROWS``); returns {row: [samples]}.

    A row in ``cfg["paired"]`` also returns the floor's samples as "floor:ROW",
    taken here turn about with ours (see bench.PAIRED)."""
    reps, sync_n, pipe_n = cfg["reps"], cfg["sync_n"], cfg["pipe_n"]
    out: dict = {}
    paired = [r for r in cfg.get("paired", ()) if r in rows]
    paired_reps = max(reps, cfg.get("min_paired", reps))
    floor = None
    if any(r != "cold" for r in paired):
        import _floor
        # The pool is made before init(): forked from a process without threads.
        pool = _floor.task_pool() if any(r in _floor.TASK_ROWS for r in paired) else None
        floor = _floor.Sampler(cfg, pool)
    t0 = time.perf_counter()
    info = ray.init(**(init_kwargs or {}))
    t1 = time.perf_counter()
    if "init" in rows:
        out["init"] = [t1 - t0]
        if isinstance(info, dict) and "ray_init_seconds" in info:
            # Our API on Ray: what init() spent outside ray.init itself.
            out["init_layer"] = [(t1 - t0) - info["ray_init_seconds"]]
    Threaded, Async, task, GroupedThreaded, GroupedAsync = _define(ray)
    first = Threaded.remote()
    ray.get(first.f.remote(1))
    if "cold" in rows:  # each sample a fresh driver process of its own
        import _cold
        lib = "ours" if ray.__name__ == "jupyter_actors" else "ray"
        if "cold" in paired:
            out["cold"], out["floor:cold"] = _cold.paired_samples(lib, paired_reps)
        else:
            out["cold"] = _cold.samples(lib, reps)

    if "create" in rows:
        samples = []
        for _ in range(reps):
            # Let pre-started workers (both runtimes keep some) come back up,
            # so each sample is one creation on a warmed-up runtime.
            time.sleep(cfg["create_pause"])
            t = time.perf_counter()
            h = Threaded.remote()
            ray.get(h.f.remote(1))
            samples.append(time.perf_counter() - t)
            ray.kill(h)
            del h
        out["create"] = samples

    actors = {}

    def actor(kind):
        if kind not in actors:
            if kind == "threaded":
                actors[kind] = first
            elif kind == "mc16":
                actors[kind] = Threaded.options(max_concurrency=16).remote()
            elif kind == "group":
                actors[kind] = GroupedThreaded.remote()
            elif kind == "group_async":
                actors[kind] = GroupedAsync.remote()
            else:
                actors[kind] = Async.remote()
            ray.get(actors[kind].f.remote(1))
        return actors[kind]

    def measure(row, sample):
        """Our samples of ``row`` (``sample()`` takes one); the first, a warm-up, dropped.
        A paired row takes the floor's beside them."""
        if row in paired:
            out[row], out[f"floor:{row}"] = turn_about(
                sample, lambda: floor.sample(row), paired_reps, cfg.get("max_paired", 0),
                cfg.get("paired_seconds", 0.0))
        else:
            out[row] = [sample() for _ in range(reps + 1)][1:]

    def sync_calls(call):
        def sample():
            t = time.perf_counter()
            for _ in range(sync_n):
                ray.get(call(1))
            return _rate(sync_n, time.perf_counter() - t)
        return sample

    def pipelined(call):
        def sample():
            t = time.perf_counter()
            ray.get([call(1) for _ in range(pipe_n)])
            return _rate(pipe_n, time.perf_counter() - t)
        return sample

    for kind in ("threaded", "mc16", "async", "group", "group_async"):
        if f"sync_{kind}" in rows:
            measure(f"sync_{kind}", sync_calls(actor(kind).f.remote))
        if f"pipe_{kind}" in rows:
            measure(f"pipe_{kind}", pipelined(actor(kind).f.remote))

    for row, calls in (("task_sync", sync_calls), ("task_pipe", pipelined)):
        if row in rows:
            measure(row, calls(task.remote))

    if "await_one" in rows or "await_gather" in rows:
        h = actor("threaded")

        async def one_by_one():
            t = time.perf_counter()
            for _ in range(sync_n):
                await h.f.remote(1)
            return _rate(sync_n, time.perf_counter() - t)

        async def gathered():
            t = time.perf_counter()
            await asyncio.gather(*[h.f.remote(1) for _ in range(pipe_n)])
            return _rate(pipe_n, time.perf_counter() - t)

        for row, coro in (("await_one", one_by_one), ("await_gather", gathered)):
            if row in rows:
                measure(row, lambda coro=coro: asyncio.run(coro()))

    if "sleep" in rows:
        h = actor("async")

        def sleeps():
            t = time.perf_counter()
            ray.get([h.sleep.remote(0.05) for _ in range(1000)])
            return time.perf_counter() - t
        measure("sleep", sleeps)

    if "array" in rows:
        h = actor("threaded")
        arr = np.random.default_rng(0).integers(0, 255, cfg["array_bytes"], dtype=np.uint8)
        samples = []
        for i in range(reps + 1):
            t = time.perf_counter()
            back = ray.get(h.f.remote(arr))
            dt = time.perf_counter() - t
            samples.append((arr.nbytes + back.nbytes) / dt / 1e9)
            if i == 0 and not np.array_equal(back, arr):
                raise AssertionError("the array came back different")
            del back
        out["array"] = samples[1:]

    out.update(_scale_rows(ray, Threaded, rows))

    import _composition
    import _generators
    out.update(_composition.run(ray, rows, cfg))
    out.update(_generators.run(ray, rows, cfg))
    import _bars
    out.update(_bars.run(ray, rows, cfg, measure))
    if floor is not None:
        floor.close()
    import _restart
    out.update(_restart.run(ray, rows, cfg))
    ray.shutdown()
    return out
