"""Offline augmentation: EDA and embedding neighbours, seeded, on the training part only."""

from collections import Counter

import numpy as np
import pytest

from emotionlib import augment as A
from emotionlib import data as D
from emotionlib.split import training_parts
from emotionlib.config import LABELS_KNOWN, ConfigError, load_config
from emotionlib.runs import RunLayout, read_json


def test_eda_swaps_deletes_or_inserts_words_of_the_text_and_is_seeded():
    text = "the storm last night scared me more than I can say"
    words = Counter(text.split())
    seen = set()
    for seed in range(30):
        out = A.eda(text, np.random.default_rng(seed), 0.2)
        assert out == A.eda(text, np.random.default_rng(seed), 0.2)  # the same generator, the same text
        new = Counter(out.split())
        assert new, "never every word deleted"
        if new == words:
            seen.add("swap" if out != text else "same")
        elif not new - words:
            seen.add("delete")
        else:
            assert not words - new and set(new) <= set(words)  # inserted words come from the text itself
            seen.add("insert")
    assert {"swap", "delete", "insert"} <= seen
    assert A.eda("alone", np.random.default_rng(0), 0.5) == "alone"


def test_augment_part_adds_rows_for_the_target_labels_only():
    part = D.LangSplit(
        "eng",
        "train",
        ["a", "b", "c"],
        ["I am so very angry now", "what a happy sunny day", "ok then"],
        ("anger", "joy"),
        np.array([[1, 0], [0, 1], [0, 0]]),
    )
    out, added = A.augment_part(part, A.eda, 0.3, ["anger"], 2, seed=0)
    assert added == 2 and out.ids[:3] == part.ids and out.ids[3:] == ["a-aug1", "a-aug2"]
    assert out.y[3:].tolist() == [[1, 0], [1, 0]] and out.texts[:3] == part.texts
    every, n = A.augment_part(part, A.eda, 0.3, [], 1, seed=0)
    assert n == 3 and len(every) == 6


def test_neighbours_replace_words_by_their_nearest_pieces(smoke_cfg):
    from emotionlib.encoders import resolve_encoder

    nb = A.Neighbours(resolve_encoder("tiny-xlmr"), k=3)
    tid = int(np.flatnonzero(nb.initial.numpy())[10])
    sims = (nb.emb @ nb.emb[tid]).numpy()
    sims[~nb.initial.numpy()] = -2
    sims[tid] = -2
    assert nb.of(tid) == np.argsort(-sims, kind="stable")[:3].tolist()
    text = "I can't believe how happy I feel today"
    out = nb(text, np.random.default_rng(0), 0.3)
    assert out != text and len(out.split()) == len(text.split())


def test_config_checks_augmentation_and_the_labels_agree_with_the_data_module():
    assert LABELS_KNOWN == D.LABELS
    for bad in (
        {"augment": "paraphrase"},
        {"augment_strength": 0},
        {"augment_labels": ["rage"]},
        {"augment_copies": 0},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            load_config("smoke", bad)


@pytest.mark.slow
def test_training_with_augmentation_adds_rows_to_the_training_part_only(smoke_cfg):
    from emotionlib.train import train

    cfg = smoke_cfg.replace(run_id="smoke-eda", augment="eda", augment_labels=["fear"])
    run = RunLayout(train(cfg))
    prov = read_json(run.provenance)
    train_parts, val_parts = training_parts(cfg)
    fear = int(train_parts[0].y[:, train_parts[0].labels.index("fear")].sum())
    assert 0 < prov["augmented_rows"] <= fear
    assert prov["n_train"] == len(train_parts[0]) + prov["augmented_rows"]
    assert prov["n_val"] == len(val_parts[0])  # the validation part is never augmented
