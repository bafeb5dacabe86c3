"""A worker's role: one actor (its constructor, then its calls), or a slot of the task pool."""
from __future__ import annotations

import collections
import functools
import inspect
import os
import signal
import sys

from .._wire.messages import ActorInitFailed, ActorReady, BecomeTaskWorker, CreateActor
from .._wire.payloads import deserialize_definition
from .calls import describe_error, load_arguments
from .capture import current_call
from .executors import GroupedExecutor, InlineExecutor, SyncExecutor
from .reading import Reading, dispatch


def run_actor(worker, sock, decoder, first: CreateActor, early: list) -> None:
    init_id, cls_payload, init_args, init_deps, options = first
    apply_environment(options)
    max_concurrency = options["max_concurrency"]
    groups = options.get("concurrency_groups")
    if options["is_async"]:
        # Loaded by the actors that need it: a threaded actor starts without asyncio.
        from .async_executor import AsyncExecutor
        executor = AsyncExecutor(worker, max_concurrency, groups)
    elif groups:
        executor = GroupedExecutor(worker, max_concurrency, groups, None)
    elif max_concurrency == 1:
        executor = InlineExecutor(worker, on_exit=lambda: exit_after_calls(worker))
    else:
        from .reading_pool import ReadingPoolExecutor   # N > 1 only: not on every start
        executor = ReadingPoolExecutor(worker, max_concurrency,
                                       on_exit=lambda: exit_after_calls(worker))
    worker.executor = executor
    worker.actor_info = options
    worker.actor_class_payload = cls_payload

    # A thread reads while the constructor runs (it may get() a ref argument).
    reading = start_reading(worker, sock, decoder, early, actor=True)
    token = current_call.set(init_id)
    try:
        cls = deserialize_definition(cls_payload)
        args, kwargs = load_arguments(init_args, init_deps)
        if options["is_async"] and inspect.iscoroutinefunction(getattr(cls, "__init__", None)):
            # async def __init__ (as Ray allows): run on the actor's loop, before any call.
            instance = cls.__new__(cls)
            executor.loop.run_until_complete(instance.__init__(*args, **kwargs))
        else:
            instance = cls(*args, **kwargs)
    except BaseException as exc:
        worker.finish(ActorInitFailed(init_id, describe_error(exc)))
        os._exit(0)
    finally:
        current_call.reset(token)
    worker.finish(ActorReady(init_id))
    if options["is_async"]:
        executor.set_instance(instance)
        reading.hand_to_loop(executor.loop)
        executor.run()
        exit_after_calls(worker)
    elif isinstance(executor, InlineExecutor):
        executor.start(functools.partial(getattr, instance))
        # This thread now reads and runs calls too, until "exit" or the driver's EOF.
        reading.thread_loop()
    else:
        executor.resolve_target = functools.partial(getattr, instance)
        executor.run()
        exit_after_calls(worker)


def run_tasks(worker, sock, decoder, first: BecomeTaskWorker, early: list) -> None:
    apply_environment(first.options)
    functions: dict = {}
    worker.functions_pending = {}

    def resolve(func_id):
        fn = functions.get(func_id)
        if fn is None:
            fn = functions[func_id] = deserialize_definition(worker.functions_pending.pop(func_id))
        return fn

    # Remote functions run in the main thread, where a cancel can interrupt them.
    executor = SyncExecutor(worker, 1, resolve)
    executor.interruptible = True
    signal.signal(signal.SIGINT, executor.on_sigint)
    worker.executor = executor

    start_reading(worker, sock, decoder, early, actor=False)
    executor.run()
    exit_after_calls(worker)


def start_reading(worker, sock, decoder, early: list, actor: bool) -> Reading:
    """Dispatch what came with the role, then read on in a thread (and flush in another)."""
    dispatch(worker, collections.deque(early))
    reading = Reading(worker, sock, decoder)
    worker.reading = reading
    reading.start_thread(flushes=not actor)
    if actor:
        reading.start_flusher()
    return reading


def exit_after_calls(worker) -> None:
    """The driver's "exit" came after the last call: send what is held back and leave."""
    worker.channel.flush()
    os._exit(0)


def apply_environment(options: dict) -> None:
    """Import from where the driver imports, so classes pickled by reference load here too."""
    for path in reversed(options.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    cwd = options.get("cwd")
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    if options.get("alias_ray"):
        from .._ray_alias import use_as_ray
        use_as_ray(quiet=True)
