"""Every option of ``@remote``, ``.options()``, ``@method`` and ``%%remote``, in one table.

Each option says what it applies to (``actor``: an actor class, ``method``: an
actor method, ``task``: a remote function), the type of its value, and how it
is treated here:

- ``honoured``: it does what it does in Ray;
- ``ignored``: accepted so Ray code runs, and meaningless on one machine
  (resources, scheduling);
- ``refused``: a clear error at the place it was given, saying why, unless its
  value is the harmless default (``refused_unless``).

``on_ray`` says the same for the Ray backend, where Ray itself does what the
option asks (resources and scheduling are real there). An option refused here
and honoured on Ray is accepted while Ray is the session's backend (or
``JUPYTER_ACTORS_BACKEND=ray`` says it will be).

The README's compatibility table says the same (a test compares them).
"""
from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

ACTOR, METHOD, TASK = "actor", "method", "task"
_WHAT = {ACTOR: "an actor class", METHOD: "a method", TASK: "a remote function"}


class Option(NamedTuple):
    name: str
    applies: frozenset      # of ACTOR, METHOD, TASK
    kind: type              # int, float, bool, str, or object (any Python literal)
    status: str             # "honoured", "ignored" or "refused"
    check: Callable[[Any], str | None] | None = None   # an error message, or None if fine
    refused_unless: tuple = ()   # values a refused option may still take
    why: str = ""           # for refused options: the error's reason
    on_ray: str = "honoured"   # the status on the Ray backend


def _int_at_least(low: int, what: str = "") -> Callable:
    def check(value):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            return f"must be an int >= {low}{what}, got {value!r}"
        return None
    return check


def _pending_calls(value):
    if not isinstance(value, int) or isinstance(value, bool) or (value < 1 and value != -1):
        return f"must be -1 (no limit) or an int >= 1, got {value!r}"
    return None


def _num_returns(value):
    if value in ("streaming", "dynamic"):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return f"must be an int >= 0, 'streaming' or 'dynamic', got {value!r}"
    return None


def _backpressure(value):
    if not isinstance(value, int) or isinstance(value, bool) or (value < 1 and value != -1):
        return (f"must be an int > 0 (the most items the generator yields ahead of the "
                f"consumer; 1 behaves like a Python generator) or -1 (no limit), got {value!r}")
    return None


def _optional_str(value):
    if value is not None and not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    return None


