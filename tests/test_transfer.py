"""Transfer texts for distillation: GoEmotions found beside the data and checked by its pinned sha256, your own CSV
checked row by row (no labels needed), validation texts dropped, and a smoke student taught on them with the
teacher's probabilities cached by teacher and texts."""

import shutil

import numpy as np
import pytest

from emotionlib import transfer as T
from emotionlib.config import ConfigError, load_config
from emotionlib.data import DataError
from emotionlib.runs import RunLayout, read_json

from conftest import SHARED

GOEMOTIONS = SHARED / "data" / "goemotions-ekman"


def test_goemotions_is_found_beside_the_data_and_read_without_its_labels(monkeypatch, data_dir):
    monkeypatch.delenv("EMOTIONLIB_TRANSFER_DIR", raising=False)
    texts = T.read_transfer("goemotions", str(data_dir))
    assert texts.path == data_dir.parent / "goemotions-ekman" / "train.tsv"
    assert len(texts.texts) == 43410 and len(set(texts.ids)) == 43410 and texts.ids[0] == "eebbqej"
    assert texts.texts[0] == "My favourite food is anything I didn't have to cook myself."
    assert texts.sha256 == T.GOEMOTIONS_SHA256["train.tsv"]


def test_a_changed_goemotions_file_is_refused_by_its_checksum(tmp_path, monkeypatch):
    shutil.copy(GOEMOTIONS / "train.tsv", tmp_path / "train.tsv")
    with open(tmp_path / "train.tsv", "a", encoding="utf-8") as f:
        f.write("one more comment\t3\tzzzzzzz\n")
    monkeypatch.setenv("EMOTIONLIB_TRANSFER_DIR", str(tmp_path))
    with pytest.raises(DataError, match="sha256 .* is not the pinned"):
        T.read_transfer("goemotions")


def test_a_sample_is_drawn_with_the_seed_and_validation_texts_are_dropped(data_dir):
    a = T.read_transfer("goemotions", str(data_dir), max_rows=500, seed=7)
    b = T.read_transfer("goemotions", str(data_dir), max_rows=500, seed=7)
    c = T.read_transfer("goemotions", str(data_dir), max_rows=500, seed=8)
    assert a == b and a.ids != c.ids and len(a.ids) == 500
    dropped = T.read_transfer("goemotions", str(data_dir), max_rows=500, seed=7, exclude=[a.texts[3], a.texts[9]])
    assert len(dropped.ids) == 498 and dropped.dropped_as_validation == 2 and a.texts[3] not in dropped.texts


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,text\na,hello\na,again\n", r"mine.csv:3: id 'a' also on row 2"),
        ("id,text\na,hello\nb,   \n", r"mine.csv:3: id 'b' has a blank text"),
        ("id,body\na,hello\n", r"no column text"),
        ("id,text\n", r"no rows"),
    ],
)
def test_your_own_transfer_csv_is_checked_row_by_row(tmp_path, content, message):
    path = tmp_path / "mine.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        T.read_transfer(str(path))


def test_your_own_transfer_csv_needs_no_labels_and_keeps_its_order(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("id,text,anything\nx1,first text,1\nx2,second text,\n", encoding="utf-8")
    texts = T.read_transfer(str(path))
    assert texts.ids == ("x1", "x2") and texts.texts == ("first text", "second text")


def test_transfer_settings_are_validated():
    for bad, field in (
        ({"transfer_texts": "goemotions"}, "teacher"),
        ({"teacher": "runs/x", "languages": ["deu"], "transfer_texts": "goemotions"}, "English"),
        ({"teacher": "runs/x", "languages": ["eng", "deu"], "transfer_texts": "t.csv"}, "one language"),
        ({"teacher": "runs/x", "transfer_max_rows": -1}, "transfer_max_rows"),
    ):
        with pytest.raises(ConfigError, match=field):
            load_config("smoke", bad)


@pytest.mark.slow
def test_a_student_learns_the_teachers_probabilities_on_transfer_texts_scored_once(
    smoke_cfg, smoke_run, tmp_path, monkeypatch
):
    import emotionlib
    from emotionlib import distill
    from emotionlib.build import build

    path = tmp_path / "transfer.csv"
    path.write_text(
        "id,text\n"
        + "".join(
            f"t{i},text number {i} that teaches {w}\n" for i, w in enumerate(["joy", "fear", "anger", "sadness"] * 10)
        ),
        encoding="utf-8",
    )
    calls = []
    score = distill.score_texts
    monkeypatch.setattr(distill, "score_texts", lambda *a: calls.append(len(a[1])) or score(*a))
    cfg = smoke_cfg.replace(run_id="student-transfer", teacher=str(smoke_run), transfer_texts=str(path))
    (run,) = build(cfg)
    layout = RunLayout(run)
    record = read_json(layout.transfer)
    assert record["rows"] == 40 and record["transfer_texts"] == str(path) and calls == [40]
    assert read_json(layout.provenance)["transfer_rows"] == 40
    from safetensors.numpy import load_file

    probs = load_file(str(layout.transfer_targets))["probs"]
    teacher = emotionlib.load(smoke_run)
    texts = [line.split(",", 1)[1] for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    expected = teacher.predict_proba(texts)[:, [teacher.labels.index(lab) for lab in record["labels"]]]
    assert np.allclose(probs, expected, atol=1e-5)  # the teacher's probabilities are the targets
    # trained again from the beginning: the teacher's probabilities are read, not scored again
    build(cfg, retrain=True)
    assert calls == [40]
    # other texts: scored anew
    path.write_text("id,text\nu1,a new text\nu2,another one\n", encoding="utf-8")
    build(cfg, retrain=True)
    assert calls == [40, 2] and read_json(layout.transfer)["rows"] == 2
