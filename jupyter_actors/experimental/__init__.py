"""Ray's ``ray.experimental`` path: ``tqdm_ray``, progress bars from actors and tasks."""
