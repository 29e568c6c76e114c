"""A quality floor for the transformer path: MiniLM, one epoch on English, must learn.

Measured on the 2-core CI machine (2026-11-27, `python -m emotionlib train --profile quick --set epochs=1`,
seed 42): validation macro-F1 0.506 at 0.5 and 0.642 at tuned thresholds, dev 0.671 at tuned thresholds.
Predicting every label for every text scores 0.456 on these labels (F1 = 2p / (1 + p) per label), and a
model that learnt nothing can do no better than that at tuned thresholds; so a broken loss, a shuffled label
order or thresholds applied to the wrong labels fall under the floors below.

The test fine-tunes the top three of MiniLM's six layers and the head (`freeze_layers=3`), which trains through
the same loop, loss, optimiser and thresholds in two thirds of the time (2026-12-08, a 2-core AMD EPYC with AVX2
only, one thread, nothing else running: one epoch 42.5 s against 63.8 s with every weight trained). Its
measurements (`load_config("quick", {"epochs": 1, "freeze_layers": 3, "seed": s})`, same machine), validation /
dev macro-F1 at tuned thresholds: seed 42 0.634 / 0.643, seed 43 0.618 / 0.633 (every weight trained: 0.642 /
0.671 and 0.640 / 0.647). The floors lie 4.8 and 6.3 points under the lower seed, 11 points over the trivial
0.456.
"""

import numpy as np
import pytest

from emotionlib.config import load_config
from emotionlib.runs import read_json

FLOOR_VAL_TUNED = 0.57
FLOOR_DEV_TUNED = 0.57


@pytest.mark.heavy
@pytest.mark.slow
def test_minilm_one_epoch_on_english_clears_the_measured_floor(tmp_path):
    from emotionlib import data as D
    from emotionlib.evaluate import evaluate
    from emotionlib.metrics import scores
    from emotionlib.predict import decide

    run = load_config("quick", {"epochs": 1, "freeze_layers": 3, "runs_dir": str(tmp_path), "run_id": "floor"})
    from emotionlib.train import train

    metrics = evaluate(train(run))["metrics"]["sets"]
    val, dev = metrics["val/eng"], metrics["dev/eng"]
    assert val["tuned_thresholds"]["macro_f1"] >= FLOOR_VAL_TUNED
    assert dev["tuned_thresholds"]["macro_f1"] >= FLOOR_DEV_TUNED
    assert val["tuned_thresholds"]["macro_f1"] >= val["threshold_0.5"]["macro_f1"]  # tuned in-sample: never worse
    # the trivial predictor really is below the floors on this data
    d = D.DataSource.resolve().load("dev", "eng")
    assert scores(d.y, decide(np.ones_like(d.y)), d.labels)["macro_f1"] < FLOOR_DEV_TUNED - 0.05
    assert read_json(tmp_path / "floor" / "model" / "metadata.json")["labels"] == list(d.labels)
