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


def test_the_baseline_is_fitted_once_for_its_files_seed_and_settings(data_dir, tmp_path, monkeypatch):
    """Every evaluation of a language reads the TF-IDF row fitted the first time; another seed, or a damaged entry,
    is fitted again."""
    import json

    import emotionlib.baseline as B

    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path))
    source = DataSource.resolve(data_dir)
    first = B.cached_fit_language(source, "eng")  # its test file is unlabeled: a NaN figure comes back as NaN
    assert pd.isna(first["test_macro_f1"]) and 0.3 < first["dev_macro_f1"] < 1
    fitted = []
    real = B.fit_language
    monkeypatch.setattr(B, "fit_language", lambda *a, **k: fitted.append(a[1:]) or real(*a, **k))
    again = B.cached_fit_language(source, "eng")
    assert fitted == [] and json.dumps(again) == json.dumps(first)
    B.cached_fit_language(source, "eng", seed=7)
    assert fitted == [("eng", 7)]  # another seed: another entry
    (entry,) = [
        p for p in (tmp_path / "baseline").glob("eng-*.json") if json.loads(json.loads(p.read_text())["key"])[1] == 42
    ]
    entry.write_text("{not json")
    refitted = B.cached_fit_language(source, "eng")
    assert fitted[-1] == ("eng", 42) and refitted["dev_macro_f1"] == first["dev_macro_f1"]
    assert json.loads(entry.read_text())["row"]["dev_macro_f1"] == first["dev_macro_f1"]  # written whole again
