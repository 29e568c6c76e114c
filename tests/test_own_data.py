"""Your own CSV and label set: reading and checking it, and the whole pipeline on the synthetic 8-label example."""

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, make_report, run_cli, run_here
from emotionlib import data as D
from emotionlib.config import ConfigError, load_config

sys.path.insert(0, str(ROOT / "examples"))
import synthetic_tickets  # noqa: E402

pytestmark = pytest.mark.xdist_group("test_own_data")  # its module-scoped fixture is made on one worker

TICKET_LABELS = ["billing", "delivery", "refund", "login", "bug", "praise", "complaint", "feature_request"]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def own(tmp_path, **overrides):
    return load_config("smoke", {"runs_dir": str(tmp_path / "runs"), "run_id": "own", **overrides})


def test_labels_come_from_the_header_in_its_order_and_ignored_columns_are_left_out(tmp_path):
    path = write(tmp_path / "train.csv", "id,text,source,zeta,alpha\na,hi,web,1,0\nb,yo,app,0,1\n")
    d = D.read_table(path, "mine", "train", ignore=["source"])
    assert d.labels == ("zeta", "alpha") and d.y.tolist() == [[1, 0], [0, 1]]
    declared = D.read_table(path, "mine", "train", labels=["alpha", "zeta"], ignore=["source"])
    assert declared.labels == ("alpha", "zeta") and declared.y.tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize(
    "content,kwargs,message",
    [
        ("id,text,a,b\nx,hi,1,0\n", {"labels": ["a", "c"]}, r"declared label column\(s\) 'c' not in the header"),
        ("id,text,a,note\nx,hi,1,n\n", {"labels": ["a"]}, "column 'note' is neither a declared label nor in ignore"),
        ("id,text,note\nx,hi,n\n", {"ignore": ["note"]}, "no label columns"),
        ("id,text,a,a\nx,hi,1,0\n", {}, "a column appears twice"),
        ("id,text,a,b\nx,hi,1,0\ny,yo,1,5\n", {}, r"row 2 \(id y\), column 'b': value '5'"),
        ("id,text,a\nx,hi,1\nx,yo,0\n", {}, "duplicate id 'x' in rows 1 and 2"),
    ],
)
def test_bad_own_files_name_the_file_row_and_column(tmp_path, content, kwargs, message):
    path = write(tmp_path / "train.csv", content)
    with pytest.raises(D.DataError, match=message) as err:
        D.read_table(path, "mine", "train", **kwargs)
    assert str(path) in str(err.value)


def test_dev_file_with_other_labels_than_train_is_refused(tmp_path):
    write(tmp_path / "train.csv", "id,text,a,b\nx,hi,1,0\ny,yo,0,1\n")
    write(tmp_path / "dev.csv", "id,text,a,c\nx,hi,1,0\n")
    source = D.source_for(own(tmp_path, train_csv=str(tmp_path)))
    assert source.has("dev", "custom") and not source.has("test", "custom")
    with pytest.raises(D.DataError, match="dev.csv: label columns a, c differ from the train file's"):
        source.load("dev", "custom")


def test_config_checks_own_data_fields(tmp_path):
    with pytest.raises(ConfigError, match="'labels': only used with your own data"):
        load_config("smoke", {"labels": "a,b"})
    with pytest.raises(ConfigError, match="'labels': .* (is given|named) twice"):
        load_config("smoke", {"train_csv": "x.csv", "labels": "a,a"})
    with pytest.raises(ConfigError, match="'head'"):
        load_config("smoke", {"head": "mlp"})
    cfg = own(tmp_path, train_csv="x.csv", data_name="tickets")
    assert cfg.languages == ("tickets",) and cfg.train_csv.startswith("/")


def test_bad_input_writes_nothing(tmp_path):
    """A bad row stops training before the run directory is created."""
    write(tmp_path / "train.csv", "id,text,a,b\nx,hi,1,0\ny,yo,1,maybe\n")
    out = run_cli(
        "train",
        "--config",
        "smoke",
        "--set",
        f"runs_dir={tmp_path / 'runs'}",
        "run_id=bad",
        f"train_csv={tmp_path / 'train.csv'}",
    )
    assert out.returncode == 2
    assert "train.csv: row 2 (id y), column 'b': value 'maybe'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert not (tmp_path / "runs" / "bad").exists()


@pytest.fixture(scope="module")
def tickets_run(tmp_path_factory):
    """The example: 8 synthetic labels, trained at smoke size with the encoder's own head."""
    from emotionlib.evaluate import evaluate
    from emotionlib.train import train

    tmp = tmp_path_factory.mktemp("tickets")
    folder = synthetic_tickets.main(["--out", str(tmp / "data"), "--train-rows", "200", "--eval-rows", "60"])
    cfg = load_config(
        ROOT / "examples" / "support_tickets.yaml",
        {
            "train_csv": str(folder),
            "runs_dir": str(tmp / "runs"),
            "run_id": "tickets",
            "model": "tiny-xlmr",
            "epochs": 1,
            "max_train_rows": 64,
            "n_bootstrap": 50,
            "lime_num_samples": 50,
            "agreement_sentences": 2,
        },
    )
    run = train(cfg)
    evaluate(run)
    return run


