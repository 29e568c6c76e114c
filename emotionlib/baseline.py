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

    features = FeatureUnion(
        [
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=200_000
                ),
            ),
            (
                "word",
                TfidfVectorizer(
                    analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"
                ),
            ),
        ]
    )
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


def cached_fit_language(source: D.DataSource | D.CsvSource, lang: str, seed: int = 42) -> dict:
    """`fit_language`'s row, kept in emotionlib's cache under a key of all that decides it: the sha256 of the
    language's files, the seed, the pipeline's settings and scikit-learn's version. Every evaluation of a language
    after the first reads it (fitting takes seconds a language, minutes for all 28); a damaged entry is fitted
    again."""
    import hashlib
    import json

    import sklearn

    from emotionlib.runs import read_json, sha256_of, write_json

    files = {split: sha256_of(source.path(split, lang)) for split in D.SPLITS if source.has(split, lang)}
    params = {
        k: v for k, v in make_pipeline(seed).get_params(deep=True).items() if isinstance(v, (str, int, float, tuple))
    }
    key = json.dumps([files, seed, params, sklearn.__version__], sort_keys=True, default=str)
    path = D.cache_dir() / "baseline" / f"{lang}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    try:
        entry = read_json(path)
        if entry["key"] == key:
            return {k: (np.nan if v is None and k.endswith("_macro_f1") else v) for k, v in entry["row"].items()}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass  # none yet, or not one emotionlib wrote whole: fitted again and written over
    row = fit_language(source, lang, seed)
    write_json(path, {"key": key, "row": row})
    return row


# --- saving a fitted baseline without pickles (an ensemble member) ------------------------------------------


def save_pipeline(pipe, labels, folder) -> None:
    """The fitted pipeline as JSON (each vectoriser's settings and vocabulary) plus safetensors (idf, weights)."""
    import json
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors, vectorisers = {}, []
    for name, vec in pipe.named_steps["tfidf"].transformer_list:
        params = {k: v for k, v in vec.get_params().items() if k in VECTORISER_PARAMS}
        vectorisers.append(
            {"name": name, "params": params, "vocabulary": {t: int(i) for t, i in vec.vocabulary_.items()}}
        )
        tensors[f"{name}.idf"] = torch.tensor(vec.idf_, dtype=torch.float64)
    coef, intercept = [], []
    for est in pipe.named_steps["clf"].estimators_:
        if hasattr(est, "coef_"):
            coef.append(est.coef_[0])
            intercept.append(est.intercept_[0])
        else:  # a label with one class in training: scikit-learn predicts it constantly
            coef.append(np.zeros(sum(len(v["vocabulary"]) for v in vectorisers)))
            intercept.append(30.0 if float(est.y_[0]) == 1 else -30.0)
    tensors["coef"] = torch.tensor(np.asarray(coef), dtype=torch.float64)
    tensors["intercept"] = torch.tensor(np.asarray(intercept), dtype=torch.float64)
    save_file(tensors, folder / "baseline.safetensors")
    (folder / "baseline.json").write_text(
        json.dumps({"labels": list(labels), "vectorisers": vectorisers}, ensure_ascii=False), encoding="utf-8"
    )


VECTORISER_PARAMS = (
    "analyzer",
    "ngram_range",
    "lowercase",
    "sublinear_tf",
    "token_pattern",
    "norm",
    "use_idf",
    "smooth_idf",
    "min_df",
    "max_features",
)


class SavedBaseline:
    """A baseline written by save_pipeline: the same probabilities as the fitted pipeline's predict_proba."""

    def __init__(self, folder):
        import json
        from pathlib import Path

        from safetensors.numpy import load_file
        from sklearn.feature_extraction.text import TfidfVectorizer

        folder = Path(folder)
        spec = json.loads((folder / "baseline.json").read_text(encoding="utf-8"))
        tensors = load_file(folder / "baseline.safetensors")
        self.labels = spec["labels"]
        self.vectorisers = []
        for v in spec["vectorisers"]:
            params = dict(v["params"], ngram_range=tuple(v["params"]["ngram_range"]))
            vec = TfidfVectorizer(**params, vocabulary=v["vocabulary"])
            vec.idf_ = tensors[f"{v['name']}.idf"]  # the public setter: a fixed vocabulary and its idf, no refit
            self.vectorisers.append(vec)
        self.coef, self.intercept = tensors["coef"], tensors["intercept"]

    def predict_proba(self, texts) -> np.ndarray:
        from scipy.sparse import hstack

        x = hstack([vec.transform(list(texts)) for vec in self.vectorisers]).tocsr()
        return (1.0 / (1.0 + np.exp(-(x @ self.coef.T + self.intercept)))).astype(np.float32)