def _group_sizes(value):
    """``{"io": 2, "compute": 4}``: each group's name and how many of its calls may run at once."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"must be a dict of group name -> max concurrency, got {type(value).__name__}"
    for name, size in value.items():
        if not isinstance(name, str) or not name:
            return f"names must be non-empty strings, got {name!r}"
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            return f"sizes must be ints >= 1, got {name!r}: {size!r}"
    return None


def _bool(value):
    return None if isinstance(value, bool) else f"must be True or False, got {value!r}"


def _lifetime(value):
    if value not in (None, "non_detached", "detached"):
        return f"must be None, 'non_detached' or 'detached', got {value!r}"
    return None


def _retry_exceptions(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (list, tuple)) and all(
            isinstance(v, type) and issubclass(v, Exception) for v in value):
        return None
    return f"must be True, False or a list of exception classes, got {value!r}"


_A, _M, _T = frozenset({ACTOR}), frozenset({METHOD}), frozenset({TASK})
_AM = frozenset({ACTOR, METHOD})
_AT, _MT, _AMT = frozenset({ACTOR, TASK}), frozenset({METHOD, TASK}), frozenset({ACTOR, METHOD, TASK})

OPTIONS = {o.name: o for o in [
    Option("max_concurrency", _A, int, "honoured", _int_at_least(1)),
    Option("name", _AMT, str, "honoured", _optional_str),
    Option("namespace", _A, str, "honoured", _optional_str),
    Option("get_if_exists", _A, bool, "honoured", _bool),
    Option("max_pending_calls", _A, int, "honoured", _pending_calls),
    Option("num_returns", _MT, int, "honoured", _num_returns),
    Option("_generator_backpressure_num_objects", _MT, int, "honoured", _backpressure),
    Option("max_retries", _T, int, "honoured", _int_at_least(-1, " (-1: for ever)")),
    Option("max_calls", _T, int, "honoured", _int_at_least(0, " (0: no limit)")),
    Option("lifetime", _A, str, "refused", _lifetime, (None, "non_detached"),
           "lifetime='detached' is not possible here: actors end with the driver"),
    Option("max_restarts", _A, int, "honoured", _int_at_least(-1, " (-1: for ever)")),
    Option("max_task_retries", _AM, int, "honoured", _int_at_least(-1, " (-1: for ever)")),
    Option("runtime_env", _AT, object, "refused", None, (None, {}),
           "runtime_env is not supported: workers share the driver's environment"),
    Option("concurrency_groups", _A, object, "honoured", _group_sizes),
    Option("concurrency_group", _M, str, "honoured", _optional_str),
    Option("retry_exceptions", _MT, object, "honoured", _retry_exceptions),
    # Resources and scheduling: one machine, nothing to place.
    *[Option(name, _AT, kind, "ignored") for name, kind in [
        ("num_cpus", float), ("num_gpus", float), ("memory", float), ("resources", object),
        ("scheduling_strategy", str), ("accelerator_type", str), ("label_selector", object),
        ("placement_group", object), ("placement_group_bundle_index", int),
        ("_metadata", object),
        ("placement_group_capture_child_tasks", bool), ("_labels", object)]],
    # Ray options with nothing to do on one machine, or with a guarantee kept anyway.
    Option("enable_task_events", _AMT, bool, "ignored"),
    Option("tensor_transport", _M, str, "ignored", on_ray="ignored"),
    Option("enable_tensor_transport", _A, bool, "ignored"),
    Option("allow_out_of_order_execution", _A, bool, "ignored"),
]}


def names_for(target: str) -> frozenset:
    """Every option name that applies to ``target`` (ACTOR, METHOD or TASK)."""
    return frozenset(n for n, o in OPTIONS.items() if target in o.applies)


def shown_names(names) -> list:
    """The options worth listing in an error message (not the ignored ones), sorted."""
    return sorted(n for n in names if OPTIONS[n].status != "ignored")


def check_options(options: dict, target: str) -> dict:
    """``options`` if every one is known for ``target`` and has a usable value; else raise."""
    allowed = names_for(target)
    unknown = set(options) - allowed
    grouping = unknown & {"concurrency_group", "concurrency_groups"}
    if target == TASK and grouping:
        raise TypeError(f"{min(grouping)} applies to actors and their methods, not to remote "
                        f"functions: a remote function runs in the task pool, which has no "
                        f"concurrency groups (use max_calls / num_cpus to limit it)")
    if unknown:
        raise TypeError(f"unknown option(s) for {_WHAT[target]}: {', '.join(sorted(unknown))}; "
                        f"valid options are {', '.join(shown_names(allowed))}")
    for name, value in options.items():
        option = OPTIONS[name]
        problem = option.check(value) if option.check is not None else None
        if problem is not None:
            error = TypeError if name in ("name", "concurrency_group") else ValueError
            raise error(f"{name} {problem}")
        if (option.status == "refused" and value not in option.refused_unless
                and not (option.on_ray == "honoured" and _on_ray())):
            error = ValueError if name == "lifetime" else NotImplementedError
            raise error(option.why)
    return options


def check_actor_options(options: dict) -> dict:
    """``options`` of an actor class if they fit together (as Ray checks them); else raise."""
    name = options.get("name")
    if name == "":
        raise ValueError("an actor's name cannot be an empty string")
    if options.get("get_if_exists") and not name:
        raise ValueError("get_if_exists=True needs a name: "
                         "Cls.options(name='...', get_if_exists=True).remote()")
    return options


def _on_ray() -> bool:
    """True while Ray runs the session, or will run it (JUPYTER_ACTORS_BACKEND=ray)."""
    from . import session
    name = session.backend_name()
    if name is not None:
        return name == "ray"
    return os.environ.get("JUPYTER_ACTORS_BACKEND", "").strip().lower() == "ray"
