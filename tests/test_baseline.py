import pandas as pd
import pytest

from emotionlib.baseline import fit_language
from emotionlib.compare import headline, run_baseline
from emotionlib.data import DataSource


def test_baseline_table_for_two_languages(tmp_path, data_dir):
    table = run_baseline(tmp_path, str(data_dir), ["eng", "hin"])
    assert (tmp_path / "baseline.csv").is_file() and (tmp_path / "baseline.png").is_file()
    t = table.set_index("lang")
    assert t.loc["eng", "scored_on"] == "dev" and pd.isna(t.loc["eng", "test_macro_f1"])  # unlabeled test
    assert t.loc["hin", "scored_on"] == "test"
    assert t.loc["hin", "baseline"] == pytest.approx(100 * t.loc["hin", "test_macro_f1"], abs=0.01)
    assert t.loc["hin", "RemBERT"] == 85.51 and t.loc["hin", "best_published"] == 85.51  # quoted as published
    assert 0.3 < t.loc["hin", "test_macro_f1"] < 1  # a real classifier, far above chance on this language
    h = headline(table)
    assert h["languages"] == 1 and h["mean_best_published"] == 85.51


def test_label_without_positives_in_train_does_not_break_fitting(data_dir):
    row = fit_language(DataSource.resolve(data_dir), "afr")  # five labels, several rare
    assert row["labels"] == 5 and 0 <= row["test_macro_f1"] <= 1
