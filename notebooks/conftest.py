"""nbval runs the committed notebooks as they are (smoke profile, run `notebooks-smoke`): start it fresh."""
import shutil
from pathlib import Path


def pytest_sessionstart(session):
    shutil.rmtree(Path(__file__).resolve().parent.parent / "runs" / "notebooks-smoke", ignore_errors=True)
