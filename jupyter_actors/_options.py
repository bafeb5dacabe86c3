"""Options of @remote, .options() and @method: which exist, which are honoured, which are refused."""
from __future__ import annotations

# Options Ray accepts that mean nothing on one machine: accepted and ignored.
_RESOURCE_OPTIONS = {"num_cpus", "num_gpus", "memory", "resources", "scheduling_strategy",
                     "accelerator_type", "label_selector", "placement_group",
                     "placement_group_bundle_index", "_metadata", "enable_task_events"}


ACTOR_OPTIONS = {"max_concurrency", "name", "namespace", "get_if_exists", "lifetime",
                 "max_restarts", "max_task_retries", "runtime_env", "concurrency_groups",
                 "max_pending_calls"} | _RESOURCE_OPTIONS


TASK_OPTIONS = {"num_returns", "max_retries", "retry_exceptions", "name", "runtime_env",
                "max_calls"} | _RESOURCE_OPTIONS


METHOD_OPTIONS = {"num_returns", "name", "concurrency_group"}


def _check_options(options: dict, allowed: set, what: str) -> dict:
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(f"unknown option(s) for {what}: {', '.join(sorted(unknown))}; "
                        f"valid options are {', '.join(sorted(allowed - _RESOURCE_OPTIONS))}")
    if "max_concurrency" in options:
        mc = options["max_concurrency"]
        if not isinstance(mc, int) or isinstance(mc, bool) or mc < 1:
            raise ValueError(f"max_concurrency must be an int >= 1, got {mc!r}")
    if "num_returns" in options:
        n = options["num_returns"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"num_returns must be an int >= 0, got {n!r}")
    if "max_retries" in options:
        n = options["max_retries"]
        if not isinstance(n, int) or isinstance(n, bool) or n < -1:
            raise ValueError(f"max_retries must be an int >= -1, got {n!r}")
    for key in ("max_restarts", "max_task_retries"):
        if options.get(key, 0) not in (0, None):
            raise NotImplementedError(f"{key} is not supported yet: a dead actor stays dead")
    if options.get("runtime_env"):
        raise NotImplementedError("runtime_env is not supported: workers share the driver's "
                                  "environment")
    if options.get("concurrency_groups"):
        raise NotImplementedError("concurrency_groups are not supported yet")
    if options.get("retry_exceptions"):
        raise NotImplementedError("retry_exceptions is not supported yet")
    if options.get("lifetime") not in (None, "non_detached"):
        raise ValueError("lifetime='detached' is not possible here: actors end with the driver")
    if "name" in options and options["name"] is not None and not isinstance(options["name"], str):
        raise TypeError(f"name must be a string, got {type(options['name']).__name__}")
    return options
