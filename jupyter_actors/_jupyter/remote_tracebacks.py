"""A remote error drawn in IPython as if the call had run in the cell.

    the cell's traceback (real frames)       the worker's frames (plain tuples)
    ─────────────────────────────────        ──────────────────────────────────
    Cell In[5], line 3: ray.get(ref)    ──▶  Cell In[2], line 4, in A.boom(self, x)
    [get, futures: the runtime, dropped]     (a stand-in frame per remote frame)

IPython's traceback printer needs frame objects: for each remote frame a small
stand-in function is compiled under the remote file's name with its
``raise`` on the remote line, and run once to get a real frame. IPython then
draws it like any other: ``Cell In[N]`` for the kernel's cell files (the name
maps back through the kernel's compiler), the source lines from ``linecache``.

Drawing also sets the exception's traceback (and ``sys.last_traceback``) to
the local part ending at the user's ``get``/``await`` line, so ``%debug``
opens there with the cell's variables, not in the runtime.
"""
from __future__ import annotations

import functools
import keyword
import sys
import types

from .._wire.tracebacks import entries, without_runtime_tail


class _Unwind(Exception):
    """Raised by a stand-in function to capture its frame."""


def renderer_for(exc: BaseException):
    """A function drawing ``exc`` for IPython's ``_render_traceback_``, or None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "InteractiveTB"):
        return None
    return functools.partial(_render, shell, exc)


def _render(shell, exc: BaseException) -> list:
    local = without_runtime_tail(entries(exc.__traceback__))
    remote = remote_traceback(exc._remote_frames)
    combined = _chain(local, remote)
    # The RemoteTraceback cause repeats the frames drawn below; it stays when
    # the remote exception was chained, since only its text shows that chain.
    cause, suppress = exc.__cause__, exc.__suppress_context__
    if not getattr(exc, "_remote_chained", True):
        exc.__cause__ = None
        exc.__suppress_context__ = True
    try:
        stb = shell.InteractiveTB.structured_traceback(type(exc), exc, combined)
    finally:
        exc.__cause__, exc.__suppress_context__ = cause, suppress
    local_tb = _chain(local, None)
    shell.InteractiveTB.tb = local_tb      # where %pdb / %debug start
    exc.__traceback__ = local_tb
    if getattr(sys, "last_value", None) is exc:
        sys.last_traceback = local_tb
    return stb


def _chain(tbs: list, tail):
    """New traceback entries for ``tbs`` (the originals stay as they are), then ``tail``."""
    for tb in reversed(tbs):
        tail = types.TracebackType(tail, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
    return tail


def remote_traceback(frames) -> types.TracebackType | None:
    """A traceback of stand-in frames, one per remote frame, outermost first."""
    tail = None
    for frame_info in reversed(tuple(frames)):
        try:
            frame, lasti = _stand_in(*frame_info)
        except Exception:
            continue  # a frame that cannot be rebuilt is left out, not the error
        tail = types.TracebackType(tail, frame, lasti, frame_info[1])
    return tail


@functools.lru_cache(maxsize=512)
def _stand_in(filename, lineno, name, firstlineno, qualname, args, varargs, varkw):
    """A real frame of code named like the remote one, stopped at ``lineno`` of ``filename``."""
    scope = {"__name__": "__remote__", "__unwind__": _Unwind}
    is_function = name.isidentifier() and not keyword.iskeyword(name) and lineno > firstlineno
    if is_function:
        # A function with the remote one's name and arguments, so IPython shows
        # "in A.boom(self, x)" as it would for the real one.
        params = list(args) + [f"*{varargs}"] * bool(varargs) + [f"**{varkw}"] * bool(varkw)
        source = ("\n" * (firstlineno - 1) + f"def {name}({', '.join(params)}):\n"
                  + "\n" * (lineno - firstlineno - 1) + "    raise __unwind__\n")
        module = compile(source, filename, "exec")
        code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    else:  # a lambda, a comprehension, module code: only the name and the line
        code = compile("\n" * (lineno - 1) + "raise __unwind__\n", filename, "exec")
    renamed = {"co_name": name}
    if hasattr(code, "co_qualname"):
        renamed["co_qualname"] = qualname
    code = code.replace(**renamed)
    try:
        if is_function:
            types.FunctionType(code, scope)(*[None] * len(args))
        else:
            exec(code, scope)
    except _Unwind:
        tb = sys.exc_info()[2].tb_next
        return tb.tb_frame, tb.tb_lasti
    raise RuntimeError("the stand-in frame did not raise")
