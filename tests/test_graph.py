"""The run graph: every run a run needs, derived from its config alone, in the order it is built."""

import pytest

from emotionlib import graph as G
from emotionlib.config import load_config


def kinds(cfg):
    return [(s.kind, s.name) for s in G.needs(cfg)]


def test_a_plain_run_needs_itself_only():
    cfg = load_config("smoke", {"run_id": "r"})
    assert kinds(cfg) == [("train", "r")] and G.further_runs(cfg) == []


def test_a_cross_fit_stack_trains_its_folds_first_and_adopts_fold_0():
    cfg = load_config("best-stack-large", {"run_id": "bsl", "runs_dir": "somewhere"})
    assert kinds(cfg) == [("kfold", G.FOLDS_DIR), ("adopt", "fold-0"), ("stack", "stack")]
    folds = G.needs(cfg)[0]
    assert folds.folds == 3 and folds.config.run_dir == cfg.run_dir / G.FOLDS_DIR
    assert folds.config.stack == () and folds.config.stack_network_folds == 0  # the network alone, as kfold trains it
    assert G.fold_runs(cfg) == [cfg.run_dir / G.FOLDS_DIR / f"fold-{i}" for i in range(3)]
    fold = G.fold_config(folds.config, 3, 2)
    assert (fold.run_dir, fold.cv_folds, fold.cv_fold) == (cfg.run_dir / G.FOLDS_DIR / "fold-2", 3, 2)


def test_a_distilled_profile_builds_its_teacher_before_itself():
    cfg = load_config("fast", {"run_id": "f", "runs_dir": "somewhere"})
    steps = G.needs(cfg)
    assert [(s.kind, s.name) for s in steps] == [("teacher", "teacher"), ("train", "f")]
    teacher = steps[0].config
    assert teacher.run_id == "f-teacher" and teacher.stack and not teacher.teacher
    assert G.teacher_dir(cfg) == teacher.run_dir and G.teacher_dir(cfg.replace(teacher="runs/x")).name == "x"
    assert [what.split(":")[0] for what, _ in G.further_runs(cfg)] == ["config field 'teacher'"]


def test_members_per_language_runs_and_held_out_languages_come_in_order():
    cfg = load_config(
        "smoke",
        {
            "run_id": "m",
            "languages": ["eng", "deu"],
            "stack": ["network", "tfidf_lr"],
            "stack_runs": ["seed=43"],
            "holdout_languages": ["deu"],
        },
    )
    assert kinds(cfg) == [("train", "m"), ("train", "network-m1"), ("stack", "stack"), ("train", "without-deu")]
    per = load_config("smoke", {"run_id": "p", "languages": ["eng", "deu"], "multilingual": "per_language"})
    assert [c.run_id for c in G.language_configs(per)] == ["p-eng", "p-deu"]
    assert kinds(per) == [("train", "p-eng"), ("train", "p-deu")]


def test_a_held_out_language_must_be_a_training_language():
    from emotionlib.config import ConfigError

    with pytest.raises(ConfigError, match="holdout_languages"):
        G.holdout_config(load_config("smoke", {"languages": ["eng", "deu"]}), "amh")


def test_a_bad_setting_anywhere_in_the_graph_is_refused_before_the_first_training(tmp_path, monkeypatch):
    """The student's own setting is wrong (an encoder that is not there): refused before its teacher trains."""
    from emotionlib import build

    trained = []
    monkeypatch.setattr(build, "train", lambda cfg, **kw: trained.append(cfg.run_id))
    cfg = load_config(
        "smoke",
        {
            "runs_dir": str(tmp_path),
            "run_id": "s",
            "teacher": "profile:smoke",
            "model": str(tmp_path / "no-such-encoder"),
        },
    )
    with pytest.raises(Exception, match="no-such-encoder"):
        build.build(cfg)
    assert trained == [] and not (tmp_path / "s").exists() and not (tmp_path / "s-teacher").exists()
