"""The embedded runtime: actors and tasks in worker processes on this machine."""
from .backend import LocalBackend

__all__ = ["LocalBackend"]
