"""Call arguments: checked against the signature and pickled in the caller's thread.

Top-level ObjectRef arguments become placeholders that the worker fills with
their values; refs nested deeper travel as refs the worker can look up.
"""
from __future__ import annotations

import inspect
import pickle
import sys

from .._wire.payloads import _SCALARS, EMPTY_ARGS_PAYLOAD, PROTOCOL, DepArg, Payload, serialize
from . import refs as _refs
from .refs import ObjectRef


class Signature:
    """Checks call arguments against a callable's signature, caching what passed."""

    __slots__ = ("sig", "label", "_ok")

    def __init__(self, sig: inspect.Signature | None, label: str):
        self.sig = sig
        self.label = label
        self._ok: set = set()

    def check(self, args: tuple, kwargs: dict) -> None:
        if self.sig is None:
            return
        # Positional only: the count says it all (most calls); else count and names.
        key = (len(args), tuple(kwargs)) if kwargs else len(args)
        if key in self._ok:
            return
        try:
            self.sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.label}(): {exc}") from None
        self._ok.add(key)


def _signature(fn, drop_first: bool, label: str) -> Signature:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return Signature(None, label)
    if drop_first:
        params = list(sig.parameters.values())
        if params and params[0].kind in (params[0].POSITIONAL_ONLY,
                                         params[0].POSITIONAL_OR_KEYWORD):
            sig = sig.replace(parameters=params[1:])
        elif not params or params[0].kind is not params[0].VAR_POSITIONAL:
            return Signature(None, label)
    return Signature(sig, label)


def raw_arguments(signature: Signature, args: tuple, kwargs: dict):
    """For a backend that pickles arguments itself (Ray): checked, not pickled."""
    signature.check(args, kwargs)
    return (args, kwargs), (), None


def prepare_arguments(signature: Signature, args: tuple, kwargs: dict):
    """(payload, top-level ref deps, the refs and actor tokens pickled inside) for a call.

    Raises at the caller on bad input.
    """
    signature.check(args, kwargs)
    if not kwargs:
        if not args:
            return EMPTY_ARGS_PAYLOAD, (), None
        # Positional scalars only (the most common call): no ref can hide in them,
        # and the C pickler writes what serialize would.
        for value in args:
            if type(value) not in _SCALARS:
                break
        else:
            return Payload(pickle.dumps((args, _NO_KWARGS), protocol=PROTOCOL)), (), None
    if "ray._raylet" in sys.modules:   # real Ray is loaded: its refs may be passed by mistake
        _refuse_ray_objects(signature, args, kwargs)
    deps: list = []
    # (A C-level scan: this runs on every call.)
    if ObjectRef in map(type, args) or (kwargs and ObjectRef in map(type, kwargs.values())):
        def swap(value):
            if type(value) is ObjectRef:
                deps.append(value)
                return DepArg(len(deps) - 1)
            return value
        args = tuple(swap(a) for a in args)
        kwargs = {k: swap(v) for k, v in kwargs.items()}
    # What refs.serialize_noting does, inlined: this runs on every call.
    capture = _refs._capture
    previous = getattr(capture, "items", None)
    capture.items = exported = []
    try:
        # handoff: the worker owns the shared-memory files of big arguments
        # once it has them, and reuses them (see _wire.payloads).
        payload = serialize((args, kwargs), handoff=True)
    except Exception as exc:
        raise _argument_error(signature, args, kwargs, exc) from exc
    finally:
        capture.items = previous
    return payload, tuple(deps), exported or None


_NO_KWARGS: dict = {}


def blob_arguments(signature: Signature, args: tuple, kwargs: dict):
    """``prepare_arguments`` for a backend that takes a payload's bytes
    (``Backend.blob_arguments``): positional scalars (most calls) give the bytes of
    their payload, no ``Payload`` object (an object fewer per call to make, and for
    the garbage collector to look at while the call is in flight)."""
    if args and not kwargs and len(args) in signature._ok:  # (signature checked before)
        for value in args:
            if type(value) not in _SCALARS:
                break
        else:
            return pickle.dumps((args, _NO_KWARGS), protocol=PROTOCOL), (), None
    return prepare_arguments(signature, args, kwargs)


def _argument_error(signature: Signature, args, kwargs, exc: Exception) -> TypeError:
    names: list = []
    try:
        bound = signature.sig.bind(*args, **kwargs) if signature.sig else None
        items = list(bound.arguments.items()) if bound else None
    except TypeError:
        items = None
    if items is None:
        items = [(f"#{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
    previous = _refs.start_capture()
    try:
        for name, value in items:
            try:
                serialize(value)
            except Exception:
                names.append(name)
    finally:
        _refs.stop_capture(previous)
    which = ", ".join(repr(n) for n in names) if names else "the arguments"
    return TypeError(f"Could not pickle argument {which} of {signature.label}(): "
                     f"{type(exc).__name__}: {exc}")



def _refuse_ray_objects(signature: Signature, args: tuple, kwargs: dict) -> None:
    """Ray's own refs and actor handles name objects and actors on a Ray cluster, which
    the embedded runtime cannot reach."""
    kinds = tuple(getattr(sys.modules.get(module), name, None) for module, name in
                  (("ray._raylet", "ObjectRef"), ("ray.actor", "ActorHandle")))
    kinds = tuple(k for k in kinds if k is not None)
    for value in (*args, *kwargs.values()):
        if isinstance(value, kinds):
            what = "an ObjectRef" if isinstance(value, kinds[0]) else "an actor handle"
            raise ValueError(
                f"{signature.label}() was given {what} of Ray ({value!r}), but the embedded "
                f"runtime runs this session, not Ray: its value or actor lives on a Ray "
                f"cluster it cannot reach. Pass the value itself (ray.get it first), or run "
                f"the session on Ray: init(address=...) or init(backend='ray').")
