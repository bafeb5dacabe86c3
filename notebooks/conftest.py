"""pytest settings for checking the notebooks with nbval.

``python -m pytest --nbval notebooks/`` compares every cell's fresh output with
the output stored in the notebook. Unless the command line names another file,
the comparison goes through ``nbval_sanitize.cfg`` beside this file (pids, ref
ids, addresses, durations), and the kernel is the Python running pytest.
"""
from pathlib import Path

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def pytest_configure(config):
    option = config.option
    if not (getattr(option, "nbval", False) or getattr(option, "nbval_lax", False)):
        return
    if getattr(option, "nbval_sanitize_with", None) is None:
        option.nbval_sanitize_with = str(SANITIZE)
    if not option.nbval_kernel_name:
        option.nbval_current_env = True
