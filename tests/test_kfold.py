import numpy as np
import pytest

from conftest import run_cli, run_here
from emotionlib import data as D
from emotionlib.split import heldout_parts, prepare_data, training_parts
from emotionlib import build, kfold
from emotionlib.config import ConfigError, load_config
from emotionlib.runs import NotOurs, read_json, write_json


def cv_cfg(tmp_path, **changes):
    return load_config("smoke", {"run_id": "cv", "runs_dir": str(tmp_path), "max_train_rows": 60, **changes})


def test_the_folds_partition_the_training_part_and_never_touch_validation(tmp_path):
    whole = cv_cfg(tmp_path)
    prepare_data(whole)
    (train,), (val,) = training_parts(whole)
    held_ids, trained = [], []
    for i in range(3):
        cfg = whole.replace(cv_folds=3, cv_fold=i)
        (fit,), _ = training_parts(cfg)
        (held,) = heldout_parts(cfg)
        assert not set(fit.ids) & set(held.ids)
        assert set(fit.ids) | set(held.ids) == set(train.ids)
        assert not (set(fit.ids) | set(held.ids)) & set(val.ids)
        held_ids += held.ids
        trained.append(len(fit))
    assert sorted(held_ids) == sorted(train.ids)  # every training text is held out exactly once
    assert all(36 <= n <= 44 for n in trained)
    with pytest.raises(ValueError, match="not a k-fold run"):
        heldout_parts(whole)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"cv_folds": 1}, "cv_folds"),
        ({"cv_folds": 21}, "cv_folds"),
        ({"cv_folds": 3, "cv_fold": 3}, "cv_fold"),
        ({"cv_fold": 1}, "cv_fold"),
    ],
)
def test_fold_settings_are_checked(tmp_path, changes, field):
    with pytest.raises(ConfigError, match=f"config field '{field}'"):
        cv_cfg(tmp_path, **changes)


def test_a_part_too_small_for_its_folds_is_named(tmp_path):
    cfg = cv_cfg(tmp_path, max_train_rows=3)
    prepare_data(cfg)
    with pytest.raises(D.DataError, match=r"eng\.csv: a training part of 3 rows cannot be split into 5 folds"):
        training_parts(cfg.replace(cv_folds=5))


def fold_record(fold, ids, y, proba, labels=("a", "b")):
    y, proba = np.asarray(y), np.asarray(proba)
    return {
        "fold": fold,
        "labels": list(labels),
        "ids": ids,
        "langs": ["eng"] * len(ids),
        "y": y.tolist(),
        "mask": np.ones_like(y).tolist(),
        "proba": proba.tolist(),
        "val_macro_f1": 0.5,
        "macro_f1": kfold.macro_f1(y, proba, np.ones_like(y), ["eng"] * len(ids), labels),
    }


def write_estimate(folder, records):
    folder.mkdir()
    for r in records:
        write_json(folder / f"fold-{r['fold']}.heldout.json", r)
    write_json(folder / kfold.SUMMARY, kfold.summarise(records) | {"folds": len(records)})


def test_pooled_figure_scores_every_held_out_text_once_and_compare_pairs_folds(tmp_path):
    y = [[1, 0], [0, 1], [1, 1], [0, 0]]
    a = [
        fold_record(0, ["r1", "r2"], y[:2], [[0.9, 0.1], [0.2, 0.3]]),  # fold 0 misses r2's b
        fold_record(1, ["r3", "r4"], y[2:], [[0.8, 0.7], [0.1, 0.2]]),
    ]
    b = [
        fold_record(0, ["r1", "r2"], y[:2], [[0.9, 0.1], [0.2, 0.8]]),  # b gets it
        fold_record(1, ["r3", "r4"], y[2:], [[0.8, 0.7], [0.1, 0.2]]),
    ]
    s = kfold.summarise(a)
    from sklearn.metrics import f1_score

    pred = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    assert s["n_heldout"] == 4 and s["pooled_macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    write_estimate(tmp_path / "a", a)
    write_estimate(tmp_path / "b", b)
    d = kfold.compare(tmp_path / "a", tmp_path / "b", n_bootstrap=200)
    assert d["fold_diff"][1] == 0 and d["fold_diff"][0] > 0
    assert d["pooled_diff"] == pytest.approx(1.0 - s["pooled_macro_f1"])
    lo, hi = d["pooled_diff_ci95"]
    assert lo <= d["pooled_diff"] <= hi
    shown = run_here("kfold", "--compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert shown.returncode == 0, shown.stderr
    assert "per fold: +" in shown.stdout and "pooled over" not in shown.stdout
    assert f"difference {d['pooled_diff']:+.4f}" in shown.stdout and "95% paired bootstrap [" in shown.stdout
    other = [dict(r, ids=[i + "x" for i in r["ids"]]) for r in b]
    write_estimate(tmp_path / "c", other)
    with pytest.raises(ValueError, match="hold out different rows"):
        kfold.compare(tmp_path / "a", tmp_path / "c")


def test_an_unfinished_estimate_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no kfold.json"):
        kfold.read_estimate(tmp_path)


def test_a_folder_emotionlib_did_not_make_is_refused_before_any_training(tmp_path):
    mine = tmp_path / "cv"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(NotOurs, match="not made by emotionlib"):
        build.estimate(cv_cfg(tmp_path), 2)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_stack_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="one network a fold"):
        build.estimate(cv_cfg(tmp_path, stack=["network", "tfidf_lr"]), 2)


@pytest.mark.slow
def test_estimate_trains_a_run_a_fold_and_resumes_without_retraining(tmp_path):
    cfg = cv_cfg(tmp_path, max_train_rows=40)
    root = build.estimate(cfg, 2)
    s, records = kfold.read_estimate(root)
    assert s["folds"] == 2 and s["n_heldout"] == 40 and len(s["fold_macro_f1"]) == 2
    assert s["provenance"]["commit"] and s["config"]["model"] == "tiny-xlmr"
    for r in records:
        run = root / f"fold-{r['fold']}"
        assert read_json(run / "provenance.json")["n_train"] == 20
        assert (run / "model" / "model.safetensors").is_file()
    stamp = (root / "fold-1" / "model" / "model.safetensors").stat().st_mtime_ns
    (root / "fold-1.heldout.json").unlink()  # an estimate stopped after fold 1's training
    (root / kfold.SUMMARY).unlink()
    again = run_cli(
        "kfold", "--config", "smoke", "--folds", "2", "--set", "run_id=cv", f"runs_dir={tmp_path}", "max_train_rows=40"
    )
    assert again.returncode == 0, again.stderr
    assert str(root) in again.stdout and "pooled over 40 held-out texts" in again.stdout
    assert (root / "fold-1" / "model" / "model.safetensors").stat().st_mtime_ns == stamp  # not retrained
    assert kfold.read_estimate(root)[1][1]["proba"] == records[1]["proba"]
