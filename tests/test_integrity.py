"""Round 4 of the hostile probes (issue 44): ownership is a record, never a guess from a file's shape; a run's files
that decide its predictions are one signed whole; every command checks before its first write; a failed write
names its file and leaves what was there. Each test is a probe that failed on the code before the fix; the
numbers are the issue's items."""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, one_line_error, run_cli, run_here, tree
from emotionlib.config import ConfigError, load_config
from emotionlib.runs import (
    MARKER,
    NotOurs,
    RunLayout,
    atomic_dir,
    check_replaceable,
    clean,
    kind_of,
    mark,
    read_marker,
    sha256_of,
)
from emotionlib.run_records import seal

SMOKE = ["--config", "smoke", "--set"]


def private_data(tmp_path: Path, data_dir: Path) -> Path:
    """A data folder of the test's own (its files linked to the shared copy): a refusal that fails writes there,
    never into the shared data."""
    own = tmp_path / "data-copy"
    own.mkdir()
    for name in ("SHA256SUMS", "README.md"):
        shutil.copy(data_dir / name, own / name)
    (own / "track_a").symlink_to(data_dir / "track_a")
    return own


def failed_last_line(out, *needles: str) -> None:
    """A command that failed with exit 2 and no traceback, its last line (after progress bars) saying `needles`."""
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert all(n in last for n in needles), last


def texts_csv(folder: Path) -> Path:
    src = folder / "in.csv"
    src.write_text("id,text\na,I am so happy\nb,this is awful\n")
    return src


# --- 1, 13: a prediction file is emotionlib's by its record, never by its shape ------------------------------------

LOOKALIKES = {
    "customer table": "id,newsletter_opt_in\n1001,1\n1002,0\n",
    "crlf": "id,anger,fear\r\na,0,1\r\n",
    "header only": "id,name\n",
}


@pytest.mark.parametrize("name", LOOKALIKES)
def test_predict_never_replaces_a_file_that_only_looks_like_a_prediction_file(smoke_run, tmp_path, name):
    target = tmp_path / "c.csv"
    target.write_bytes(LOOKALIKES[name].encode())
    out = run_here("predict", "--run", str(smoke_run), "--input", str(texts_csv(tmp_path)), "--output", str(target))
    one_line_error(out, "--output", "no record")
    assert target.read_bytes() == LOOKALIKES[name].encode()
    assert not (tmp_path / "c.csv.emotionlib.json").exists()


def test_a_prediction_file_carries_its_record_and_is_replaced_only_as_written(smoke_run, tmp_path):
    from emotionlib.classifier import Classifier
    from emotionlib.prediction_files import record_path

    clf, src, dst = Classifier(smoke_run), texts_csv(tmp_path), tmp_path / "pred.csv"
    clf.predict_file(src, dst)
    record = json.loads(record_path(dst).read_text())
    assert record["kind"] == "predictions" and record["file"] == "pred.csv" and record["rows"] == 2
    assert record["run"] == str(smoke_run.resolve())
    clf.predict_file(src, dst)  # emotionlib's, unchanged since: replaced
    dst.write_text(dst.read_text() + "c,0,0,0,0,0\n")  # edited by the user: theirs now
    before = dst.read_text()
    with pytest.raises(NotOurs, match="no record"):
        clf.predict_file(src, dst)
    assert dst.read_text() == before
    # a user's file at the record's own name is never written over either
    other = tmp_path / "new.csv"
    record_path(other).write_text("my notes")
    with pytest.raises(NotOurs, match="not emotionlib's record"):
        clf.predict_file(src, other)
    assert record_path(other).read_text() == "my notes" and not other.exists()


def test_a_file_created_at_the_output_path_while_predicting_is_not_replaced(smoke_run, tmp_path, monkeypatch):
    from emotionlib.classifier import Classifier

    clf, dst = Classifier(smoke_run), tmp_path / "late.csv"
    real = clf.predict_proba

    def slow(*args, **kwargs):
        dst.write_text("id,opt_in\n1,1\n")  # a user's program writes the path meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(clf, "predict_proba", slow)
    with pytest.raises(NotOurs, match="--output"):
        clf.predict_file(texts_csv(tmp_path), dst)
    assert dst.read_text() == "id,opt_in\n1,1\n"
    assert {p.name for p in tmp_path.iterdir()} == {"in.csv", "late.csv"}  # no record, no temporary left


# --- 2, 18, 21: removals take only what emotionlib recorded writing ---------------------------------------------------


