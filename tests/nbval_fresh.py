"""A pytest plugin for `make test`'s notebook run (`-p nbval_fresh`, with tests/ on PYTHONPATH): nbval runs the committed notebooks as
they are (smoke profile, run `notebooks-smoke`), so that run starts fresh. It lives here, not in notebooks/, so
that the wheel (which ships notebooks/) carries no test code."""

from pathlib import Path

from emotionlib.runs import remove_owned


def pytest_sessionstart(session):
    remove_owned(Path(__file__).resolve().parent.parent / "runs" / "notebooks-smoke", "run")  # ours, by exact name
