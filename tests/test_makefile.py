"""`make report` and `make test` typed first on a fresh clone make the environment themselves."""

import os
import shutil
import subprocess
import time

from conftest import ROOT


def dry_run(folder, target: str) -> str:
    out = subprocess.run(["make", "-n", target, "PYTHON_SYS=python3"], cwd=folder, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_report_and_test_build_a_missing_or_stale_environment_first(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    for target, command in (("test", "-m pytest tests"), ("report", "-m emotionlib report")):
        plan = dry_run(tmp_path, target)  # no .venv: it is made before the command runs
        assert not (tmp_path / ".venv").exists()  # `make -n` prints the plan and runs none of it
        assert "-m venv .venv" in plan and "pip install --quiet -e '.[dev]'" in plan
        assert plan.index("-m venv .venv") < plan.index(command)
    stamp = tmp_path / ".venv" / ".emotionlib-installed"
    stamp.parent.mkdir()
    stamp.touch()
    assert "-m venv" not in dry_run(tmp_path, "test")  # up to date: nothing is reinstalled
    later = time.time() + 10
    os.utime(tmp_path / "pyproject.toml", (later, later))  # pyproject.toml changed since the install
    assert "pip install --quiet -e '.[dev]'" in dry_run(tmp_path, "test")
