"""Hostile input (issue 19): nothing emotionlib did not create is ever deleted or overwritten, and bad input is a
one-line error naming the file, row or field, before anything is written.

Each test is a probe a hostile tester ran; the numbers are the issue's items. The earlier probes (issue 13: locks,
resume, moved runs, predict arguments, damaged weights, refused settings) stay in test_runs.py, test_predict.py
and test_own_data.py; the property-based tests at the end cover the readers as a class.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import gone_pid, killed_write, one_line_error, run_here, tree
from emotionlib.config import ConfigError, load_config, parse_overrides
from emotionlib.data import DataError, read_table, read_texts


# --- 1: run ids are one safe path component ------------------------------------------------------------

HOSTILE_IDS = ["..", ".", ".git", ".hidden", "../x", "a/b", "/abs", "a\\b", "~", "a b", "x" * 256, "a\x00b", "-rf", "é"]


@pytest.mark.parametrize("run_id", HOSTILE_IDS)
def test_hostile_run_ids_are_refused_by_the_config(run_id, tmp_path):
    with pytest.raises(ConfigError, match="run_id"):
        load_config("smoke", {"runs_dir": str(tmp_path), "run_id": run_id})


@pytest.mark.parametrize("run_id", ["a", "a.b", "quick-20261201-101010", "lr=1e-4_s42", "A_9"])
def test_ordinary_run_ids_are_accepted(run_id, tmp_path):
    assert load_config("smoke", {"runs_dir": str(tmp_path), "run_id": run_id}).run_dir.name == run_id


def test_run_id_dotdot_writes_nothing_and_keeps_hidden_folders(tmp_path):
    """The probe that deleted .git: train with run_id=.. into a folder that holds a git checkout."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").write_text("#")
    before = tree(project)
    out = run_here("train", "--config", "smoke", "--set", f"runs_dir={project / 'runs'}", "run_id=..")
    one_line_error(out, "run_id")
    assert tree(project) == before


def test_a_run_folder_emotionlib_did_not_make_is_refused(tmp_path):
    from emotionlib.train import train

    folder = tmp_path / "runs" / "mine"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / ".git").mkdir()
    before = tree(folder)
    with pytest.raises(ValueError, match="not made by emotionlib"):
        train(load_config("smoke", {"runs_dir": str(tmp_path / "runs"), "run_id": "mine"}))
    assert tree(folder) == before


# --- 2: hidden folders inside a run survive every step ------------------------------------------------------


