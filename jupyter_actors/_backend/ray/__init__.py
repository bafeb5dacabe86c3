"""The Ray backend: the same API on a real Ray cluster (``pip install "jupyter_actors[ray]"``).

Nothing here imports Ray until the session asks for this backend, and then
a missing Ray is an error that says what to install.
"""
from __future__ import annotations

__all__ = ["start_ray"]


def start_ray(router, address, **options):
    """The session's RayBackend, joined to ``address`` or on a new local Ray (see connect)."""
    import time
    started = time.perf_counter()
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "The Ray backend needs Ray, which is not installed here: "
            "pip install \"jupyter_actors[ray]\" (or pip install ray). "
            "Without it, init() with no address runs the embedded runtime.") from exc
    from .connect import start_ray as start
    imported = time.perf_counter() - started
    backend = start(router, address, **options)
    backend.ray_init_seconds += imported   # Ray's own start-up: importing it and ray.init
    return backend
