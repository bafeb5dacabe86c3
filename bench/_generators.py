"""Streaming generators (run against jupyter_actors or Ray).

    stream_threaded  10,000 small items from a generator method of a threaded actor,
                     each ref taken with next() and its value with get(); items per second
    stream_async     the same from an async generator method of an async actor
"""
from __future__ import annotations

import time


def _define(ray):
    @ray.remote
    class Source:
        def items(self, n):
            for i in range(n):
                yield i

    @ray.remote
    class AsyncSource:
        async def items(self, n):
            for i in range(n):
                yield i

    return Source, AsyncSource


ROWS = ("stream_threaded", "stream_async")


def run(ray, rows, cfg) -> dict:
    """{row: [samples]} for the rows of this module in ``rows``; the runtime is running."""
    wanted = [r for r in ROWS if r in rows]
    if not wanted:
        return {}
    Source, AsyncSource = _define(ray)
    n = 10_000 if cfg["sync_n"] >= 1000 else 2_000
    out: dict = {}
    for row, cls in (("stream_threaded", Source), ("stream_async", AsyncSource)):
        if row not in rows:
            continue
        source = cls.remote()
        samples = []
        for _ in range(cfg["reps"] + 1):  # the first one warms up
            t = time.perf_counter()
            total = sum(ray.get(ref) for ref in source.items.remote(n))
            samples.append(n / (time.perf_counter() - t))
            assert total == n * (n - 1) // 2
        out[row] = samples[1:]
    return out
