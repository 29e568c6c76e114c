"""Run integrity: one layout, write-once config and split, a lock, skipped steps, clean restarts, moved runs,
and one-line errors. Each test is a defect a new user met (issue 13)."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, killed_write, make_report, refused_lightly, run_cli, run_here
from emotionlib.config import ConfigError, load_config
from emotionlib.runs import RunLayout, read_json, run_lock


def tree(root: Path) -> dict[str, str]:
    """Every file under a folder with its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def smoke(tmp_path, run_id="r", **overrides):
    return load_config("smoke", {"runs_dir": str(tmp_path / "runs"), "run_id": run_id, **overrides})


# --- make report twice ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_report")
def test_make_report_twice_skips_training_and_leaves_every_run_file_identical(smoke_report):
    run, report_dir, _ = smoke_report  # the first `make report` of the session (conftest)
    where, args = run.parent.parent, ["PROFILE=smoke", f"RUN_ID={run.name}"]
    before = tree(run)
    second = make_report(where, *args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "training skipped" in (report_dir / "02_train.ipynb").read_text(encoding="utf-8")
    assert tree(run) == before
    assert (report_dir / "report.html").is_file()
    # without PROFILE the run keeps its own settings, whatever the default profile is: make hands the run folder to
    # `emotionlib report --run`, which keeps the run's settings (the kill test below reruns a run the same way)
    third = make_report(where, "-n", f"RUN_ID={run.name}")
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"--run '{run}'" in third.stdout and "--config" not in third.stdout, third.stdout
    assert f"--reports-dir '{report_dir.parent}'" in third.stdout, third.stdout
    # other settings for the same run_id are refused, the fields named, and nothing changes
    other = make_report(where, *args, "SET=seed=7 val_fraction=0.3")
    assert other.returncode != 0
    assert "seed: 42 in the run, 7 given" in other.stderr and "val_fraction: 0.2 in the run, 0.3 given" in other.stderr
    assert tree(run) == before


def test_data_step_with_other_settings_does_not_rewrite_config_or_split(tmp_path):
    from emotionlib.split import prepare_data

    cfg = smoke(tmp_path)
    prepare_data(cfg)
    layout = RunLayout(cfg.run_dir)
    before = tree(layout.root)
    with pytest.raises(ConfigError, match="other settings") as err:
        prepare_data(cfg.replace(seed=7, val_fraction=0.3))
    assert "seed: 42 in the run, 7 given" in str(err.value) and "val_fraction: 0.2 in the run, 0.3 given" in str(
        err.value
    )
    assert tree(layout.root) == before


# --- killed steps and resume ------------------------------------------------------------------------------


@pytest.mark.slow
def test_resume_without_a_checkpoint_starts_over_cleanly(tmp_path):
    """Killed after an epoch was logged but before any checkpoint: --resume starts over, each epoch once."""
    from emotionlib.train import train

    cfg = smoke(tmp_path, epochs=2, patience=0)
    layout = RunLayout(train(cfg))
    layout.train_summary.unlink()  # as if killed at the end of epoch 2, before the summary and with no checkpoint
    shutil.rmtree(layout.checkpoint, ignore_errors=True)
    debris = killed_write(layout.train_summary)  # as a killed write of the summary leaves it
    train(cfg, resume=True)
    log = [line for line in layout.train_log.read_text().splitlines()]
    assert [read_json_line(x)["epoch"] for x in log] == [1, 2]
    assert read_json(layout.train_summary)["epochs_run"] == 2
    assert not debris.exists()


def read_json_line(line: str) -> dict:
    import json

    return json.loads(line)


@pytest.mark.slow
def test_interrupted_training_without_resume_is_refused_with_the_hint(tmp_path):
    from emotionlib.train import train

    cfg = smoke(tmp_path, epochs=1)
    layout = RunLayout(train(cfg))
    layout.train_summary.unlink()
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(cfg)


@pytest.mark.slow
def test_ctrl_c_during_training_says_how_to_continue(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "emotionlib",
        "train",
        "--config",
        "smoke",
        "--set",
        f"runs_dir={tmp_path}",
        "run_id=int",
        "epochs=50",
        "max_train_rows=2000",
        "patience=0",
    ]
    # a shell's background job inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler:
    # give the child the terminal's default, as a user's foreground command has it
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "int" / "provenance.json").is_file():
        time.sleep(0.1)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "emotionlib train: interrupted. `python -m emotionlib train ... --resume` continues the training."
    )
    assert "Traceback" not in err


# --- one writer at a time -------------------------------------------------------------------------------


def test_a_second_writer_is_refused_while_the_lock_is_held(tmp_path):
    layout = RunLayout(tmp_path / "run")
    with run_lock(layout):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "from emotionlib.runs import RunLayout, run_lock\n"
                f"with run_lock(RunLayout({str(layout.root)!r})): pass",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert out.returncode != 0 and "RunBusy" in out.stderr and "in use by another process" in out.stderr
    with run_lock(layout):  # released when the holder is done
        pass


