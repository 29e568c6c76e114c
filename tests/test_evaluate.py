import json

import pandas as pd
import pytest

from emotionlib.compare import PUBLISHED_COLUMNS, published_comparison, reference_table
from emotionlib.runs import read_json


def test_evaluate_writes_metrics_tables_and_figures(smoke_run):
    metrics = read_json(smoke_run / "metrics.json")
    assert set(metrics["sets"]) == {"val/eng", "dev/eng"}  # English test is unlabeled: not scored
    dev = metrics["sets"]["dev/eng"]
    for kind in ("threshold_0.5", "tuned_thresholds"):
        s = dev[kind]
        lo, hi = s["macro_f1_ci95"]
        assert lo <= s["macro_f1"] <= hi
        assert set(s["per_label"]) == {"anger", "fear", "joy", "sadness", "surprise"}
    assert metrics["headline"]["set"] == "dev/eng"
    assert metrics["headline"]["macro_f1"] == dev["tuned_thresholds"]["macro_f1"]
    for name in (
        "summary.csv",
        "per_label.csv",
        "published_comparison.csv",
        "confusion_dev_eng.png",
        "cooccurrence_dev_eng.png",
        "per_label_dev_eng.png",
        "predictions/dev_eng.csv",
    ):
        assert (smoke_run / "eval" / name).is_file(), name
    summary = pd.read_csv(smoke_run / "eval" / "summary.csv")
    assert len(summary) == 4 and set(summary["thresholds"]) == {"threshold_0.5", "tuned_thresholds"}


def test_published_columns_are_quoted_as_they_are(smoke_run):
    ref = reference_table()
    table = pd.read_csv(smoke_run / "eval" / "published_comparison.csv")
    row, ref_row = table.set_index("lang").loc["eng"], ref.set_index("lang").loc["eng"]
    for col in PUBLISHED_COLUMNS:
        assert row[col] == ref_row[col]
    assert row["scored_on"] == "dev"  # English test labels are not public here
    assert row["emotionlib_minus_best"] == pytest.approx(
        row["emotionlib"] - ref_row[list(PUBLISHED_COLUMNS)].max(), abs=0.011
    )


def test_comparison_prefers_labeled_test_over_dev():
    summary = pd.DataFrame(
        [
            {"set": "dev/deu", "split": "dev", "lang": "deu", "thresholds": "tuned_thresholds", "macro_f1": 0.5},
            {"set": "test/deu", "split": "test", "lang": "deu", "thresholds": "tuned_thresholds", "macro_f1": 0.4},
            {"set": "test/deu", "split": "test", "lang": "deu", "thresholds": "threshold_0.5", "macro_f1": 0.3},
        ]
    )
    t = published_comparison(summary).set_index("lang")
    assert t.loc["deu", "scored_on"] == "test" and t.loc["deu", "emotionlib"] == 40.0
    assert t.loc["deu", "best_published"] == 64.23


def test_evaluate_cli_for_one_split(run_copy):
    from conftest import run_here

    before = json.loads((run_copy / "metrics.json").read_text())
    out = run_here(
        "evaluate", "--run", str(run_copy), "--split", "dev"
    )  # a private copy: the shared run stays as it is
    assert out.returncode == 0, out.stderr
    assert "set=dev/eng" in out.stdout and "val/eng" not in out.stdout
    after = json.loads((run_copy / "metrics.json").read_text())  # one file per set: nothing else is lost
    assert list(after["sets"]) == ["val/eng", "dev/eng"] and after["headline"] == before["headline"]
