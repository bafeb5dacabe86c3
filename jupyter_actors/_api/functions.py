"""Remote functions: what ``@remote`` makes of a function."""
from __future__ import annotations

import functools
import time
import weakref

from .._backend.base import TaskSpec
from .._wire.payloads import LazyDefinition
from . import session
from .arguments import _signature, prepare_arguments
from .options import TASK, check_options


class RemoteFunction:
    """What ``@remote`` makes of a function: ``f.remote(...)`` runs it in a worker."""

    def __init__(self, fn, options: dict, func_id: str | None = None):
        self._function = fn
        self._options = options
        name = getattr(fn, "__name__", "function")
        self._signature = _signature(fn, False, name)
        # Names the function across processes (the task pool defines it once per worker).
        self._id = func_id or f"{name}-{id(self):x}-{time.monotonic_ns():x}"
        self._definition = LazyDefinition(self._function)
        functools.update_wrapper(self, fn, updated=())
        _functions.setdefault(self._id, self)

    def __reduce__(self):
        # Inside another remote function or class (a recursive quicksort refers
        # to itself): it travels with it, and is made once per process.
        return (_remote_function_from, (self._id, self._function, self._options))

    def __call__(self, *args, **kwargs):
        name = self._signature.label
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{name}()', try '{name}.remote()'.")

    def remote(self, *args, **kwargs):
        return _submit_task(self, self._options, args, kwargs)

    def options(self, **options) -> "_RemoteFunctionWithOptions":
        merged = dict(self._options)
        merged.update(check_options(dict(options), TASK))
        return _RemoteFunctionWithOptions(self, merged)

    def __repr__(self) -> str:
        return f"<RemoteFunction {self._signature.label}>"


# func_id -> RemoteFunction made in this process.
_functions: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _remote_function_from(func_id: str, fn, options: dict) -> RemoteFunction:
    found = _functions.get(func_id)
    return found if found is not None else RemoteFunction(fn, options, func_id)


class _RemoteFunctionWithOptions:
    def __init__(self, fn: RemoteFunction, options: dict):
        self._fn = fn
        self._options = options

    def remote(self, *args, **kwargs):
        return _submit_task(self._fn, self._options, args, kwargs)


def _submit_task(fn: RemoteFunction, options: dict, args, kwargs):
    backend = session.backend()
    payload, deps, exported = prepare_arguments(fn._signature, args, kwargs)
    spec = TaskSpec(fn._signature.label, fn._id, fn._definition, payload, deps,
                    options.get("num_returns", 1), session.output_router().capture(), exported,
                    options.get("max_retries", 3), options.get("max_calls", 0))
    return backend.submit_task(spec)