def test_hidden_folders_inside_a_run_survive_train_evaluate_and_interpret(run_copy):
    from emotionlib.evaluate import evaluate
    from emotionlib.interpret import interpret_run
    from emotionlib.runs import RunLayout, temporary_name
    from emotionlib.train import train

    layout = RunLayout(run_copy)
    (run_copy / ".git").mkdir()
    (run_copy / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (layout.interpret / ".ipynb_checkpoints").mkdir(parents=True, exist_ok=True)
    (layout.interpret / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    (layout.eval / ".mine.tmp").write_text("a user's file with a temporary-looking name")
    (run_copy / ".old").mkdir()
    ours = killed_write(layout.metrics)  # what a killed write of metrics.json leaves
    ours_dir = temporary_name(layout.model)  # killed before its marker was written: empty
    ours_dir.mkdir()
    shaped = temporary_name(layout.metrics)  # a user's file named as emotionlib names its temporaries: no record
    shaped.write_text("a user's file")
    user = {
        p: p.read_bytes()
        for p in [
            shaped,
            run_copy / ".git" / "HEAD",
            layout.eval / ".mine.tmp",
            layout.interpret / ".ipynb_checkpoints" / "x-checkpoint.ipynb",
        ]
    }
    cfg = load_config(yaml.safe_load(layout.config.read_text()))
    train(cfg.replace(runs_dir=str(run_copy.parent)))
    evaluate(run_copy)
    interpret_run(run_copy)
    assert {p: p.read_bytes() for p in user} == user and (run_copy / ".old").is_dir()
    assert not ours.exists() and not ours_dir.exists()


def test_temporaries_are_removed_by_their_record_only(tmp_path):
    """What a killed write leaves is its temporary folder, marked by emotionlib: that goes. A file is never taken for
    debris by its name, not even one named exactly as emotionlib names its temporaries."""
    from emotionlib.runs import RunLayout, claim_run_dir, temporary_name

    layout = RunLayout(tmp_path / "r")
    claim_run_dir(layout.root)
    keep = [
        layout.root / ".x.tmp",
        layout.root / ".config.yaml.12345678.tmp",
        layout.root / ".model.old",
        layout.root / "deep" / ".config.yaml.emotionlib-abcdefgh.tmp",
        temporary_name(layout.config),
        temporary_name(layout.set_metrics("dev", "eng")),
    ]
    for p in keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("user")
    gone = [killed_write(layout.config), killed_write(layout.split), killed_write(layout.set_metrics("dev", "eng"))]
    layout.remove_temporaries()
    assert all(p.read_text() == "user" for p in keep) and not any(p.exists() for p in gone)


def test_a_folder_shaped_like_a_temporary_is_removed_only_by_its_record(tmp_path):
    """A folder's name is no record: one named as emotionlib names its temporaries is removed only when its marker
    says emotionlib made it (a temporary of a finished process, or a replaced folder set aside), or when it is
    empty (nothing can be lost); a user's folder of that shape, with files, stays whole."""
    from emotionlib.runs import RunLayout, claim_run_dir, mark, temporary_name

    layout = RunLayout(tmp_path / "r")
    claim_run_dir(layout.root)
    users = temporary_name(layout.model)  # the shape, but no record: a user's folder
    (users / "sub").mkdir(parents=True)
    (users / "sub" / "notes.txt").write_text("a user's notes")
    (users / "weights.bin").write_bytes(b"user")
    set_aside = temporary_name(layout.eval, ".old")  # a replaced folder a killed atomic_dir left beside its new one
    set_aside.mkdir()
    (set_aside / "summary.csv").write_text("old")
    mark(set_aside, "eval", ["summary.csv"])
    gone = gone_pid()
    writers = {}
    for pid in (gone, os.getpid()):  # atomic_dir's temporary folders: one whose writer is gone, one still writing
        writers[pid] = temporary_name(layout.interpret)
        writers[pid].mkdir()
        (writers[pid] / "half.csv").write_text("half")
        (writers[pid] / ".emotionlib").write_text(
            json.dumps({"made_by": "emotionlib", "kind": "temporary", "pid": pid})
        )
    empty = temporary_name(layout.checkpoint)  # killed before its marker was written: nothing in it
    empty.mkdir()
    layout.remove_temporaries()
    assert (users / "sub" / "notes.txt").read_text() == "a user's notes" and (users / "weights.bin").is_file()
    assert not set_aside.exists() and not writers[gone].exists() and not empty.exists()
    assert (writers[os.getpid()] / "half.csv").is_file()


def test_temporaries_are_not_removed_from_a_folder_emotionlib_did_not_make(tmp_path):
    from emotionlib.runs import RunLayout, temporary_name

    layout = RunLayout(tmp_path)
    t = temporary_name(layout.config)
    t.write_text("x")
    debris = killed_write(layout.split)
    layout.remove_temporaries()
    assert t.exists() and debris.is_dir()


def test_a_file_named_like_a_temporary_in_a_folder_to_be_replaced_is_the_users(tmp_path):
    """Replacing a folder emotionlib made (a report made again) takes only what it recorded writing: a file of the
    temporary shape in it is a user's file like any other, so the replacement is refused and the file kept."""
    from emotionlib.runs import NotOurs, atomic_dir, temporary_name

    out = tmp_path / "report"
    with atomic_dir(out, "report") as d:
        (d / "report.html").write_text("first")
    shaped = temporary_name(out / "report.html")
    shaped.write_text("mine")
    with pytest.raises(NotOurs, match=shaped.name):
        with atomic_dir(out, "report") as d:
            (d / "report.html").write_text("second")
    assert shaped.read_text() == "mine" and (out / "report.html").read_text() == "first"


# --- 3, 4: export never replaces what it did not make, nor writes into the run it reads -----------------------


def test_export_into_an_existing_user_folder_is_refused(smoke_run, tmp_path):
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / "thesis.tex").write_text("three years of work")
    before = tree(out_dir)
    out = run_here("export", "--run", str(smoke_run), "--format", "onnx", "--out", str(out_dir))
    one_line_error(out, str(out_dir), "not made by emotionlib")
    assert tree(out_dir) == before


@pytest.mark.parametrize("fmt,where", [("onnx", "."), ("hf", "model"), ("onnx", "eval"), ("onnx", "..")])
def test_export_inside_or_around_the_run_is_refused(run_copy, fmt, where):
    target = (run_copy / where).resolve()
    before = tree(run_copy)
    out = run_here("export", "--run", str(run_copy), "--format", fmt, "--out", str(target))
    one_line_error(out, "--out")
    assert tree(run_copy) == before


def test_export_replaces_its_own_earlier_export(run_copy, tmp_path):
    from emotionlib.export import export

    out = tmp_path / "onnx-out"
    export(run_copy, "onnx", out)
    first = tree(out)
    export(run_copy, "onnx", out)
    assert tree(out).keys() == first.keys()


def test_an_export_cannot_replace_another_kind_of_emotionlib_folder(run_copy, smoke_run):
    from emotionlib.export import export

    with pytest.raises(ValueError, match="not made by emotionlib|made by emotionlib as|lies inside"):
        export(run_copy, "onnx", smoke_run / "model")


def test_int8_is_not_written_into_an_onnx_folder_emotionlib_did_not_make(run_copy):
    from emotionlib.export import ensure_onnx
    from emotionlib.runs import MARKER

    ensure_onnx(run_copy)
    (run_copy / "onnx" / MARKER).unlink()  # the same files, but now the user's folder
    before = tree(run_copy / "onnx")
    with pytest.raises(ValueError, match="not made by emotionlib"):
        ensure_onnx(run_copy, int8=True)
    assert tree(run_copy / "onnx") == before


# --- 5: malformed YAML is one line naming the file and line ---------------------------------------------------


def test_malformed_profile_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: minilm\nlanguages: [eng\nepochs: 2\n")
    with pytest.raises(ConfigError, match=rf"{bad}: line \d+.*not valid YAML"):
        load_config(str(bad))
    out = run_here("train", "--config", str(bad))
    one_line_error(out, str(bad), "line")


def test_malformed_set_value_names_the_field():
    with pytest.raises(ConfigError, match="'languages'.*not valid YAML"):
        load_config("smoke", parse_overrides(["languages=[eng"]))
    out = run_here("train", "--config", "smoke", "--set", "languages=[eng")
    one_line_error(out, "languages")


def test_malformed_run_config_names_the_file(run_copy):
    from emotionlib.run_config import read_config

    (run_copy / "config.yaml").write_text("run_id: x\nlanguages: [eng\n")
    with pytest.raises(ConfigError, match=r"config.yaml: line \d+"):
        read_config(run_copy)
    # the command names it too: a config.yaml changed since training is refused before it is read
    one_line_error(run_here("evaluate", "--run", str(run_copy)), "config.yaml", "changed since the run was made")


# --- 6: the ensemble's step is checked before any work ---------------------------------------------------------


@pytest.mark.parametrize("step", ["5", "0", "-0.1", "nan", "0.3", "inf"])
def test_bad_ensemble_step_is_refused_before_any_work(smoke_run, tmp_path, step):
    out_dir = tmp_path / "ens"
    t0 = time.time()
    out = run_here("ensemble", "--runs", str(smoke_run), "--out", str(out_dir), f"--step={step}")
    one_line_error(out, "--step")
    assert "validation probabilities" not in out.stdout and not out_dir.exists()
    assert time.time() - t0 < 60


# --- 7: an unfinished run is refused ---------------------------------------------------------------------------


def test_an_unfinished_run_is_refused_by_load_predict_and_evaluate(run_copy, tmp_path):
    import emotionlib
    from emotionlib.evaluate import evaluate
    from emotionlib.runs import RunLayout

    RunLayout(run_copy).train_summary.unlink()
    (RunLayout(run_copy).steps / "evaluate.json").unlink()
    with pytest.raises(ValueError, match="training did not finish"):
        emotionlib.load(run_copy)
    with pytest.raises(ValueError, match="training did not finish"):
        evaluate(run_copy)
    src = tmp_path / "in.csv"
    src.write_text("id,text\na,hello\n")
    one_line_error(
        run_here("predict", "--run", str(run_copy), "--input", str(src), "--output", str(tmp_path / "o.csv")),
        "training did not finish",
    )
    assert not (tmp_path / "o.csv").exists()


# --- 8: max_length has a floor -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7])
def test_max_length_below_the_floor_is_refused(n, tmp_path):
    with pytest.raises(ConfigError, match="max_length.*at least 8"):
        load_config("smoke", {"runs_dir": str(tmp_path), "max_length": n})


# --- 9: thresholds are validated on load --------------------------------------------------------------------


@pytest.mark.parametrize("bad", [5, -1, None, 0, 1, "high", "one too many", "not a list"])
def test_bad_thresholds_in_metadata_are_refused_on_load(run_copy, bad):
    import emotionlib
    from emotionlib.runs import RunLayout

    path = RunLayout(run_copy).metadata
    meta = json.loads(path.read_text())
    n = len(meta["labels"])
    meta["thresholds"] = {"one too many": [0.5] * (n + 1), "not a list": "high"}.get(bad, [bad] + [0.5] * (n - 1))
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"metadata.json: field 'thresholds'"):
        emotionlib.load(run_copy)


# --- 10: prediction input ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content,message",
    [
        ("id,text\na,hello\n,world\n", "row 2 has an empty id"),
        ("id,text\na,hello\nb,x\na,world\n", "duplicate id 'a' in rows 1 and 3"),
        ("id,text\n  ,hello\n", "row 1 has an empty id"),
    ],
)
def test_prediction_input_with_empty_or_duplicate_ids_is_refused(tmp_path, content, message):
    src = tmp_path / "in.csv"
    src.write_text(content)
    with pytest.raises(DataError, match=message):
        read_texts(src)


