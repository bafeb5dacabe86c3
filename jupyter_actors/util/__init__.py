"""``jupyter_actors.util``: Ray's ``ray.util`` helpers: ``ActorPool`` and ``queue.Queue``."""
from . import queue
from .actor_pool import ActorPool
from .queue import Queue

__all__ = ["ActorPool", "Queue", "queue"]
