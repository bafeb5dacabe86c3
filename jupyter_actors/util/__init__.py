"""``jupyter_actors.util``: Ray's ``ray.util`` helpers: ``ActorPool``, ``queue.Queue``, ``pdb``."""
from . import pdb, queue
from .actor_pool import ActorPool
from .queue import Queue

__all__ = ["ActorPool", "Queue", "pdb", "queue"]
