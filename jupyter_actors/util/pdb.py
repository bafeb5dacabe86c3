"""Ray's ``ray.util.pdb``: ``set_trace()`` and ``post_mortem()``, usable inside actors and tasks.

Inside a worker they open pdb where ``breakpoint()`` does: in the cell (or on
the terminal) that made the call, one session at a time; where nobody can
answer they do nothing. In the driver they are plain pdb.
"""
from __future__ import annotations

import pdb as _pdb
import sys

__all__ = ["post_mortem", "set_trace"]


def set_trace(breakpoint_uuid=None) -> None:
    """Stop here under pdb (``breakpoint_uuid`` is accepted for Ray's signature, unused)."""
    from .._worker import prompts
    frame = sys._getframe(1)
    if prompts.installed is not None:
        prompts.installed.debug(frame)
    else:
        _pdb.Pdb().set_trace(frame)


def post_mortem(traceback=None) -> None:
    """pdb at the frame where the exception being handled (or ``traceback``) was raised."""
    _pdb.post_mortem(traceback)
