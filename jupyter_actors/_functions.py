"""Remote functions: what ``@remote`` makes of a function."""
from __future__ import annotations

import functools
import time

from . import _api, _driver
from ._actors import _new_refs
from ._arguments import _signature, prepare_arguments
from ._options import TASK_OPTIONS, _check_options
from ._serialization import LazyDefinition

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
        merged.update(_check_options(dict(options), TASK_OPTIONS, "a remote function"))
        return _RemoteFunctionWithOptions(self, merged)

    def function_payload(self):
        return self._definition.payload()

    def __repr__(self) -> str:
        return f"<RemoteFunction {self._signature.label}>"


class _RemoteFunctionWithOptions:
    def __init__(self, fn: RemoteFunction, options: dict):
        self._fn = fn
        self._options = options

    def remote(self, *args, **kwargs):
        return _submit_task(self._fn, self._options, args, kwargs)


def _submit_task(fn: RemoteFunction, options: dict, args, kwargs):
    rt = _api.runtime()
    payload, deps, exported = prepare_arguments(fn._signature, args, kwargs)
    pool = rt.task_pool
    if fn._id not in pool.functions:
        pool.define(fn._id, fn.function_payload())
    retries = options.get("max_retries", 3)
    record = _driver.CallRecord("task", fn._signature.label, fn._id, pool, payload, deps,
                                options.get("num_returns", 1), rt.router.capture(), exported,
                                retries=10**9 if retries == -1 else retries)
    refs = _new_refs(record)
    pool.submit(record)
    return refs
