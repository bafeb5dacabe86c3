"""Send what an actor prints to the notebook cell that made the call.

    cell's thread, at .remote()           driver I/O thread, when lines arrive
    ───────────────────────────           ────────────────────────────────────
    capture(): remember the cell's  ───▶  write(context, ...): publish the lines
    parent message and the stream         with that parent, even if another cell
    objects sys.stdout/stderr are now     runs now (the frontend keeps the first
                                          cell's output area open)

With ipykernel >= 7 a stream keeps one buffer per parent message, and
``set_thread_parent`` routes only this thread's writes, so the lines share the
cell's buffer with what the cell printed itself and keep their order with it.
Older kernels have one buffer flushed with the global parent: there the lines
go out as a stream message of their own, after flushing what the buffer holds.
Never ``set_parent`` here: that moves the global parent the running cell uses.
"""
from __future__ import annotations

import sys

from .._output import OutputRouter, _isatty, format_lines
from . import cell_input
from .cell_bars import CellBar


class CellContext:
    """Where one call's output belongs: the cell's parent header and its streams."""

    __slots__ = ("parent", "stdout", "stderr")

    def __init__(self, parent: dict | None, stdout, stderr):
        self.parent = parent
        self.stdout = stdout
        self.stderr = stderr

    @property
    def msg_id(self) -> str | None:
        return self.parent.get("msg_id") if self.parent else None


class CellOutputRouter(OutputRouter):
    """Routes each call's output to the cell that submitted the call."""

    def capture(self) -> CellContext:
        out, err = sys.stdout, sys.stderr
        return CellContext(_parent_of(out), out, err)

    def write(self, context, stream: str, prefix: str, text: str) -> None:
        if not isinstance(context, CellContext):
            super().write(context, stream, prefix, text)
            return
        target = context.stdout if stream == "stdout" else context.stderr
        if target is None or getattr(target, "closed", False):
            return
        lines = format_lines(prefix, text, _isatty(target))
        parent = context.parent
        if not parent:
            target.write(lines)
            target.flush()
        elif hasattr(target, "set_thread_parent"):
            token = target.set_thread_parent(parent)
            try:
                target.write(lines)
            finally:
                target.reset_thread_parent(token)
        else:
            _publish_with_parent(target, parent, lines)


    # A call's tqdm bars: one display each in the cell that made the call.
    def open_bar(self, context, prefix: str):
        if not isinstance(context, CellContext) or not context.parent:
            return super().open_bar(context, prefix)
        stream = context.stdout
        if stream is None or not hasattr(stream, "session") or not hasattr(stream, "pub_thread"):
            return super().open_bar(context, prefix)
        return CellBar(stream, context.parent, prefix)

    # A worker's breakpoint() / input(): asked in the running cell, through the kernel.
    def can_ask(self, context) -> bool:
        found = cell_input.kernel()
        if found is None:
            return super().can_ask(context)
        return cell_input.can_ask(found)

    def why_nobody_answers(self) -> str:
        if cell_input.kernel() is None:
            return super().why_nobody_answers()
        return ("a notebook run without input, such as nbconvert or nbval, or a script "
                "without a terminal")

    def ask(self, context, prompt: str, password: bool = False, cancel=None) -> str:
        found = cell_input.kernel()
        if found is None:
            return super().ask(context, prompt, password, cancel)
        streams = (context.stdout, context.stderr) if isinstance(context, CellContext) else ()
        return cell_input.ask(found, prompt, password, streams, cancel)


def _parent_of(stream) -> dict | None:
    """The parent header an ipykernel stream writes with in this thread, if it is one."""
    if not hasattr(stream, "session") or not hasattr(stream, "pub_thread"):
        return None  # a plain file, or a capture object such as %%capture's
    try:
        parent = stream.parent_header
    except Exception:
        return None
    return dict(parent) if parent else None


def _publish_with_parent(stream, parent: dict, text: str) -> None:
    """ipykernel < 7: one stream message with the cell's parent, after what is buffered."""
    stream.flush()  # keep the order with what the cell has printed so far
    session = stream.session
    msg = session.msg("stream", {"name": stream.name, "text": text}, parent=parent)
    session.send(stream.pub_thread, msg, ident=stream.topic)
