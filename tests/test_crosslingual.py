import pandas as pd
import pytest

from emotionlib.config import ConfigError, load_config
from emotionlib.runs import RunLayout, read_json


@pytest.mark.slow
def test_holdout_runs_train_without_the_language_and_score_it_zero_shot(tmp_path):
    from emotionlib.build import build
    from emotionlib.crosslingual import holdout_table
    from emotionlib.evaluate import evaluate
    from emotionlib.graph import holdout_config
    from emotionlib.train import train

    cfg = load_config(
        "smoke", {"runs_dir": str(tmp_path), "run_id": "joint", "languages": "eng,deu", "holdout_languages": "deu"}
    )
    held = holdout_config(cfg, "deu")
    assert (held.run_id, held.languages, held.eval_languages, held.holdout_languages) == (
        "joint-without-deu",
        ("eng",),
        ("deu",),
        (),
    )
    (run,) = build(cfg)
    assert RunLayout(held.run_dir).train_summary.is_file()  # built with the run, before any evaluation
    with pytest.raises(FileNotFoundError, match="evaluate the run"):
        holdout_table(run)
    evaluate(run)
    table = holdout_table(run)
    row = table.set_index("lang").loc["deu"]
    zero = read_json(RunLayout(held.run_dir).metrics)["sets"]["test/deu"]
    assert zero["zero_shot"] and row["scored_on"] == "test"
    assert row["zero_shot"] == pytest.approx(round(100 * zero["tuned_thresholds"]["macro_f1"], 2))
    joint = pd.read_csv(RunLayout(run).comparison).set_index("lang").loc["deu"]
    assert row["in_language"] == joint["emotionlib"] and row["family"] == "Indo-European"
    assert row["zero_shot_minus_in_language"] == pytest.approx(row["zero_shot"] - row["in_language"], abs=0.01)
    assert RunLayout(run).crosslingual_png.is_file()
    assert holdout_table(train(load_config("smoke", {"runs_dir": str(tmp_path), "run_id": "none"}))) is None


def test_a_holdout_language_must_be_one_of_several_training_languages(tmp_path):
    from emotionlib.graph import holdout_config

    with pytest.raises(ConfigError, match="holdout_languages"):
        holdout_config(load_config("smoke", {"languages": "eng,deu"}), "amh")
    with pytest.raises(ConfigError, match="holdout_languages"):
        holdout_config(load_config("smoke", {"languages": "eng"}), "eng")
    with pytest.raises(ConfigError, match="holdout_languages"):
        load_config("smoke", {"train_csv": str(tmp_path / "x.csv"), "holdout_languages": "deu"})
