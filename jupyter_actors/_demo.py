"""``python -m jupyter_actors demo``: the async-actor tutorial's scenarios, run for real.

Each scenario is the tutorial's own code with ``import jupyter_actors as ray``;
the demo adds a heading and the wall time, so the interleavings and timings
can be checked by eye against the tutorial.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import time

import jupyter_actors as ray


def heading(text: str) -> None:
    print(f"\n== {text} ==", flush=True)


def timed(label: str, start: float) -> None:
    print(f"-- {label}: {time.perf_counter() - start:.2f} s wall", flush=True)


def run(scale: float = 1.0) -> None:
    """Run every scenario; ``scale`` shrinks the sleeps (1.0 = the tutorial's own)."""
    t0 = time.perf_counter()
    ray.init()
    timed("init", t0)

    @ray.remote
    class AsyncActor:
        # multiple invocation of this method can be running in
        # the event loop at the same time
        async def run_concurrent(self):
            print("started")
            await asyncio.sleep(2 * scale)  # concurrent workload here
            print("finished")

        async def run_task(self):
            print("started")
            await asyncio.sleep(1 * scale)  # Network, I/O task here
            print("ended")

    heading("Async actor: 4 calls of run_concurrent (each sleeps 2 s) with ray.get")
    start = time.perf_counter()
    actor = AsyncActor.remote()
    ray.get([actor.run_concurrent.remote() for _ in range(4)])
    timed("4 concurrent calls", start)

    heading("The same actor awaited inside asyncio.run")

    async def async_get():
        await actor.run_concurrent.remote()
    start = time.perf_counter()
    asyncio.run(async_get())
    timed("one awaited call", start)

    heading("ObjectRefs as asyncio and concurrent.futures futures")

    @ray.remote
    def some_task():
        return 1

    print("ray.get:", ray.get(some_task.remote()))
    ready, not_ready = ray.wait([some_task.remote()])
    print(f"ray.wait: {len(ready)} ready, {len(not_ready)} not ready")

    async def await_obj_ref():
        print("await ref:", await some_task.remote())
        done, pending = await asyncio.wait([some_task.remote()])
        print(f"asyncio.wait: {len(done)} done, {len(pending)} pending")
        print("asyncio.gather:", await asyncio.gather(*[some_task.remote() for _ in range(3)]))
        fut: asyncio.Future = asyncio.wrap_future(some_task.remote().future())
        print("asyncio.wrap_future(ref.future()):", await fut)
    asyncio.run(await_obj_ref())

    refs = [some_task.remote() for _ in range(4)]
    futs = [ref.future() for ref in refs]
    results = []
    for fut in concurrent.futures.as_completed(futs):
        assert fut.done()
        results.append(fut.result())
    print("concurrent.futures.as_completed:", results)

    heading("Five tasks start at once and finish together after 1 s")
    start = time.perf_counter()
    actor = AsyncActor.remote()
    ray.get([actor.run_task.remote() for _ in range(5)])
    timed("5 calls, max_concurrency=1000 (default)", start)

    heading("max_concurrency=2: 8 tasks of 1 s run two at a time")
    start = time.perf_counter()
    actor = AsyncActor.options(max_concurrency=2).remote()
    ray.get([actor.run_task.remote() for _ in range(8)])
    timed("8 calls, max_concurrency=2", start)

    heading("Threaded actor with max_concurrency=2")

    @ray.remote
    class ThreadedActor:
        def task_1(self): print("I'm running in a thread!")
        def task_2(self): print("I'm running in another thread!")

    a = ThreadedActor.options(max_concurrency=2).remote()
    ray.get([a.task_1.remote(), a.task_2.remote()])

    heading("async def remote tasks are refused, with the fix in the message")
    try:
        @ray.remote
        async def f():
            pass
    except ValueError as exc:
        print(f"ValueError: {exc}")

    async def f():
        return "ran inside asyncio.run"

    @ray.remote
    def wrapper():
        import asyncio
        return asyncio.run(f())
    print("wrapper:", ray.get(wrapper.remote()))

    ray.shutdown()
    timed("whole demo", t0)


def main(argv: list[str]) -> int:
    scale = 1.0
    if "--quick" in argv:
        scale = 0.1
    run(scale)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