# --- 11, 12: every setting is checked before the first write -------------------------------------------------


def test_a_one_row_train_file_is_refused_naming_it_and_writes_nothing(tmp_path):
    from emotionlib.train import train

    src = tmp_path / "one.csv"
    src.write_text("id,text,joy\na,hello,1\n")
    cfg = load_config("smoke", {"runs_dir": str(tmp_path / "runs"), "run_id": "one", "train_csv": str(src)})
    with pytest.raises(DataError, match=rf"{src}: 1 labelled row"):
        train(cfg)
    assert not (tmp_path / "runs").exists()
    from emotionlib.preflight import prepare

    with pytest.raises(DataError, match=rf"{src}"):
        prepare(cfg)
    assert not (tmp_path / "runs").exists()


def test_freeze_layers_beyond_the_encoder_is_refused_before_any_write_and_the_fix_is_accepted(tmp_path):
    from emotionlib.preflight import check
    from emotionlib.train import train

    cfg = load_config("smoke", {"runs_dir": str(tmp_path / "runs"), "run_id": "fz", "freeze_layers": 99})
    with pytest.raises(ConfigError, match="freeze_layers.*99.*2 layers"):
        train(cfg)
    assert not (tmp_path / "runs").exists()
    check(cfg.replace(freeze_layers=1))  # the corrected value is not refused for that run id


