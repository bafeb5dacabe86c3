"""A remote traceback as plain data: the frames of the user's code, not the runtime's.

With every error a worker sends the frames of the code that raised it, one
tuple each (see ``describe_frames``), so that the driver can draw them the
way it draws a local error (``_jupyter/remote_tracebacks.py``): IPython names
a cell's file ``Cell In[N]`` and reads its lines from the kernel's cache,
and a script's file is on the driver's disk too.

Runtime frames (this package, ``concurrent.futures``, ``asyncio``) at either
end of a traceback are left out: at the start they are the worker's own
machinery, at the end the ``get``/``await`` a call waited in.
"""
from __future__ import annotations

import concurrent.futures
import os

_RUNTIME_DIRS = tuple(os.path.dirname(os.path.abspath(path)) + os.sep for path in (
    os.path.dirname(os.path.abspath(__file__)),      # this package (the folder above _wire)
    concurrent.futures.__file__,
    # asyncio's package in the standard library (not imported for this: most workers
    # never load it)
    os.path.join(os.path.dirname(os.__file__), "asyncio", "__init__.py"),
))


def is_runtime_file(filename: str) -> bool:
    return filename.startswith(_RUNTIME_DIRS)


def entries(tb) -> list:
    """The traceback's entries, outermost first."""
    found = []
    while tb is not None:
        found.append(tb)
        tb = tb.tb_next
    return found


def without_runtime_tail(tbs: list) -> list:
    """``tbs`` without the runtime frames at its end (the get/await that waited)."""
    end = len(tbs)
    while end and is_runtime_file(tbs[end - 1].tb_frame.f_code.co_filename):
        end -= 1
    return tbs[:end]


def describe_frames(exc: BaseException) -> tuple:
    """The frames of the user's code that raised ``exc``, as plain tuples.

    Each is ``(filename, lineno, name, first line, qualified name, argument
    names, *args name or None, **kwargs name or None)``. An error that came from
    a call this one waited for continues with that call's frames.
    """
    tbs = entries(exc.__traceback__)
    start = 0
    while start < len(tbs) and is_runtime_file(tbs[start].tb_frame.f_code.co_filename):
        start += 1
    frames = tuple(_describe(tb) for tb in without_runtime_tail(tbs[start:]))
    nested = getattr(exc, "_remote_frames", None)  # set on errors rebuilt from a worker's
    return frames + tuple(nested) if nested else frames


def _describe(tb) -> tuple:
    code = tb.tb_frame.f_code
    # What inspect.getargs(code) says, without importing inspect in every worker.
    count = code.co_argcount + code.co_kwonlyargcount
    names = code.co_varnames
    args = names[:count]
    varargs = names[count] if code.co_flags & 0x04 else None          # CO_VARARGS
    varkw = names[count + bool(varargs)] if code.co_flags & 0x08 else None  # CO_VARKEYWORDS
    return (code.co_filename, tb.tb_lineno or code.co_firstlineno, code.co_name,
            code.co_firstlineno, getattr(code, "co_qualname", code.co_name),
            tuple(args), varargs, varkw)
