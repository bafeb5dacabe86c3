"""The worker process (run as ``python -m jupyter_actors._worker FD PPID``; see ``__main__``)."""
