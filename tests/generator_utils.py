"""A task generator whose first worker dies mid-stream, shared by the generator tests."""
from __future__ import annotations

import os

import jupyter_actors as ray
from tests.helpers import GUARD, FileEvent


@ray.remote(max_retries=1)
def crash_after_two(tmp):
    """Yields 0..3; after item 1 has been taken (the "taken" file), its first worker dies."""
    for i in range(4):
        yield i
        if i == 1 and not os.path.exists(f"{tmp}/crashed"):
            assert FileEvent(f"{tmp}/taken").wait(GUARD)
            FileEvent(f"{tmp}/crashed").set()
            os._exit(1)
