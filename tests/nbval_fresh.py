"""A pytest plugin for `make test`'s notebook cells (`-p nbval_fresh`, with tests/ on PYTHONPATH): nbval runs the
committed notebooks as they are (smoke profile, run `notebooks-smoke`), so that run starts fresh; their cells are one
xdist group, run in order on one worker beside the other tests. It lives here, not in notebooks/, so that the wheel
(which ships notebooks/) carries no test code."""

from pathlib import Path

import pytest

from emotionlib.runs import remove_owned


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # once, in the controller, before any worker runs a cell
        remove_owned(Path(__file__).resolve().parent.parent / "runs" / "notebooks-smoke", "run")  # ours, by exact name


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(items):
    """Notebook 03 reads the run notebook 02 trains: every cell goes to the same worker, in the notebooks' order."""
    for item in items:
        if str(item.path).endswith(".ipynb"):
            item.add_marker(pytest.mark.xdist_group("notebooks"))
