"""Backends: what runs actors and tasks behind the public API (see ``base``)."""
