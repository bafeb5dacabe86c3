"""Starting or joining Ray for the session, with errors that name the address.

Ray, asked for a cluster that is not there, retries for a minute; a quick TCP
check first turns a wrong address into an error within seconds.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time

from .backend import RayBackend
from .watch import ClusterWatch
from .worker import WorkerSetup

REACH_TIMEOUT = 3.0   # seconds to wait for the cluster's port to answer


def start_ray(router, address: str | None, *, namespace=None, log_to_driver=True,
              ray_options=None) -> RayBackend:
    """Join the Ray cluster at ``address`` ("auto", "HOST:PORT", "ray://HOST:PORT"),
    or start a local one (``address`` None), as ``ray.init`` does."""
    import ray
    options = dict(ray_options or {})
    joined = ray.is_initialized()
    if not joined:
        if address not in (None, "auto", "local"):
            check_reachable(address)
        options.setdefault("logging_level", "warning")
        started = time.perf_counter()
        pin = address is None and "_node_ip_address" not in options
        try:
            # No address: a new local Ray, never whichever cluster this machine ran last.
            with loopback_only() if pin else contextlib.nullcontext():
                ray.init(address=address or "local", namespace=namespace,
                         log_to_driver=log_to_driver, **options)
        except BaseException as exc:
            if address is not None and address.startswith("ray://"):
                _forget_client_mode()
            if isinstance(exc, ConnectionError):
                raise ConnectionError(f"Could not connect to a Ray cluster at {address!r}: "
                                      f"{_reason(exc)}") from exc
            raise
        ray_init_seconds = time.perf_counter() - started
    else:
        ray_init_seconds = 0.0
    backend = RayBackend(router, address, owns_ray=not joined,
                         setup=WorkerSetup(os.getpid()))
    backend.ray_init_seconds = ray_init_seconds
    if address is not None and address.startswith("ray://") and backend.logs is not None:
        from .client_logs import route_client_logs
        route_client_logs(backend.logs)
    gcs = backend.gcs_address()
    if gcs and not joined:
        backend.watch = ClusterWatch(gcs, backend.cluster_lost)
    return backend


def _forget_client_mode() -> None:
    """After a failed Ray Client join: Ray switched its client mode on before connecting
    and leaves it on, so every later ray.init in this process (a plain address too) would
    fail on an assertion inside Ray. Switch it off, so init() can be tried again."""
    try:
        from ray._private.client_mode_hook import _explicitly_disable_client_mode
    except ImportError:  # a Ray without the switch
        return
    _explicitly_disable_client_mode()


def _reason(exc: BaseException) -> str:
    """Ray's reason in a line: its first, and its last when the first only announces it
    (Ray Client's "Initialization failure from server:" and the server's traceback)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return repr(exc)
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


def check_reachable(address: str) -> None:
    """Raise ConnectionError naming ``address`` if nothing answers there within seconds."""
    target = address.split("://", 1)[1] if "://" in address else address
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address={address!r}: expected 'auto', 'HOST:PORT' or "
                         f"'ray://HOST:PORT'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT):
            pass
    except OSError as exc:
        raise ConnectionError(
            f"Could not reach a Ray cluster at {address!r} ({exc.strerror or exc}). Is "
            f"`ray start --head` running there, and is the port open from here?") from None


@contextlib.contextmanager
def loopback_only():
    """While Ray starts here: a node on 127.0.0.1, not on the machine's network address.

    Ray turns 127.0.0.1 (also when given as ``_node_ip_address``) into the address other
    machines reach this one at, unless it runs single-node as on macOS and Windows
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``, which Ray reads when it is imported). A Ray
    that init() starts serves this machine only: the same switch, for as long as it starts.
    """
    from ray._private import ray_constants
    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):
        yield   # a Ray without the switch: its own choice
        return
    previous = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous
