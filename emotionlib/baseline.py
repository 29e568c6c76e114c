"""A strong classical baseline per language: TF-IDF over character and word n-grams, one-vs-rest logistic
regression (scikit-learn), trained on the train file, scored on dev and test (where labeled)."""
from __future__ import annotations

import time
import warnings

import numpy as np

from emotionlib import data as D
from emotionlib.metrics import scores


def make_pipeline(seed: int = 42):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion([
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                 max_features=200_000)),
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                                 token_pattern=r"(?u)\b\w+\b")),
    ])
    clf = OneVsRestClassifier(LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=seed))
    return Pipeline([("tfidf", features), ("clf", clf)])


def fit_language(source: D.DataSource | D.CsvSource, lang: str, seed: int = 42) -> dict:
    """Fit on `lang`'s train file; macro-F1 (threshold 0.5) on dev and on test where it is labeled."""
    t0 = time.perf_counter()
    train = source.load("train", lang)
    model = make_pipeline(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a label without positives in train is predicted constant 0
        model.fit(train.texts, train.y)
    row = {"lang": lang, "labels": len(train.labels), "n_train": len(train)}
    for split in ("dev", "test"):
        d = source.load(split, lang) if source.has(split, lang) else None
        if d is None or not d.labeled:
            row[f"{split}_macro_f1"] = np.nan
            continue
        assert d.labels == train.labels, f"{d.path}: labels differ from the train file"
        row[f"{split}_macro_f1"] = scores(d.y, model.predict(d.texts), d.labels)["macro_f1"]
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row
