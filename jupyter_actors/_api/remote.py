"""``@remote`` and ``@method``: what turns a class into an actor class and a function remote."""
from __future__ import annotations

import inspect

from .actors import ActorClass
from .functions import RemoteFunction
from .options import ACTOR, METHOD, TASK, check_actor_options, check_options


def remote(*args, **options):
    """Make a class an actor class, or a function a remote function.

    Use as ``@remote`` or ``@remote(max_concurrency=4, ...)``.
    """
    if len(args) == 1 and not options and (inspect.isclass(args[0]) or callable(args[0])):
        return _make_remote(args[0], {})
    if args:
        raise TypeError("remote() takes a class or a function, or only keyword options: "
                        "@remote or @remote(max_concurrency=2)")
    return lambda obj: _make_remote(obj, options)


def _make_remote(obj, options: dict):
    if inspect.isclass(obj):
        return ActorClass(obj, check_actor_options(check_options(dict(options), ACTOR)))
    if inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj):
        name = getattr(obj, "__name__", "f")
        raise ValueError(
            f"'async def' should not be used for remote tasks: {name}() is a coroutine function, "
            f"and remote functions run as plain calls in a worker. Wrap it in a regular function "
            f"that runs it with asyncio.run(...):\n\n"
            f"    @remote\n    def {name}_sync(*args, **kwargs):\n"
            f"        return asyncio.run({name}(*args, **kwargs))\n\n"
            f"or make it a method of an async actor (a class with async def methods).")
    if callable(obj):
        return RemoteFunction(obj, check_options(dict(options), TASK))
    raise TypeError(f"@remote needs a class or a function, not {type(obj).__name__}")


def method(**options):
    """Per-method options for an actor method: ``@method(num_returns=2)``,
    ``@method(concurrency_group="io")``."""
    check_options({k: v for k, v in options.items() if v is not None}, METHOD)

    def decorate(fn):
        if options.get("num_returns") is not None:
            fn.__jupyter_actors_num_returns__ = options["num_returns"]
        if options.get("concurrency_group") is not None:
            # Checked against the class's groups when @remote sees the class.
            fn.__jupyter_actors_concurrency_group__ = options["concurrency_group"]
        if options.get("_generator_backpressure_num_objects") is not None:
            fn.__jupyter_actors_backpressure__ = options["_generator_backpressure_num_objects"]
        if options.get("max_task_retries") is not None or options.get("retry_exceptions"):
            fn.__jupyter_actors_retry__ = (options.get("max_task_retries"),
                                           options.get("retry_exceptions"))
        return fn
    return decorate
