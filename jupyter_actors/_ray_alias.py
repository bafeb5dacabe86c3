"""``use_as_ray()``: make ``import ray`` (and ``ray.util``, ``ray.actor`` ...) give jupyter_actors.

Opt-in only: ``python -m jupyter_actors run script.py``, or a call in a notebook.
Workers started afterwards do the same, so code they import that says
``import ray`` gets jupyter_actors there too. When a real ``ray`` is installed,
it says once which one ``import ray`` gives.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

# Ray's module paths -> ours.
MODULES = {
    "ray": "jupyter_actors",
    "ray.util": "jupyter_actors.util",
    "ray.util.queue": "jupyter_actors.util.queue",
    "ray.util.actor_pool": "jupyter_actors.util.actor_pool",
    "ray.util.pdb": "jupyter_actors.util.pdb",
    "ray.actor": "jupyter_actors.actor",
    "ray.exceptions": "jupyter_actors.exceptions",
    "ray.runtime_context": "jupyter_actors.runtime_context",
    "ray.experimental": "jupyter_actors.experimental",
    "ray.experimental.tqdm_ray": "jupyter_actors.experimental.tqdm_ray",
}

_active = False


class _MissingRayModule(importlib.abc.MetaPathFinder):
    """``import ray.something_else`` while aliased: a clear error, not Ray's own module."""

    def find_spec(self, name, path=None, target=None):
        if name.startswith("ray.") and name not in MODULES:
            raise ModuleNotFoundError(
                f"No module named {name!r}: `import ray` gives jupyter_actors here "
                f"(use_as_ray()), which provides {', '.join(sorted(MODULES))}", name=name)
        return None


def use_as_ray(quiet: bool = False) -> None:
    """From now on ``import ray`` in this process (and its workers) gives jupyter_actors."""
    global _active
    if _active:
        return
    real = sys.modules.get("ray")
    if real is None or getattr(real, "__name__", "") == "ray":
        spec = importlib.util.find_spec("ray") if real is None else real.__spec__
        if spec is not None and not quiet:
            where = spec.origin or "an installed package"
            print(f"jupyter_actors: `import ray` now gives jupyter_actors; the ray installed at "
                  f"{where} is not used in this session", file=sys.stderr)
    for alias, target in MODULES.items():
        sys.modules[alias] = importlib.import_module(target)
    sys.meta_path.insert(0, _MissingRayModule())
    _active = True


def is_active() -> bool:
    return _active
