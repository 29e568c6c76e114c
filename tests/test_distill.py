"""Distillation: the student's targets mix the teacher's probabilities with the gold labels; a stacked teacher's
fitted members score the training texts out of fold; a teacher on another split, or not a run, is refused first."""

import numpy as np
import pytest
from safetensors.numpy import load_file

import emotionlib
from conftest import run_here
from emotionlib.split import training_parts
from emotionlib import distill
from emotionlib import graph as G
from emotionlib.config import ConfigError, load_config
from emotionlib.runs import RunLayout, read_json

TWO = {"languages": ["arq", "sun"]}


def test_distillation_settings_are_validated():
    for bad, field in (
        ({"distill_weight": 1.5}, "distill_weight"),
        ({"distill_folds": 1}, "distill_folds"),
        ({"teacher": "profile: "}, "teacher"),
        ({"teacher": "runs/x", "stack": ["network", "tfidf_lr"]}, "teacher"),
        ({"teacher": "runs/x", "holdout_languages": ["eng"]}, "teacher"),
    ):
        with pytest.raises(ConfigError, match=field):
            load_config("smoke", bad)


def test_a_profile_teacher_shares_the_students_data_split_and_seed():
    cfg = load_config("fast", {"run_id": "f1", "seed": 43, "split_seed": 7, "runs_dir": "elsewhere"})
    t = G.teacher_config(cfg)
    assert (t.run_id, t.seed, t.split_seed, t.runs_dir, t.model) == ("f1-teacher", 43, 7, "elsewhere", "minilm")
    assert t.feature_model == "embeddinggemma"  # the best-stack profile: MiniLM with EmbeddingGemma features
    assert t.stack and not t.teacher
    assert G.teacher_config(cfg.replace(teacher="runs/x")) is None
    kfold_fold = G.teacher_config(cfg.replace(cv_folds=5, cv_fold=2))
    assert (kfold_fold.cv_folds, kfold_fold.cv_fold) == (5, 2)  # a fold's teacher never saw the rows it holds out


def test_a_teacher_that_is_not_a_run_is_refused_before_anything_is_written(smoke_cfg, tmp_path):
    from emotionlib.train import train

    (tmp_path / "mine").mkdir()
    cfg = smoke_cfg.replace(run_id="student-nothing", teacher=str(tmp_path / "mine"))
    with pytest.raises(ConfigError, match="teacher.*not a trained emotionlib run"):
        train(cfg)
    assert not cfg.run_dir.exists()


def test_the_cli_needs_a_teacher():
    out = run_here("distill", "--config", "smoke", "--set", "run_id=no-teacher")
    assert out.returncode == 2 and "distill needs a teacher" in out.stderr


@pytest.mark.slow
def test_a_teacher_on_another_split_is_refused(smoke_cfg, smoke_run):
    from emotionlib.train import train

    cfg = smoke_cfg.replace(run_id="student-other-split", split_seed=7, teacher=str(smoke_run))
    with pytest.raises(ConfigError, match="split_seed 42.*validation rows"):
        train(cfg)
    assert not cfg.run_dir.exists()  # refused before the student's folder was made


@pytest.mark.slow
def test_a_teacher_whose_split_record_was_altered_is_still_caught_by_its_rows(smoke_cfg, smoke_run, tmp_path):
    import shutil

    from emotionlib.runs import write_json
    from emotionlib.run_records import seal
    from emotionlib.train import train

    teacher = tmp_path / "teacher"
    shutil.copytree(smoke_run, teacher)
    split = read_json(RunLayout(teacher).split)
    split["languages"]["eng"]["val_ids"] = split["languages"]["eng"]["val_ids"][5:]  # five validation rows trained on
    write_json(RunLayout(teacher).split, split)
    seal(RunLayout(teacher))  # a teacher whose own record says so (else its manifest refuses the edited split)
    cfg = smoke_cfg.replace(run_id="student-leak", teacher=str(teacher))
    with pytest.raises(ConfigError, match="trained on 5 of this run's eng validation rows"):
        train(cfg)
    assert not RunLayout(cfg.run_dir).weights.exists()


