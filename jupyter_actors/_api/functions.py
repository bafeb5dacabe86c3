"""Remote functions: what ``@remote`` makes of a function."""
from __future__ import annotations

import functools
import time
import weakref

from .._backend.base import TaskSpec
from .._wire.payloads import LazyDefinition
from . import session
from .arguments import _signature, prepare_arguments, raw_arguments
from .generators import is_generator_function, wire_num_returns
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
        self._is_generator = is_generator_function(fn)
        self._num_returns = self._wire_num_returns(options)
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

    def _wire_num_returns(self, options: dict) -> int:
        return wire_num_returns(options.get("num_returns"), self._is_generator,
                                options.get("_generator_backpressure_num_objects"),
                                self._signature.label)

    def remote(self, *args, **kwargs):
        return _submit_task(self, self._options, self._num_returns, args, kwargs)

    def options(self, **options) -> "_RemoteFunctionWithOptions":
        merged = dict(self._options)
        merged.update(check_options(dict(options), TASK))
        return _RemoteFunctionWithOptions(self, merged, self._wire_num_returns(merged))

    def __repr__(self) -> str:
        return f"<RemoteFunction {self._signature.label}>"


# func_id -> RemoteFunction made in this process.
_functions: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _remote_function_from(func_id: str, fn, options: dict) -> RemoteFunction:
    found = _functions.get(func_id)
    return found if found is not None else RemoteFunction(fn, options, func_id)


class _RemoteFunctionWithOptions:
    def __init__(self, fn: RemoteFunction, options: dict, num_returns: int):
        self._fn = fn
        self._options = options
        self._num_returns = num_returns

    def remote(self, *args, **kwargs):
        return _submit_task(self._fn, self._options, self._num_returns, args, kwargs)


def _submit_task(fn: RemoteFunction, options: dict, num_returns: int, args, kwargs):
    backend = session.backend()
    prepare = raw_arguments if backend.raw_arguments else prepare_arguments
    payload, deps, exported = prepare(fn._signature, args, kwargs)
    spec = TaskSpec(fn._signature.label, fn._id, fn._definition, payload, deps,
                    num_returns, session.output_router().capture(), exported,
                    options.get("max_retries", 3), options.get("max_calls", 0), None,
                    options.get("retry_exceptions") or False, options)
    return backend.submit_task(spec)
