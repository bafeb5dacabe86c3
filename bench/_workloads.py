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


def run(ray, rows, cfg, init_kwargs=None):
    """Measure ``rows`` (names from ``bench.ROWS``); returns {row: [samples]}."""
    reps, sync_n, pipe_n = cfg["reps"], cfg["sync_n"], cfg["pipe_n"]
    out: dict = {}
    # Rows whose floor is sampled here, turn about with ours (see bench.PAIRED).
    paired = [r for r in cfg.get("paired", ()) if r in rows]
    paired_reps = max(reps, cfg.get("min_paired", reps))
    floor_pool = None
    if any(r.startswith("task_") for r in paired):
        import _floor
        floor_pool = _floor.task_pool()  # before init(): forked from a process without threads
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

    def sync_calls(call, between=None, n_reps=reps):
        samples = []
        for _ in range(n_reps + 1):  # the first repetition warms up
            t = time.perf_counter()
            for _ in range(sync_n):
                ray.get(call(1))
            samples.append(_rate(sync_n, time.perf_counter() - t))
            if between is not None:
                between()
        return samples[1:]

    def pipelined(call, between=None, n_reps=reps):
        samples = []
        for _ in range(n_reps + 1):
            t = time.perf_counter()
            ray.get([call(1) for _ in range(pipe_n)])
            samples.append(_rate(pipe_n, time.perf_counter() - t))
            if between is not None:
                between()
        return samples[1:]

    for kind in ("threaded", "mc16", "async", "group", "group_async"):
        if f"sync_{kind}" in rows:
            out[f"sync_{kind}"] = sync_calls(actor(kind).f.remote)
        if f"pipe_{kind}" in rows:
            out[f"pipe_{kind}"] = pipelined(actor(kind).f.remote)

    for row, measure in (("task_sync", sync_calls), ("task_pipe", pipelined)):
        if row not in rows:
            continue
        if row in paired:  # a floor sample after each of ours, warm-up rounds dropped alike
            floor = []
            out[row] = measure(task.remote,
                               lambda: floor.append(_floor.task_rate(floor_pool, row, cfg)),
                               paired_reps)
            out[f"floor:{row}"] = floor[1:]
        else:
            out[row] = measure(task.remote)
    if floor_pool is not None:
        floor_pool.shutdown()

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
                out[row] = [asyncio.run(coro()) for _ in range(reps + 1)][1:]

    if "sleep" in rows:
        h = actor("async")
        samples = []
        for _ in range(reps + 1):
            t = time.perf_counter()
            ray.get([h.sleep.remote(0.05) for _ in range(1000)])
            samples.append(time.perf_counter() - t)
        out["sleep"] = samples[1:]

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
    out.update(_bars.run(ray, rows, cfg))
    import _restart
    out.update(_restart.run(ray, rows, cfg))
    ray.shutdown()
    return out