@pytest.mark.slow
def test_a_student_learns_the_mix_of_a_profile_teacher_and_the_gold_labels(smoke_cfg):
    from emotionlib.build import build
    from emotionlib.train import train

    cfg = smoke_cfg.replace(run_id="student", teacher="profile:smoke", distill_weight=0.7)
    with pytest.raises(ValueError, match="not a trained emotionlib run"):
        train(cfg)  # training alone reads a finished teacher; the run graph builds it
    run = build(cfg)[0]
    layout = RunLayout(run)
    teacher = RunLayout(run.parent / "student-teacher")
    assert teacher.train_summary.is_file()  # trained first, beside the student
    record = read_json(layout.teacher)
    assert record["teacher_weights_sha256"] and record["scored"]["eng"] == {"network": "in sample"}
    probs = load_file(str(layout.teacher_targets))["probs"]
    train_parts, _ = training_parts(cfg, layout)
    texts = [t for p in train_parts for t in p.texts]
    assert record["ids"] == [i for p in train_parts for i in p.ids] and probs.shape == (
        len(texts),
        len(record["labels"]),
    )
    clf = emotionlib.load(teacher.root)
    expected = clf.predict_proba(texts)[:, [clf.labels.index(lab) for lab in record["labels"]]]
    assert np.allclose(probs, expected, atol=1e-5)  # a network teacher scores its training texts in sample
    prov = read_json(layout.provenance)["distilled_from"]
    assert prov["distill_weight"] == 0.7 and "ids" not in prov
    assert read_json(layout.metadata)["distilled_from"] == "profile:smoke"
    assert build(cfg) == [run]  # a finished student (and teacher) is skipped, not distilled again


@pytest.mark.slow
def test_a_stacked_teachers_fitted_members_score_the_training_texts_out_of_fold(smoke_cfg):
    from emotionlib.build import build
    from emotionlib.train import train

    tcfg = smoke_cfg.replace(
        run_id="teacher-stack", stack=["network", "features_lr", "tfidf_lr"], feature_layers=[1, -1], **TWO
    )
    build(tcfg)
    # with augmented copies of the training texts, which learn the teacher's probabilities alone
    cfg = smoke_cfg.replace(
        run_id="student-of-stack",
        teacher=str(tcfg.run_dir),
        distill_folds=3,
        augment="eda",
        augment_strength=0.3,
        **TWO,
    )
    layout = RunLayout(train(cfg))
    record = read_json(layout.teacher)
    copies = distill.sources(record["ids"]) != np.arange(len(record["ids"]))
    assert copies.any() and all("-aug" in i for i in np.asarray(record["ids"])[copies])
    stack = read_json(RunLayout(tcfg.run_dir).stack_meta)["languages"]
    for lang in ("arq", "sun"):
        weighted = {n for n, w in stack[lang]["weights"].items() if w > 0}
        assert set(record["scored"][lang]) == weighted
        for name, how in record["scored"][lang].items():
            assert how == ("in sample" if name == "network" else "out of fold (3 folds)")
    probs = load_file(str(layout.teacher_targets))["probs"]
    train_parts, _ = training_parts(cfg, layout)
    clf = emotionlib.load(tcfg.run_dir)
    part = train_parts[0]
    in_sample = clf.predict_proba(part.texts, lang=part.lang)[:, [clf.labels.index(lab) for lab in record["labels"]]]
    fitted = {n for n, w in stack[part.lang]["weights"].items() if w > 0 and n != "network"}
    assert fitted and not np.allclose(probs[: len(part)], in_sample, atol=1e-4)  # refitted members moved
    assert ((probs >= 0) & (probs <= 1)).all()
    from emotionlib import dataset as DS
    from emotionlib.augment import augment_training

    parts, val_parts = training_parts(cfg, layout)
    parts, _ = augment_training(cfg, parts, None)
    ex = DS.Examples.from_splits(parts, record["labels"])
    assert list(ex.ids) == record["ids"]
    wanted = distill.targets(cfg, layout, parts, val_parts, ex)  # the stored probabilities, reused
    assert np.allclose(wanted[copies], (probs * ex.mask)[copies])  # a copy's label is a guess: the teacher alone
    assert np.allclose(wanted[~copies], ((0.5 * probs + 0.5 * ex.y) * ex.mask)[~copies])


def test_an_augmented_copy_points_at_the_row_it_was_made_from():
    ids = ["a", "b-aug", "b", "a-aug1", "b-aug2", "c-aug1"]  # "b-aug" and "c-aug1" are ids of the data, not copies
    assert distill.sources(ids).tolist() == [0, 1, 2, 0, 2, 5]