def test_example_trains_on_eight_labels_and_is_scored_on_its_own_files(tickets_run):
    from emotionlib.runs import read_json

    meta = read_json(tickets_run / "model" / "metadata.json")
    assert meta["labels"] == TICKET_LABELS and meta["head"] == "auto" and len(meta["thresholds"]) == 8
    metrics = read_json(tickets_run / "metrics.json")
    assert set(metrics["sets"]) == {"val/tickets", "dev/tickets", "test/tickets"}
    assert metrics["headline"]["set"] == "dev/tickets"
    prov = read_json(tickets_run / "provenance.json")
    assert {p.rsplit("/", 1)[1] for p in prov["data"]} == {"train.csv", "dev.csv", "test.csv"}
    import pandas as pd

    comparison = pd.read_csv(tickets_run / "eval" / "published_comparison.csv")
    assert comparison["best_published"].isna().all() and comparison["tfidf_lr"].notna().all()


def test_interpret_uses_the_configured_case_study(tickets_run):
    from emotionlib.interpret import interpret_run
    from emotionlib.runs import read_json

    s = read_json(interpret_run(tickets_run) / "summary.json")
    assert s["case_study"] == "I was charged twice and I want my money back"
    assert (s["case_label"], s["case_word"]) == ("refund", "money")
    assert set(s["case_probabilities"]) == set(TICKET_LABELS)


def test_train_file_changed_after_the_split_is_refused(tickets_run):
    from emotionlib.run_config import read_config
    from emotionlib.split import training_parts

    cfg = read_config(tickets_run)
    path = Path(cfg.train_csv) / "train.csv"
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b"t00000,", b"t99999,", 1))
        with pytest.raises(D.DataError, match="changed since this run's split was made"):
            training_parts(cfg)
    finally:
        path.write_bytes(original)
    assert len(training_parts(cfg)[1][0]) > 0


def test_exported_pipeline_equals_predict_proba(tickets_run, tmp_path):
    """The Hugging Face export loads with the stock pipeline, no custom code, and gives the same probabilities."""
    import emotionlib
    from transformers import AutoModelForSequenceClassification, pipeline

    out = run_here("export", "--run", str(tickets_run), "--format", "hf", "--out", str(tmp_path / "hf"))
    assert out.returncode == 0, out.stderr
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf")
    assert model.config.problem_type == "multi_label_classification"
    assert [model.config.id2label[i] for i in range(8)] == TICKET_LABELS
    clf = emotionlib.load(tickets_run)
    assert model.config.thresholds == dict(zip(clf.labels, clf.thresholds.tolist()))
    assert "macro-F1" in (tmp_path / "hf" / "README.md").read_text()
    texts = ["I was charged twice", "my parcel never arrived and I want a refund", "thanks! " * 100]
    pipe = pipeline("text-classification", model=str(tmp_path / "hf"), top_k=None)
    got = pipe(texts, truncation=True)
    ours = clf.predict_proba(texts)
    theirs = np.array([[{d["label"]: d["score"] for d in row}[lab] for lab in clf.labels] for row in got])
    assert np.abs(ours - theirs).max() < 1e-5


def test_linear_head_runs_are_refused_by_the_hf_export(smoke_run, tmp_path):
    out = run_here("export", "--run", str(smoke_run), "--format", "hf", "--out", str(tmp_path / "hf"))
    assert out.returncode == 2 and "train the run with head: auto" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "hf").exists()


@pytest.mark.slow
def test_report_on_own_data_has_no_published_columns(tmp_path):
    """`make report` with the example's profile at smoke size: the report names the data and its labels."""

    folder = synthetic_tickets.main(["--out", str(tmp_path / "data"), "--train-rows", "150", "--eval-rows", "40"])
    sets = (
        f"train_csv={folder} model=tiny-xlmr epochs=1 max_train_rows=48 n_bootstrap=50 lime_num_samples=50 "
        "agreement_sentences=2"
    )
    out = make_report(tmp_path, "PROFILE=examples/support_tickets.yaml", "RUN_ID=tickets", f"SET={sets}")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    html = (tmp_path / "reports" / "tickets" / "report.html").read_text(encoding="utf-8")
    assert "8 labels — billing, delivery, refund, login, bug, praise, complaint, feature_request" in html
    assert "your own data set" in html and "tfidf_lr" in html
    assert "RemBERT" not in html and "best_published" not in html
    assert "the model gives refund probability" in html and "“money”" in html
    assert (tmp_path / "runs" / "tickets" / "metrics.json").is_file() and not (ROOT / "runs" / "tickets").exists()
