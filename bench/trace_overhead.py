"""What call tracing costs (target: at most 5 %), on the rows it could slow down.

    python bench/trace_overhead.py                 # 25 rounds, about a minute
    python bench/trace_overhead.py --rounds 41 --rows pipe_threaded,pipe_async

Rows: 1:1 sync calls and pipelined calls (x ``--pipe`` submitted at once, then
collected), on a threaded and on an async actor. Modes:

    off        an empty tracer whose hooks do nothing: the driver records nothing
    on         the default: every call recorded
    on+widget  (--widget) a live Timeline listening, its owner thread redrawing at 10 Hz

Turn about: every round runs every row once in every mode, back to back, in a
rotating order, so that load from other processes hits the modes alike. A
row's cost is the median over rounds of the change against "off" in the same
round, in % and in ns per call, for the wall time and for the driver's CPU
time (all its threads), which moves much less than wall time when other
processes load the machine. The trace is kept full, as in a long session
(``capacity`` finished calls remembered), so the "on" samples pay for the
compaction of old calls too.

Also prints what the hooks alone cost per call in a tight loop (with
compaction of old calls), beside the driver's CPU time of one call.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

import jupyter_actors as ray
from jupyter_actors import _trace

sys.path.insert(0, os.path.dirname(__file__))
from _workloads import _define  # noqa: E402  (the benchmark's own actor classes)

Threaded, Async, *_ = _define(ray)

ROWS = ("sync_threaded", "sync_async", "pipe_threaded", "pipe_async")


def sync_calls(actor, n: int) -> None:
    f = actor.f
    for i in range(n):
        ray.get(f.remote(i))


def pipelined_calls(actor, n: int, batch: int) -> None:
    f = actor.f
    for _ in range(n // batch):
        ray.get([f.remote(i) for i in range(batch)])


def timed(run, *args) -> tuple:
    """(wall ns, driver CPU ns) of ``run(*args)``."""
    gc.collect()
    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
    run(*args)
    return time.perf_counter_ns() - t0, time.process_time_ns() - c0


class Hooks:
    """Switches tracing off and on for the samples: "off" puts in an empty tracer whose
    hooks do nothing (instance attributes shadow the methods), as if the session had
    never traced a call; "on" puts back the real one, with everything it remembers."""

    names = ("record_submitted", "record_started", "record_finished", "record_run_finished")
    _on: dict | None = None
    _off: dict | None = None

    @classmethod
    def off(cls) -> None:
        tracer = _trace.tracer
        if cls._on is None:
            cls._on = tracer.__dict__
            empty = _trace.Tracer()
            for name in cls.names:
                setattr(empty, name, lambda *record: None)
            cls._off = empty.__dict__
        tracer.__dict__ = cls._off

    @classmethod
    def on(cls) -> None:
        if cls._on is not None:
            _trace.tracer.__dict__ = cls._on


def hook_cost_ns(calls: int = 300_000, run: int = 1) -> float:
    """ns per call for what the driver's trace does on its own (submitted + finished, nobody
    listening; the start is reported only to listeners), the packing of older calls included.
    ``run``: calls whose results came back together (a CallsOk) end in one step, with
    their ids, times and slots as the run's message brings them."""
    from jupyter_actors._backend.local.records import CallRecord
    from jupyter_actors._backend.local.tasks import TaskPool
    from jupyter_actors._wire.frames import FrameDecoder, encode_oks, unpack_oks

    def numbers(ended):
        frame = encode_oks([(r.call_id, b"", r.started, r.finished, r.slot) for r in ended])
        (message,) = FrameDecoder().feed(frame)
        return unpack_oks(message)

    owner = TaskPool(None, 1)
    tracer = _trace.Tracer()
    best = float("inf")
    for _ in range(3):
        records = [CallRecord("call", "A.f", "f", owner, b"", (), 1, None) for _ in range(calls)]
        for record in records:  # as a call that ran: the worker's times, a slot, a pid
            record.started, record.finished = time.monotonic(), time.monotonic()
            record.slot, record.pid, record.status = 0, 1, "finished"
        runs = [records[i:i + run] for i in range(0, calls, run)] if run > 1 else None
        ends = [numbers(ended) for ended in runs] if runs else None
        submitted, finished = tracer.record_submitted, tracer.record_finished
        run_finished = tracer.record_run_finished
        t0 = time.perf_counter_ns()
        if runs is None:
            for record in records:
                submitted(record)
                finished(record)
        else:
            for ended, run_ends in zip(runs, ends):
                for record in ended:
                    submitted(record)
                run_finished(ended, run_ends)
        best = min(best, (time.perf_counter_ns() - t0) / calls)
        del records, runs, ends
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--sync", type=int, default=1500, help="1:1 calls per sample")
    parser.add_argument("--pipe", type=int, default=1000, help="calls submitted at once")
    parser.add_argument("--pipe-batches", type=int, default=6, help="pipelined batches per sample")
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--widget", action="store_true", help="also the on+widget mode")
    parser.add_argument("--fill", type=int, default=None,
                        help="calls made first to fill the trace (default: its capacity)")
    args = parser.parse_args()
    rows = [r for r in args.rows.split(",") if r]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {', '.join(ROWS)}")

    modes = ["off", "on"] + (["on+widget"] if args.widget else [])
    ray.init(ignore_reinit_error=True)
    actors = {"threaded": Threaded.remote(), "async": Async.remote()}

    def work(row):
        actor = actors[row.split("_", 1)[1]]
        if row.startswith("sync"):
            return args.sync, (sync_calls, actor, args.sync)
        n = args.pipe * args.pipe_batches
        return n, (pipelined_calls, actor, n, args.pipe)

    # Warm up (workers, imports, caches) and fill the trace as a long session would.
    for row in rows:
        _, job = work(row)
        timed(*job)
    fill = (_trace.tracer.capacity if args.fill is None else args.fill) \
        - len(_trace.tracer.snapshot())
    while fill > 0:
        n = min(fill, 20_000)
        pipelined_calls(actors["threaded"], n, min(n, 1000))
        fill -= n

    samples = {(row, mode): [] for row in rows for mode in modes}
    timeline = None
    for rnd in range(args.rounds):
        for row in rows:
            n, job = work(row)
            turn = rnd % len(modes)  # rotate, so that no mode always runs first
            for mode in modes[turn:] + modes[:turn]:
                Hooks.off() if mode == "off" else Hooks.on()
                if mode == "on+widget":
                    from jupyter_actors.widgets import Timeline
                    timeline = Timeline(job[1], history=False, max_bars=5000)
                wall, cpu = timed(*job)
                samples[(row, mode)].append((wall / n, cpu / n))
                if timeline is not None:
                    timeline.close()
                    timeline = None
    Hooks.on()

    load = os.getloadavg()
    print(f"tracing on vs off, turn about: {args.rounds} rounds; per sample {args.sync} sync "
          f"calls or {args.pipe_batches} x {args.pipe} pipelined; Python "
          f"{sys.version.split()[0]}; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("cost = median over rounds of (mode - off) in the same round; "
          "wall and driver CPU per call")
    head = f"{'row':<15}{'off wall µs':>12}{'off CPU µs':>12}"
    for m in modes[1:]:
        head += f"{m + ' wall':>20}{m + ' CPU':>20}"
    print(head)
    for row in rows:
        off = samples[(row, "off")]
        line = (f"{row:<15}{statistics.median(s[0] for s in off) / 1e3:>12.2f}"
                f"{statistics.median(s[1] for s in off) / 1e3:>12.2f}")
        for m in modes[1:]:
            pairs = list(zip(off, samples[(row, m)]))
            for k in (0, 1):
                pct = statistics.median(b[k] / a[k] - 1 for a, b in pairs) * 100
                ns = statistics.median(b[k] - a[k] for a, b in pairs)
                line += f"{pct:>+11.1f}% {ns:>+6.0f}ns"
        print(line)
    cpu_us = min(statistics.median(s[1] for s in samples[(row, "off")]) for row in rows) / 1e3
    costs = [(run, hook_cost_ns(run=run)) for run in (1, 16, 256)]
    print("the hooks alone: per call ending " + ", ".join(
        f"{'on its own' if run == 1 else f'in a run of {run} results'} {ns:.0f} ns "
        f"({ns / 1e3 / cpu_us * 100:.1f} %)" for run, ns in costs)
        + f"; % of the driver's CPU time of the cheapest call above ({cpu_us:.1f} µs)")
    ray.shutdown()


if __name__ == "__main__":
    main()