def test_retrain_refuses_a_model_folder_holding_a_users_file(run_copy):
    notes = run_copy / "model" / "NOTES.txt"
    notes.write_text("why this run matters")
    before = tree(run_copy)
    out = run_here("train", "--run", str(run_copy), "--retrain")
    one_line_error(out, "NOTES.txt", "did not write")
    assert tree(run_copy) == before


def test_clean_removes_what_emotionlib_wrote_and_keeps_a_users_file(tmp_path):
    work = tmp_path / "checkout"
    with atomic_dir(work / "reports" / "r1", "report") as tmp:
        (tmp / "report.html").write_text("<html>")
    (work / "reports" / "r1" / "notes.md").write_text("my reading of the report")
    run = work / "runs" / "old"
    run.mkdir(parents=True)
    mark(run, "run")  # a marker without the list of what was written: no proof of anything
    (run / "config.yaml").write_text("x")
    removed, kept = clean(work)
    assert removed == [] and set(kept) == {work / "reports" / "r1", run}
    assert (work / "reports" / "r1" / "notes.md").read_text() == "my reading of the report"
    assert not (work / "reports" / "r1" / "report.html").exists()
    assert (run / "config.yaml").is_file()


def test_a_marker_that_is_a_link_or_too_large_is_no_marker(tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"made_by": "emotionlib", "kind": "run", "files": ["data.csv"]}))
    linked = tmp_path / "work" / "runs" / "x"
    linked.mkdir(parents=True)
    (linked / "data.csv").write_text("mine")
    (linked / MARKER).symlink_to(elsewhere)
    large = tmp_path / "work" / "runs" / "y"
    large.mkdir()
    with open(large / MARKER, "w") as f:
        f.write('{"made_by": "emotionlib", "kind": "run", "files": [' + '"a",' * 400_000 + '"b"]}')
    t0 = time.perf_counter()
    assert kind_of(linked) is None and read_marker(large) is None
    assert time.perf_counter() - t0 < 5
    removed, kept = clean(tmp_path / "work")
    assert removed == [] and kept == {} and (linked / "data.csv").read_text() == "mine"


def test_a_planted_marker_without_a_list_does_not_let_export_replace_a_folder(smoke_run, tmp_path):
    from emotionlib.export import export

    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("three years")
    (out / MARKER).write_text(json.dumps({"made_by": "emotionlib", "kind": "export-onnx"}))
    with pytest.raises(NotOurs, match="records no list"):
        export(smoke_run, "onnx", out)
    assert (out / "thesis.tex").read_text() == "three years"


def damaged_gemma(tmp_path, monkeypatch, user_file: bool) -> Path:
    from emotionlib.encoders import gemma

    target = tmp_path / "cache" / "embeddinggemma"
    with atomic_dir(target, "encoder") as tmp:
        (tmp / "model.safetensors").write_bytes(b"not the weights")  # damaged: no pinned hash matches
    if user_file:
        (target / "mine.txt").write_text("kept here by the user")
    monkeypatch.setattr(gemma, "install_dir", lambda: target)
    return target


def test_install_refuses_a_damaged_copy_holding_a_users_file_before_any_download(tmp_path, monkeypatch):
    from emotionlib.encoders import gemma

    target = damaged_gemma(tmp_path, monkeypatch, user_file=True)
    before = tree(target)
    (tmp_path / "wheels").mkdir()
    with pytest.raises(NotOurs, match="mine.txt"):
        gemma.install(tmp_path / "wheels")
    assert tree(target) == before


def test_install_with_no_pieces_keeps_the_damaged_copy(tmp_path, monkeypatch):
    from emotionlib.encoders import gemma

    target = damaged_gemma(tmp_path, monkeypatch, user_file=False)
    before = tree(target)
    (tmp_path / "wheels").mkdir()
    with pytest.raises(gemma.GemmaUnavailable, match="nothing was written"):
        gemma.install(tmp_path / "wheels")
    assert tree(target) == before  # replaced only by a verified copy, never removed first


# --- 3: runs_dir and --reports-dir are checked against emotionlib's folders, the data and the cache ----------------