# --- 13: a run reached through a link keeps its own id ---------------------------------------------------------


def test_a_run_reached_through_a_symlink_keeps_its_id(run_copy, tmp_path):
    from emotionlib.run_config import config_of_run

    link = tmp_path / "lr"
    link.symlink_to(run_copy, target_is_directory=True)
    cfg = config_of_run(link)
    assert cfg.run_id == run_copy.name and Path(cfg.runs_dir) == run_copy.parent.resolve()


# --- 14: Ctrl-C to the main process of `run` ----------------------------------------------------------------------


def test_the_killed_kernels_orphaned_cell_task_is_not_logged_after_the_one_line_message(caplog):
    import asyncio

    from nbclient.exceptions import DeadKernelError

    from emotionlib.pipeline import _quiet_orphaned_cells

    _quiet_orphaned_cells()
    _quiet_orphaned_cells()  # once is enough: a second call adds no second filter
    loop = asyncio.new_event_loop()
    try:  # what asyncio does when it collects a task whose exception nobody retrieved
        for exc in (DeadKernelError("Kernel died"), ValueError("a real failure")):
            loop.call_exception_handler({"message": "Task exception was never retrieved", "exception": exc})
    finally:
        loop.close()
    assert [r.exc_info[1].args[0] for r in caplog.records if r.name == "asyncio"] == ["a real failure"]


@pytest.mark.heavy
@pytest.mark.slow
def test_sigint_to_the_main_process_of_run_is_a_one_line_message(tmp_path):
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "emotionlib",
        "run",
        "--config",
        "smoke",
        "--set",
        f"runs_dir={tmp_path / 'runs'}",
        "run_id=sig",
        "epochs=4",
        "patience=0",
        "max_train_rows=400",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 240
    while time.time() < deadline and not (tmp_path / "runs" / "sig" / "train_log.jsonl").exists():
        time.sleep(0.2)  # until the first epoch is logged: 02_train's kernel is mid-cell, training epoch 2
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "ZMQError" not in err, err[-3000:]
    assert "interrupted" in err.strip().splitlines()[-1]


