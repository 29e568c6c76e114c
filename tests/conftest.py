"""Shared fixtures: the shared data copy, an isolated cache, and one smoke-trained run for the whole session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
os.environ.setdefault("EMOTIONLIB_DATA_DIR", str(SHARED / "data" / "semeval2025-task11"))
os.environ.setdefault("EMOTIONLIB_REFERENCE", str(SHARED / "reference" / "brighter_table5_monolingual.csv"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA_DIR = Path(os.environ["EMOTIONLIB_DATA_DIR"])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert (DATA_DIR / "SHA256SUMS").is_file(), f"tests need the data copy at {DATA_DIR} (set EMOTIONLIB_DATA_DIR)"
    return DATA_DIR


@pytest.fixture(scope="session")
def smoke_cfg(tmp_path_factory, data_dir):
    from emotionlib.config import load_config

    runs = tmp_path_factory.mktemp("runs")
    return load_config("smoke", {"run_id": "smoke", "runs_dir": str(runs)})


@pytest.fixture(scope="session")
def smoke_run(smoke_cfg) -> Path:
    """One trained and evaluated smoke run (tiny XLM-R, a few dozen English rows)."""
    from emotionlib.evaluate import evaluate
    from emotionlib.train import train

    run_dir = train(smoke_cfg)
    evaluate(run_dir)
    return run_dir


STACK = {"languages": ["arq", "sun"], "stack": ["network", "features_lr", "tfidf_lr"], "feature_layers": [1, -1]}


@pytest.fixture(scope="session")
def stacked_run(smoke_cfg):
    """A smoke run on two small languages with its stack fitted and evaluated (val, dev and test). Its tests are
    the xdist group "test_combine_langstack", so that one worker makes it."""
    from emotionlib.build import build
    from emotionlib.combine.stack_fit import fit_stack
    from emotionlib.evaluate import evaluate

    cfg = smoke_cfg.replace(run_id="smoke-stack", **STACK)
    build(cfg)
    table = fit_stack(cfg)
    evaluate(cfg.run_dir)
    return cfg, table


def make_report(where: Path, *args: str, timeout: int = 900):
    """`make report <args>` typed in the checkout, its runs and reports under `where` (RUNS_DIR, REPORTS_DIR)."""
    import subprocess

    dirs = [f"RUNS_DIR={where / 'runs'}", f"REPORTS_DIR={where / 'reports'}"]
    return subprocess.run(["make", "report", *args, *dirs], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def smoke_report(tmp_path_factory):
    """One `make report PROFILE=smoke` for the whole session, typed as a user types it (into a folder of the
    session's own): the report's tests, the second `make report` and the kill-and-rerun tests share it. Its tests
    are one xdist group, so that one worker makes it."""
    where, run_id = tmp_path_factory.mktemp("smoke-report"), "pytest-smoke"
    out = make_report(where, "PROFILE=smoke", f"RUN_ID={run_id}")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return where / "runs" / run_id, where / "reports" / run_id, out.stderr


@pytest.fixture
def run_copy(smoke_run, tmp_path):
    """A private copy of the trained smoke run (its own runs folder), free to damage."""
    import shutil

    dst = tmp_path / "runs" / smoke_run.name
    shutil.copytree(smoke_run, dst, symlinks=True)
    return dst


def gone_pid() -> int:
    """The process id of a process that has ended."""
    import subprocess

    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)


def killed_write(target: Path, pid: int | None = None) -> Path:
    """What a write of `target` killed midway leaves beside it (`runs.atomic_path`): its temporary folder, marked
    `temporary` by a process now gone (or `pid`), holding half the file."""
    import json

    from emotionlib.runs import MARKER, temporary_name

    folder = temporary_name(Path(target))
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(
        json.dumps({"made_by": "emotionlib", "kind": "temporary", "pid": gone_pid() if pid is None else pid})
    )
    (folder / Path(target).name).write_text("half a file")
    return folder


def tree(root: Path) -> dict[str, str]:
    """Every file under a folder (hidden ones included) with its sha256."""
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


def one_line_error(out, *needles: str) -> None:
    """A command refused in one line (exit 2, no traceback) that says each of `needles`."""
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    for needle in needles:
        assert needle in out.stderr, out.stderr


HEAVY = ("torch", "transformers", "sklearn", "onnxruntime")


def refused_lightly(*args: str):
    """`python -m emotionlib <args>` run in a fresh interpreter: (exit code, the heavy libraries it imported, stderr).
    A refusal of bad input should import none of them (each costs seconds on 2 cores)."""
    import subprocess

    code = (
        f"import sys\nfrom emotionlib.cli import main\nrc = main({list(args)!r})\n"
        f"print(rc, *[m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    rc, *heavy = out.stdout.split() or ["no output"]
    return rc, heavy, out.stderr


def run_cli(*args: str, **kwargs):
    """`python -m emotionlib <args>` in a fresh interpreter, from the checkout's root. For what only a process shows:
    its imports, signals, resource limits, a training that sets the threads."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "emotionlib", *args], capture_output=True, text=True, cwd=ROOT, **kwargs
    )


def run_here(*args: str):
    """What `python -m emotionlib <args>` returns and prints (as run_cli gives it), run by the CLI's own `main` in
    this process, from the checkout's root. For refusals and short commands: a fresh interpreter costs 3-4 s of
    imports on 2 cores, spent about 60 times over in the suite. Argparse's usage errors (SystemExit) return their code."""
    import contextlib
    import io
    import subprocess

    from emotionlib.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(["emotionlib", *args], rc, out.getvalue(), err.getvalue())


SLOW_FIXTURES = {
    "smoke_run",
    "run_copy",
    "tickets_run",
    "smoke_report",
    "finished_run",
    "stacked_run",
}  # each trains a model or renders a report


@pytest.fixture(autouse=True)
def _training_is_slow(request, monkeypatch):
    """A test that trains must be marked `slow` (`make test-fast` trains nothing): unmarked, training fails."""
    if request.node.get_closest_marker("slow") is None:
        import emotionlib.train

        def refuse(*args, **kwargs):
            raise AssertionError(f"{request.node.nodeid} trains a model: mark it @pytest.mark.slow")

        monkeypatch.setattr(emotionlib.train, "_train", refuse)


def pytest_collection_modifyitems(items):
    """Tests that train or render are `slow`: `make test-fast` (-m "not slow") leaves them out. Tests marked
    `heavy` are collected first (the rest keep their order): xdist hands out work in collection order, so the longest
    tests start early and the two workers finish together, instead of one running the wheel's report alone at the end."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)
