"""`pip install <wheel>` and go: the wheel, installed into a throwaway virtual environment that reuses this
environment's dependencies (no network), runs the smoke report from an empty folder outside the repository."""

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd, cwd=None):
    # the dependencies' data files (nbconvert's templates, the kernel spec) lie in this environment's share/jupyter,
    # as they would in the throwaway environment had pip installed the dependencies there
    env = os.environ | {"PYTHONNOUSERSITE": "1", "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env)
    assert out.returncode == 0, f"{cmd}: {out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.heavy
@pytest.mark.slow
def test_the_wheel_runs_the_smoke_report_outside_the_repository(tmp_path, data_dir):
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-q",
        ROOT,
        "-w",
        tmp_path / "wheels",
    )
    wheel = next((tmp_path / "wheels").glob("emotionlib-*.whl"))
    import zipfile

    shipped = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in shipped if n.endswith("conftest.py")], shipped  # no test code in the package
    assert "emotionlib/encoders/gemma.py" in shipped
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    # this environment's packages, as plain paths: its editable emotionlib (a .pth hook) is not picked up
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel)

    work = tmp_path / "work"
    work.mkdir()
    emotionlib = env / "bin" / "emotionlib"
    where = run(python, "-c", "import emotionlib; print(emotionlib.__file__)", cwd=work)
    assert where.startswith(str(site)), where  # the wheel's copy, not the checkout's
    assert run(emotionlib, "--version", cwd=work).startswith("emotionlib 0.1.0 (commit unknown)")
    listed = run(emotionlib, "profiles", cwd=work)
    assert all(f"  {name} " in listed for name in ("smoke", "quick", "paper", "best", "multilingual", "crosslingual"))
    report = run(emotionlib, "report", "--config", "smoke", "--set", "run_id=wheel-smoke", cwd=work).strip()

    assert (work / report).resolve() == (work / "reports" / "wheel-smoke").resolve(), report
    assert (work / "reports" / "wheel-smoke" / "report.html").is_file()
    provenance = json.loads((work / "runs" / "wheel-smoke" / "provenance.json").read_text())
    assert provenance["libraries"]["emotionlib"] == "0.1.0" and provenance["commit"] == "unknown"
    assert (work / "runs" / "wheel-smoke" / "metrics.json").is_file()
    assert not (ROOT / "runs" / "wheel-smoke").exists() and not (ROOT / "reports" / "wheel-smoke").exists()
