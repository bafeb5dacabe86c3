"""The pieces of the Jupyter integration, one job per module; ``magics`` wires them up.

Nothing here is imported by ``import jupyter_actors``: only loading the
IPython extension (or ``jupyter_actors.progress``) brings these modules in.
"""