@pytest.mark.parametrize("where", ["model", "run", "export", "data", "cache"])
def test_runs_dir_inside_emotionlib_folders_or_the_data_is_refused(tmp_path, where, data_dir):
    run = tmp_path / "r" / "a"
    (run / "model").mkdir(parents=True)
    mark(run, "run", [])
    mark(run / "model", "model", [])
    (tmp_path / "exp").mkdir()
    mark(tmp_path / "exp", "export-onnx", [])
    cache, data = tmp_path / "cache", private_data(tmp_path, data_dir)
    runs_dir = {
        "model": run / "model",
        "run": run,
        "export": tmp_path / "exp" / "runs",
        "data": data / "runs",
        "cache": cache / "runs",
    }[where]
    out = run_cli(
        "train",
        *SMOKE,
        f"runs_dir={runs_dir}",
        "run_id=z",
        timeout=120,
        env=os.environ | {"EMOTIONLIB_CACHE": str(cache), "EMOTIONLIB_DATA_DIR": str(data)},
    )
    one_line_error(out, "runs_dir")
    assert not (runs_dir / "z").exists()


def test_reports_dir_inside_the_data_folder_is_refused(tmp_path, data_dir):
    data = private_data(tmp_path, data_dir)
    out = run_cli(
        "run",
        *SMOKE,
        f"runs_dir={tmp_path / 'runs'}",
        "run_id=z",
        "--reports-dir",
        str(data),
        timeout=120,
        env=os.environ | {"EMOTIONLIB_DATA_DIR": str(data)},
    )
    one_line_error(out, "--reports-dir")
    assert not (tmp_path / "runs").exists() and not (data / "z").exists()


# --- 4, 19: kfold checks everything before it makes its folder ---------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        ["--folds", "0"],
        ["--folds", "-3"],
        ["--folds", "1"],
        ["--folds", "1000"],
        ["--set", "model=/nonexistent/encoder"],
        ["--set", "data_dir=/nonexistent/data"],
    ],
)
def test_kfold_refuses_before_making_its_folder(tmp_path, bad):
    args = ["kfold", "--config", "smoke"] + (bad if bad[0] == "--folds" else [])
    sets = [f"runs_dir={tmp_path / 'runs'}", "run_id=k"] + (bad[1:] if bad[0] == "--set" else [])
    out = run_here(*args, "--set", *sets)
    one_line_error(out)
    assert "IndexError" not in out.stderr and not (tmp_path / "runs" / "k").exists()


def test_kfold_compare_refuses_an_estimate_against_itself(tmp_path):
    out = run_here("kfold", "--compare", str(tmp_path / "a"), str(tmp_path / "a"))
    one_line_error(out, "the same estimate twice")


# --- 5: distill checks the teacher before the student's folder exists ----------------------------------------------


def test_distill_refuses_an_unfinished_teacher_before_writing(run_copy, tmp_path):
    (run_copy / "train_summary.json").unlink()
    out = run_here(
        "distill",
        "--config",
        "smoke",
        "--teacher",
        str(run_copy),
        "--set",
        f"runs_dir={tmp_path / 'students'}",
        "run_id=s",
    )
    one_line_error(out, "teacher", "did not finish")
    assert not (tmp_path / "students").exists()


def test_distill_refuses_a_teacher_missing_a_label_before_writing(run_copy, tmp_path):
    meta = json.loads((run_copy / "model" / "metadata.json").read_text())
    meta["labels"], meta["thresholds"] = meta["labels"][1:], meta["thresholds"][1:]
    (run_copy / "model" / "metadata.json").write_text(json.dumps(meta))
    seal(RunLayout(run_copy))  # a teacher made so, as emotionlib recorded it
    out = run_here(
        "distill",
        "--config",
        "smoke",
        "--teacher",
        str(run_copy),
        "--set",
        f"runs_dir={tmp_path / 'students'}",
        "run_id=s",
    )
    one_line_error(out, "teacher", "has no label")
    assert not (tmp_path / "students").exists()


# --- 6, 7, 9: a run's deciding files are one signed whole --------------------------------------------------------


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


TAMPERING = {
    "another run's weights and summary": None,  # built in the test
    "weights_sha256 removed": lambda r: edit_json(r / "train_summary.json", lambda d: d.pop("weights_sha256")),
    "labels reordered": lambda r: edit_json(
        r / "model" / "metadata.json", lambda d: d.__setitem__("labels", d["labels"][::-1])
    ),
    "encoder config edited": lambda r: edit_json(
        r / "model" / "config.json", lambda d: d.update(hidden_act="relu", layer_norm_eps=0.5)
    ),
    "tokenizer shuffled": lambda r: edit_json(
        r / "model" / "tokenizer.json", lambda d: d["model"].update(vocab=d["model"]["vocab"][::-1])
    ),
    "a file added to model/": lambda r: (r / "model" / "special_tokens_map.json").write_text("{}"),
    "config.yaml edited": lambda r: (r / "config.yaml").write_text(
        (r / "config.yaml").read_text().replace("- eng", "- deu")
    ),
    "split edited": lambda r: edit_json(r / "data" / "split.json", lambda d: d.__setitem__("seed", 7)),
    "manifest removed": lambda r: (r / "manifest.json").unlink(),
}


