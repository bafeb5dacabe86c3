"""The caller's options as Ray's: what ``.options()`` said, passed through for Ray to honour.

Resources, scheduling strategies, placement groups, ``runtime_env``, restarts
and detached lifetimes mean something on a cluster: Ray does what it does with
them. The options table (``_api/options.py``, column ``on_ray``) says which.
"""
from __future__ import annotations

from .generators import stream_options
from .host import CONTROL_GROUP

# Options Ray takes as they are, for actors and for remote functions.
_PASSED = ("lifetime", "max_restarts", "max_task_retries", "runtime_env", "num_cpus",
           "num_gpus", "memory", "resources", "scheduling_strategy", "accelerator_type",
           "label_selector", "placement_group", "placement_group_bundle_index", "_metadata",
           "enable_task_events", "placement_group_capture_child_tasks", "_labels")
_ACTOR_PASSED = _PASSED + ("enable_tensor_transport", "allow_out_of_order_execution")
_TASK_PASSED = _PASSED + ("max_retries", "max_calls", "retry_exceptions", "name")


def actor_options(spec) -> dict:
    """``ActorClass.options(...)`` for the host class of ``spec`` (an ActorSpec)."""
    given = spec.options or {}
    options = {"max_concurrency": spec.max_concurrency}
    if spec.name is not None:
        options["name"] = spec.name
    if spec.namespace is not None:
        options["namespace"] = spec.namespace
    if spec.max_pending_calls != -1:
        options["max_pending_calls"] = spec.max_pending_calls
    for key in _ACTOR_PASSED:
        value = given.get(key)
        if value is not None:
            options[key] = value
    return options


def class_options(spec) -> dict:
    """``ray.remote(...)`` options of a host class (Ray takes these only there)."""
    groups = dict(spec.concurrency_groups or {})
    # The host's own group, so that cancelling a queued call never waits behind it.
    groups[CONTROL_GROUP] = 1
    return {"concurrency_groups": groups}


def call_options(num_returns: int, group, retry) -> dict:
    """``.options(...)`` of one actor call: its returns, its concurrency group, and the
    ``max_task_retries`` / ``retry_exceptions`` its method (``@method``) or the call set
    (``retry``: None, or that pair, each None when not set)."""
    options = stream_options(num_returns) if num_returns < 0 else {"num_returns": num_returns}
    if group is not None:
        options["concurrency_group"] = group
    if retry is not None:
        retries, exceptions = retry
        if retries is not None:
            options["max_task_retries"] = retries
        if exceptions is not None:
            options["retry_exceptions"] = (list(exceptions) if isinstance(exceptions, tuple)
                                           else exceptions)
    return options


def task_options(spec) -> dict:
    """``ray.remote(...)`` options for the function of ``spec`` (a TaskSpec)."""
    given = spec.options or {}
    options = ({"num_returns": spec.num_returns} if spec.num_returns >= 0
               else stream_options(spec.num_returns))
    for key in _TASK_PASSED:
        value = given.get(key)
        if value is not None:
            options[key] = value
    return options
