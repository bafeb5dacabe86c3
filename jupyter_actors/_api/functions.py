"""Remote functions: what ``@remote`` makes of a function."""
from __future__ import annotations

import functools
import time

from .._backend.base import TaskSpec
from .._wire.payloads import LazyDefinition
from . import session
from .arguments import _signature, prepare_arguments
from .options import TASK, check_options


class RemoteFunction:
    """What ``@remote`` makes of a function: ``f.remote(...)`` runs it in a worker."""

    def __init__(self, fn, options: dict):
        self._function = fn
        self._options = options
        name = getattr(fn, "__name__", "function")
        self._signature = _signature(fn, False, name)
        self._id = f"{name}-{id(self):x}-{time.monotonic_ns():x}"
        self._definition = LazyDefinition(self._function)
        functools.update_wrapper(self, fn, updated=())

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
