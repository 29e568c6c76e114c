"""A strong classical baseline per language: TF-IDF over character and word n-grams, one-vs-rest logistic
regression (scikit-learn), trained on the train file, scored on dev and test (where labeled)."""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

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


def run_baseline(out_dir: Path | None, data_dir: str | None = None, languages: Sequence[str] = ("all",),
                 seed: int = 42) -> pd.DataFrame:
    """The per-language table (x100), beside BRIGHTER Table 5; languages with unlabeled test are scored on dev."""
    from tqdm.auto import tqdm

    from emotionlib import plots
    from emotionlib.evaluate import PUBLISHED_COLUMNS, reference_table

    source = D.DataSource.resolve(data_dir)
    langs = D.expand_languages(languages)
    rows = [fit_language(source, lang, seed) for lang in tqdm(langs, desc="baseline", unit="lang")]
    table = pd.DataFrame(rows)
    table["scored_on"] = np.where(table["test_macro_f1"].isna(), "dev", "test")
    table["baseline"] = (100 * table["test_macro_f1"].fillna(table["dev_macro_f1"])).round(2)
    table = table.merge(reference_table(), on="lang", how="left")
    table["best_published"] = table[list(PUBLISHED_COLUMNS)].max(axis=1)
    table["baseline_minus_best"] = (table["baseline"] - table["best_published"]).round(2)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(out_dir / "baseline.csv", index=False)
        marked = table.assign(lang=[f"{l}*" if s == "dev" else l for l, s in zip(table["lang"], table["scored_on"])])
        plots.language_bars(marked, ["baseline", "best_published"],
                            "TF-IDF + logistic regression vs best published (BRIGHTER Table 5); * scored on dev",
                            out_dir / "baseline.png")
    return table


def headline(table: pd.DataFrame) -> dict:
    """On languages with a labeled test file and a published figure: wins over the best column and the means."""
    t = table[(table["scored_on"] == "test") & table["best_published"].notna()]
    return {"languages": int(len(t)), "baseline_beats_best_published": int((t["baseline"] > t["best_published"]).sum()),
            "mean_baseline": round(float(t["baseline"].mean()), 2),
            "mean_best_published": round(float(t["best_published"].mean()), 2)}