# --- 15: a failed PDF keeps the HTML and names it -------------------------------------------------------------------


def test_chromium_failure_keeps_the_html_report_and_names_it(tmp_path, monkeypatch):
    """make_report with the notebooks stood in for (their execution is tested elsewhere) and a failing Chromium."""
    from emotionlib import pipeline as report

    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'FATAL: no usable sandbox' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(report, "chromium", lambda: str(fake))
    monkeypatch.setattr(report, "execute_notebooks", lambda cfg, out, *a, **k: [])
    monkeypatch.setattr(report, "render_html", lambda nb, html: html.write_text("<html>the report</html>") and html)
    cfg = load_config("smoke", {"runs_dir": str(tmp_path / "runs"), "run_id": "pdf"})
    with pytest.raises(RuntimeError, match="FATAL: no usable sandbox") as err:
        report.make_report(cfg, tmp_path / "reports")
    html = tmp_path / "reports" / "pdf" / "report.html"
    assert html.read_text() == "<html>the report</html>" and str(html) in str(err.value)
    assert ".emotionlib-" not in str(err.value)  # no temporary path that is gone by now
    assert not (tmp_path / "reports" / "pdf" / "report.pdf").exists()


# --- property-based: readers give a result or a one-line DataError/ConfigError ------------------------------------

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
cells = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "0", "1", " ", '"', '""', "\n", "\r\n", ",", "a,b", "x" * 5000]
)


def one_line(exc: Exception) -> bool:
    return "\n" not in str(exc).strip()


@PROPERTY
@given(raw=st.binary(max_size=600))
def test_random_bytes_are_read_or_refused_in_one_line(tmp_path, raw):
    path = tmp_path / "f.csv"
    path.write_bytes(raw)
    for read in (lambda: read_table(path, "eng", "train"), lambda: read_texts(path)):
        try:
            read()
        except DataError as exc:
            assert str(path) in str(exc)
            assert one_line(exc), str(exc)


@PROPERTY
@given(
    rows=st.lists(st.lists(cells, min_size=1, max_size=5), max_size=6),
    header=st.sampled_from([["id", "text", "joy"], ["id", "text"], ["text", "id", "anger", "joy"], ["id"]]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]),
)
def test_random_csv_tables_are_read_or_refused_naming_the_file(tmp_path, rows, header, encoding):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    path = tmp_path / "t.csv"
    try:
        path.write_bytes(buf.getvalue().encode(encoding))
    except UnicodeEncodeError:
        return
    for read in (
        lambda: read_table(path, "x", "train", labels=[h for h in header if h not in ("id", "text")]),
        lambda: read_texts(path),
    ):
        try:
            out = read()
        except DataError as exc:
            assert str(path) in str(exc) and one_line(exc), str(exc)
        else:
            ids = out.ids if hasattr(out, "ids") else out[0]
            assert len(set(ids)) == len(ids) and all(i.strip() for i in ids)


@PROPERTY
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "epochs",
                    "languages",
                    "run_id",
                    "learning_rate",
                    "max_length",
                    "loss",
                    "labels",
                    "pad_to_max_length",
                    "nope",
                    "",
                    "seed",
                ]
            ),
            cells,
        ),
        max_size=4,
    )
)
def test_random_set_overrides_give_a_config_or_a_one_line_config_error(tmp_path, pairs):
    runs = tmp_path / "runs"
    try:
        cfg = load_config("smoke", parse_overrides([f"{k}={v}" for k, v in pairs]) | {"runs_dir": str(runs)})
    except (ConfigError, DataError) as exc:
        assert one_line(exc), str(exc)
    else:
        assert cfg.run_dir.resolve().parent == runs.resolve()
    assert not runs.exists()


@PROPERTY
@given(text=st.text(max_size=300) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_random_profile_files_give_a_config_or_a_one_line_config_error(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(str(path), {"runs_dir": str(tmp_path / "runs")})
    except (ConfigError, DataError) as exc:
        assert one_line(exc), str(exc)
    assert not (tmp_path / "runs").exists()