@pytest.mark.slow
def test_two_trainings_into_one_run_id_one_is_refused(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "emotionlib",
        "train",
        "--config",
        "smoke",
        "--set",
        f"runs_dir={tmp_path}",
        "run_id=same",
        "epochs=2",
        "max_train_rows=600",
        "patience=0",
    ]
    import emotionlib.train  # noqa: F401  (the second's imports done before the first starts, not while it trains)

    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "same" / "provenance.json").is_file():
        time.sleep(0.05)
    # the second in this process: it reaches the run's lock at once, while the first's training still holds it
    second = run_here(*cmd[3:-3], "loss=focal", *cmd[-2:])
    assert first.poll() is None, "the first training ended before the second came: the test proves nothing"
    assert first.wait(timeout=600) == 0
    assert second.returncode == 2
    assert "in use by another process" in second.stderr or "other settings" in second.stderr
    log = (tmp_path / "same" / "train_log.jsonl").read_text().splitlines()
    assert [read_json_line(x)["epoch"] for x in log] == [1, 2]
    assert read_json(tmp_path / "same" / "train_summary.json")["epochs_run"] == 2


# --- evaluate, predict, interpret on any run, in any order -------------------------------------------------


def test_evaluate_split_or_lang_never_moves_the_headline(smoke_run, tmp_path):
    from emotionlib.evaluate import evaluate

    run = tmp_path / "copy"
    shutil.copytree(smoke_run, run)
    headline = read_json(run / "metrics.json")["headline"]
    evaluate(run, splits=["val"])
    metrics = read_json(run / "metrics.json")
    assert metrics["headline"] == headline and headline["set"] == "dev/eng"
    assert {"val/eng", "dev/eng"} <= set(metrics["sets"])
    assert (RunLayout(run).set_metrics("val", "eng")).is_file() and RunLayout(run).set_metrics("dev", "eng").is_file()


def test_a_moved_run_works_in_any_order_and_writes_only_inside_itself(smoke_run, tmp_path):
    from emotionlib.evaluate import evaluate
    from emotionlib.interpret import interpret_run

    moved = tmp_path / "elsewhere" / "moved"
    shutil.copytree(smoke_run, moved, ignore=shutil.ignore_patterns("eval", "metrics.json", "interpret", "steps"))
    original = tree(smoke_run.parent)
    interpret_run(moved)  # before evaluate: computes the probabilities it needs itself
    src = tmp_path / "in.csv"
    src.write_text("id,text\na,so happy\n", encoding="utf-8")
    assert (
        run_here("predict", "--run", str(moved), "--input", str(src), "--output", str(tmp_path / "o.csv")).returncode
        == 0
    )
    evaluate(moved)
    assert tree(smoke_run.parent) == original  # the runs folder named in the moved run's config is untouched
    assert RunLayout(moved).metrics.is_file() and RunLayout(moved).interpret_summary.is_file()
    assert not (moved.parent / "config.yaml").exists()


def test_evaluate_and_interpret_skip_when_nothing_changed(smoke_run, tmp_path):
    from emotionlib.evaluate import evaluate
    from emotionlib.interpret import interpret_run

    run = tmp_path / "copy"
    shutil.copytree(smoke_run, run)
    evaluate(run)
    interpret_run(run)
    before = tree(run)
    evaluate(run)
    interpret_run(run)
    assert tree(run) == before


# --- one-line errors, checked before anything is written --------------------------------------------------


@pytest.mark.parametrize(
    "sets,message",
    [
        (["languages=xxx"], "unknown language code 'xxx'"),
        (["max_length=100000"], "config field 'max_length': 100000 exceeds the 512 positions"),
        (["runs_dir="], "config field 'runs_dir': must name a folder"),
        (["model=xlm-roberta-base"], "encoder 'xlm-roberta-base' is not in the Hugging Face cache"),
    ],
)
def test_report_refuses_bad_settings_before_any_notebook_runs(tmp_path, sets, message):
    run_id = f"pytest-bad-{time.strftime('%H%M%S')}-{len(sets[0])}"
    out = run_cli(
        "report", "--config", "smoke", "--set", f"run_id={run_id}", *sets, env=os.environ | {"HF_HUB_OFFLINE": "1"}
    )
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (ROOT / "runs" / run_id).exists() and not (ROOT / "reports" / run_id).exists()


@pytest.mark.parametrize("command", ["train", "run", "distill"])
def test_a_refused_setting_is_said_before_the_trainer_loads(command):
    """A typo costs no import of torch, transformers or scikit-learn (seconds on 2 cores)."""
    rc, heavy, err = refused_lightly(command, "--config", "smoke", "--set", "languages=xxx", "teacher=profile:smoke")
    assert (rc, heavy) == ("2", []), err[-2000:]
    assert "unknown language code 'xxx'" in err


