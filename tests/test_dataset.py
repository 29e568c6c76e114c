"""What the training loop iterates: rows over one label space (masked where a language lacks a label), tokenised
once, padded per batch."""

import numpy as np

from emotionlib import data as D
from emotionlib import dataset as DS


def test_dataset_and_collator_pad_per_batch():
    from emotionlib.model import load_tokenizer
    from emotionlib.encoders import resolve_encoder

    tok = load_tokenizer(resolve_encoder("tiny-xlmr"))
    part = D.LangSplit(
        "eng",
        "train",
        ["a", "b"],
        ["short", "a much longer sentence than the other one"],
        ("anger", "fear", "joy", "sadness", "surprise"),
        np.array([[0, 1, 0, 0, 0], [1, 0, 0, 0, 1]]),
    )
    ex = DS.Examples.from_splits([part], D.LABELS)
    assert ex.mask[0].tolist() == [1, 0, 1, 1, 1, 1]  # English has no disgust: masked, not a 0 label
    ds = DS.EmotionDataset(ex, tok, max_length=128)
    batch = DS.Collator(tok.pad_token_id)([ds[0], ds[1]])
    assert batch["input_ids"].shape[1] == len(ds[1]["input_ids"]) < 128
    assert batch["labels"].dtype.is_floating_point and batch["labels"].shape == (2, 6)
    fixed = DS.EmotionDataset(ex, tok, max_length=128, pad_to_max_length=True)
    assert len(fixed[0]["input_ids"]) == 128
    assert len(DS.EmotionDataset(ex, tok, max_length=4)[1]["input_ids"]) == 4