@pytest.mark.parametrize("how", TAMPERING)
def test_a_changed_deciding_file_is_refused_by_load_evaluate_and_predict(run_copy, tmp_path, how):
    import emotionlib

    if how == "another run's weights and summary":
        other = tmp_path / "b"
        shutil.copytree(run_copy, other)
        from safetensors.torch import load_file, save_file

        state = {
            k: v + 0.05 if v.is_floating_point() else v
            for k, v in load_file(other / "model" / "model.safetensors").items()
        }
        save_file(state, other / "model" / "model.safetensors", metadata={"format": "pt"})
        digest = sha256_of(other / "model" / "model.safetensors")
        edit_json(other / "train_summary.json", lambda d: d.__setitem__("weights_sha256", digest))
        for name in ("model/model.safetensors", "train_summary.json"):
            shutil.copy(other / name, run_copy / name)
    else:
        TAMPERING[how](run_copy)
    with pytest.raises(ValueError, match="--retrain"):
        emotionlib.load(run_copy)
    before = tree(run_copy)
    for args in (
        ["evaluate", "--run", str(run_copy)],
        ["predict", "--run", str(run_copy), "--input", str(texts_csv(tmp_path)), "--output", str(tmp_path / "p.csv")],
    ):
        one_line_error(run_here(*args), "--retrain")
    assert tree(run_copy) == before and not (tmp_path / "p.csv").exists()


# --- 8: the stack record is checked ---------------------------------------------------------------------------------


def stack_record(**language) -> dict:
    lang = {
        "labels": ["joy", "fear"],
        "thresholds": [0.4, 0.6],
        "members": ["network", "features_lr"],
        "weights": {"network": 0.5, "features_lr": 0.5},
    } | language
    return {"languages": {"eng": lang}, "runs": {}}


@pytest.mark.parametrize(
    "language,message",
    [
        ({"thresholds": [2, 0.5]}, "strictly between 0 and 1"),
        ({"thresholds": [math.nan, 0.5]}, "strictly between 0 and 1"),
        ({"thresholds": [0.5]}, "do not match"),
        ({"weights": {"network": -5, "features_lr": 6}}, "not negative"),
        ({"weights": {"network": 0.7, "features_lr": 0.7}}, "sum to 1"),
        ({"weights": {"network": 0.5, "mystery": 0.5}}, "unknown member"),
        ({"labels": ["joy", "awe"]}, "do not match"),
    ],
)
def test_a_stack_record_out_of_its_rules_is_refused_naming_the_file(tmp_path, language, message):
    from emotionlib.combine.langstack import check_stack

    path = tmp_path / "stack.json"
    with pytest.raises(ValueError, match=message) as err:
        check_stack(stack_record(**language), path, ["joy", "fear", "anger"])
    assert str(path) in str(err.value)
    assert check_stack(stack_record(), path, ["joy", "fear"])["languages"]
    with pytest.raises(ValueError, match="not a stack record"):
        check_stack({"languages": {"eng": {}}}, path, ["joy"])


# --- 10: YAML without aliases, list fields of plain values --------------------------------------------------------