def test_debug_shows_the_traceback():
    out = run_cli("--debug", "train", "--config", "smoke", "--set", "languages=xxx")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_chromium_failure_is_reported_with_its_message_and_leaves_nothing(tmp_path, monkeypatch):
    from emotionlib import pipeline as report

    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'some noise' >&2\necho 'FATAL: no usable sandbox' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(report, "chromium", lambda: str(fake))
    html = tmp_path / "r" / "report.html"
    html.parent.mkdir()
    html.write_text("<html>hi</html>")
    with pytest.raises(
        RuntimeError, match=r"could not print .*report.html to PDF \(exit 3\): FATAL: no usable sandbox"
    ):
        report.render_pdf(html, tmp_path / "r" / "report.pdf")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.html"]


def test_every_run_file_name_comes_from_the_layout():
    """No module or notebook spells a run file's name; RunLayout does."""
    import nbformat

    names = [
        "train_log.jsonl",
        "train_summary.json",
        "metrics.json",
        "split.json",
        "published_comparison.csv",
        "provenance.json",
        "label_proportions.csv",
        "training_curves.png",
    ]
    folders = ["model", "eval", "interpret", "data", "checkpoint"]
    literals = (
        [f"{q}{n}{q}" for n in names for q in "\"'"]
        + [f"/ {q}{d}{q}" for d in folders for q in "\"'"]
        + [f"{q}{d}/" for d in folders for q in "\"'"]
    )
    for path in (ROOT / "emotionlib").rglob("*.py"):
        if path.name not in ("runs.py", "model.py", "minilm.py"):  # minilm: its package's own "model" folder
            text = path.read_text(encoding="utf-8")
            assert not [x for x in literals if x in text], path.name
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert not [x for x in literals if x in code], path.name


def test_runbusy_is_a_one_line_cli_error(tmp_path):
    layout = RunLayout(tmp_path / "busy")
    with run_lock(layout):
        out = run_cli("train", "--config", "smoke", "--set", f"runs_dir={tmp_path}", "run_id=busy")
    assert out.returncode == 2 and "in use by another process" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# state a kill leaves behind in each step: the files that say the step is complete are missing, debris remains
KILLED_IN = {
    "prepare": lambda r: (r.split.unlink(), r.label_proportions.unlink()),
    "train": lambda r: (r.train_summary.unlink(), r.training_curves.unlink()),
    "evaluate": lambda r: (r.metrics.unlink(), (r.steps / "evaluate.json").unlink()),
    "interpret": lambda r: (r.interpret_summary.unlink(), (r.steps / "interpret.json").unlink(missing_ok=True)),
}


def rerun_steps(run_dir: Path) -> None:
    """What notebooks 01-04 call, in their order (test_the_steps_rerun_are_the_notebooks_calls checks it)."""
    from emotionlib import build, evaluate, interpret, preflight
    from emotionlib.run_config import config_of_run

    cfg = config_of_run(run_dir)
    preflight.prepare(cfg)
    build.build(cfg)
    evaluate.evaluate(run_dir)
    interpret.interpret_run(run_dir)


STEP_CALLS = [
    "preflight.prepare(cfg)",
    "build.build(cfg)",
    "evaluate.evaluate(run_dir)",
    "interpret.interpret_run(run_dir)",
]


def test_the_steps_rerun_are_the_notebooks_calls():
    """The kill tests rerun three of the four steps in-process: the calls must be the ones the notebooks make."""
    import nbformat

    code = "\n".join(
        c.source
        for path in sorted((ROOT / "notebooks").glob("0[1-4]_*.ipynb"))
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "code"
    )
    calls = [call for call in STEP_CALLS if call in code]
    assert calls == STEP_CALLS and sorted(calls, key=code.index) == STEP_CALLS


@pytest.fixture
def finished_run(smoke_report):
    """The session's smoke report's run (conftest), copied by each test that damages it."""
    return smoke_report[0]


@pytest.mark.xdist_group("smoke_report")
@pytest.mark.parametrize("step", list(KILLED_IN))
def test_a_kill_at_any_step_then_the_same_command_finishes_the_run(step, finished_run, tmp_path):
    """A run killed in one step: the rerun redoes that step (and those after it), keeps the ones before."""
    layout = RunLayout(tmp_path / "runs" / finished_run.name)
    shutil.copytree(finished_run, layout.root)
    done = tree(layout.root)
    KILLED_IN[step](layout)
    killed_write(layout.root / step)  # what a killed write leaves
    if step == "train":  # the command a user types again, notebooks and report included
        again = run_cli("run", "--run", str(layout.root), "--reports-dir", str(tmp_path / "reports"))
        assert again.returncode == 0, again.stderr[-2000:]
    else:  # the calls the notebooks make, in their order, without rendering the report again
        rerun_steps(layout.root)
    after = tree(layout.root)
    assert set(after) == set(done)  # every output is back, the debris is gone
    earlier = {
        "prepare": (),
        "train": ("data/",),
        "evaluate": ("data/", "model/", "train_log"),
        "interpret": ("data/", "model/", "train_log", "metrics.json", "eval/"),
    }[step]
    for name in done:
        if name.startswith(earlier):  # the steps before the killed one are untouched
            assert after[name] == done[name], name
    assert read_json(layout.metrics)["headline"]["set"] == "dev/eng"
