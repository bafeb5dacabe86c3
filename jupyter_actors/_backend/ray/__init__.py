"""The Ray backend: the same API on a real Ray cluster (``pip install "jupyter_actors[ray]"``)."""
from .connect import start_ray

__all__ = ["start_ray"]