def test_yaml_aliases_are_refused_at_once(tmp_path):
    profile = tmp_path / "laughs.yaml"
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    profile.write_text("\n".join(lines + ["run_id: *a8", ""]))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="alias"):
        load_config(profile)
    with pytest.raises(ConfigError, match="alias"):
        load_config("smoke", {"ignore_columns": "[&x [a, b], *x, *x]"})
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("labels", [["a", "b"]], "plain values"),
        ("ignore_columns", [{"a": 1}], "plain values"),
        ("languages", "eng,eng", "given twice"),
        ("run_id", ["x"], "cannot read"),
    ],
)
def test_list_fields_take_plain_distinct_values_and_text_fields_one_value(field, value, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", {field: value, "runs_dir": str(tmp_path)})


# --- 11: a failed write (a full disk) is one line naming the file, and what was there stays -------------------------


def limited(max_bytes: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return preexec


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line_naming_the_file(tmp_path):
    out = run_cli("train", *SMOKE, f"runs_dir={tmp_path}", "run_id=f", timeout=300, preexec_fn=limited(400_000))
    failed_last_line(out, "could not be written", str(tmp_path / "f"))


@pytest.mark.heavy
def test_a_full_disk_during_export_and_predict_keeps_what_was_there(run_copy, tmp_path):
    out = run_cli(
        "export",
        "--run",
        str(run_copy),
        "--format",
        "onnx",
        "--out",
        str(tmp_path / "x"),
        timeout=300,
        preexec_fn=limited(400_000),
    )
    one_line_error(out, "could not be written", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.emotionlib-*"))
    dst = tmp_path / "p.csv"
    assert (
        run_here(
            "predict", "--run", str(run_copy), "--input", str(texts_csv(tmp_path)), "--output", str(dst)
        ).returncode
        == 0
    )
    before = dst.read_bytes()
    out = run_cli(
        "predict",
        "--run",
        str(run_copy),
        "--input",
        str(texts_csv(tmp_path)),
        "--output",
        str(dst),
        timeout=120,
        preexec_fn=limited(20),
    )
    failed_last_line(out, "could not be written", str(dst))
    assert dst.read_bytes() == before


# --- 12, 14: the ONNX build under the run's lock; a killed export's folder removed by its record ------------------


def test_the_onnx_build_waits_for_no_one_and_writes_nothing_while_another_process_holds_the_run(run_copy):
    # a run whose ONNX graph is not built yet: the session's smoke run may have one from another test's export
    shutil.rmtree(run_copy / "onnx", ignore_errors=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from emotionlib.runs import RunLayout, run_lock\n"
                f"with run_lock(RunLayout({str(run_copy)!r})):\n    print('held', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        from emotionlib.classifier import Classifier
        from emotionlib.runs import RunBusy

        with pytest.raises(RunBusy, match="in use"):
            Classifier(run_copy, backend="onnx")
        assert not (run_copy / "onnx").exists() and not list(run_copy.glob(".onnx.emotionlib-*"))
    finally:
        holder.kill()
        holder.wait()
    clf = Classifier(run_copy, backend="onnx")  # the lock is free: built, under it
    assert (run_copy / "onnx" / "model.onnx").is_file() and clf.predict(["so happy"])


def test_a_killed_exports_folder_is_removed_by_the_next_export_and_a_live_one_is_not(smoke_run, tmp_path):
    from emotionlib.export import export

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    debris = {
        pid: tmp_path / f".x.emotionlib-{tag}.tmp" for pid, tag in ((int(dead), "dead0000"), (os.getpid(), "live0000"))
    }
    for pid, folder in debris.items():
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"\0" * 1000)
        (folder / MARKER).write_text(json.dumps({"made_by": "emotionlib", "kind": "temporary", "pid": pid}))
    user = tmp_path / ".x.emotionlib-user0000.tmp"  # the same shape, but no record: not ours
    user.mkdir()
    (user / "keep").write_text("x")
    export(smoke_run, "onnx", tmp_path / "x")
    assert not debris[int(dead)].exists() and debris[os.getpid()].is_dir() and (user / "keep").is_file()


# --- 15: a renamed or copied run is retrained by the command its damage message gives -----------------------------


def test_a_renamed_damaged_run_is_retrained_by_the_command_the_message_gives(run_copy):
    renamed = run_copy.with_name("renamed")
    run_copy.rename(renamed)
    weights = renamed / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    out = run_here("train", "--run", str(renamed))
    one_line_error(out, "--retrain")
    assert run_here("train", "--run", str(renamed), "--retrain").returncode == 0
    import emotionlib

    assert emotionlib.load(renamed).predict(["I am so happy"])


# --- 16, 22: the data a run trains on ---------------------------------------------------------------------------------


def own_data(tmp_path: Path, header: list[str], rows: list[list]) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / "train.csv").write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    return folder / "train.csv"


def base_rows(n: int = 60) -> list[list]:
    return [[f"r{i}", f"text number {i} about {'joy' if i % 2 else 'fear'}", i % 2, (i + 1) % 2] for i in range(n)]


@pytest.mark.parametrize(
    "case,message",
    [
        ("labels", "label columns, more than"),
        ("all zero", "are 0 in every row"),
        ("empty text", "has an empty text"),
        ("repeated", "one text makes up"),
    ],
)
def test_training_data_that_cannot_train_is_refused_before_any_write(tmp_path, case, message):
    rows, header = base_rows(), ["id", "text", "joy", "fear"]
    if case == "labels":
        header = ["id", "text"] + [f"l{i}" for i in range(1000)]
        rows = [[f"r{i}", f"t{i}"] + [(i + j) % 2 for j in range(1000)] for i in range(60)]
    if case == "all zero":
        rows = [r[:3] + [0] for r in rows]
    if case == "empty text":
        rows[7][1] = "   "
    if case == "repeated":
        rows = [[r[0], "the same text", *r[2:]] for r in rows]
    train_csv = own_data(tmp_path, header, rows)
    out = run_here("train", *SMOKE, f"runs_dir={tmp_path / 'runs'}", "run_id=o", f"train_csv={train_csv}")
    one_line_error(out, message, str(train_csv))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("source,message", [("dir", "is a directory"), ("/dev/zero", "not a regular file")])
def test_predict_input_that_is_not_a_file_says_what_it_is(smoke_run, tmp_path, source, message):
    path = tmp_path if source == "dir" else Path(source)
    out = run_here("predict", "--run", str(smoke_run), "--input", str(path), "--output", str(tmp_path / "o.csv"))
    one_line_error(out, message)


@pytest.mark.slow
def test_a_dev_file_edited_after_training_is_refused_by_evaluate(tmp_path):
    from emotionlib.evaluate import evaluate
    from emotionlib.train import train

    train_csv = own_data(tmp_path, ["id", "text", "joy", "fear"], base_rows())
    dev = train_csv.with_name("dev.csv")
    dev.write_text("id,text,joy,fear\n" + "".join(f"d{i},dev text {i},{i % 2},{(i + 1) % 2}\n" for i in range(20)))
    run = train(
        load_config(
            "smoke",
            {"train_csv": str(train_csv), "dev_csv": str(dev), "runs_dir": str(tmp_path / "runs"), "run_id": "own"},
        )
    )
    dev.write_text(dev.read_text().replace("d3,dev text 3,1,0", "d3,dev text 3,0,1"))
    with pytest.raises(ValueError, match="changed since the run"):
        evaluate(run)
    assert not (run / "metrics.json").exists()


# --- 17, 20: the Python API ---------------------------------------------------------------------------------------------


def test_weights_of_another_head_are_one_line_naming_the_file(tmp_path, smoke_run):
    from safetensors.torch import save_file
    import torch

    from emotionlib.model import load_model

    model = tmp_path / "model"
    shutil.copytree(smoke_run / "model", model)
    save_file({"classifier.out_proj.weight": torch.zeros(2, 2)}, model / "model.safetensors")
    with pytest.raises(ValueError, match="do not fit") as err:
        load_model(model)
    assert str(model / "model.safetensors") in str(err.value) and len(str(err.value)) < 600


@pytest.mark.parametrize("bad", [None, 5, b"runs/x"])
def test_load_of_something_not_a_path_is_a_type_error_saying_so(bad):
    import emotionlib

    with pytest.raises(TypeError, match="run folder's path"):
        emotionlib.load(bad)


def test_texts_as_arrays_are_taken_bytes_are_not_and_thresholds_and_labels_are_guarded(smoke_run):
    import pandas as pd

    import emotionlib

    clf = emotionlib.load(smoke_run)
    texts = ["so happy", "so sad"]
    want = clf.predict_proba(texts)
    assert np.array_equal(clf.predict_proba(np.array(texts)), want)
    assert np.array_equal(clf.predict_proba(pd.Series(texts)), want)
    with pytest.raises(TypeError, match="bytes"):
        clf.predict(b"hi")
    for bad in (
        [2] + [0.5] * (len(clf.labels) - 1),
        [math.nan] * len(clf.labels),
        [-1] * len(clf.labels),
        [0.5],
        "high",
    ):
        with pytest.raises(ValueError, match="thresholds"):
            clf.thresholds = bad
    with pytest.raises(AttributeError, match="labels"):
        clf.labels = clf.labels[::-1]
    clf.thresholds = [0.3] * len(clf.labels)
    assert clf.thresholds.tolist() == [0.3] * len(clf.labels)


def test_check_replaceable_takes_a_folder_only_with_its_list(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    mark(folder, "export-hf")
    check_replaceable(folder, "export-hf")  # the marker alone: nothing else in it, nothing to lose
    (folder / "a.txt").write_text("user")
    with pytest.raises(NotOurs, match="records no list"):
        check_replaceable(folder, "export-hf")
    mark(folder, "export-hf", ["a.txt"])
    check_replaceable(folder, "export-hf")
