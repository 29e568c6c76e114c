"""Does the English features member gain from other languages' training texts? The frozen EmbeddingGemma features
(cached by the multilingual feature pass) of every other language's training file join the English training part,
weighted by --weights, one logistic regression per English label on the rows of languages that annotate that
label; scored cross-fitted on the English validation part, alone and in the stack beside a MiniLM run and TF-IDF
(combined exactly as `langstack` does). Only texts already in the feature cache are used: nothing is encoded.

  python experiments/crosslingual_features/crosslingual_features.py --runs runs/distill-alone-s42 ... --out x.csv
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stack_members"))
from stack_members import member_probs  # noqa: E402


def foreign_rows(labels: list[str], lang: str, cache) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Cached features and English-label targets (NaN where a language does not annotate a label) of every other
    language's training texts."""
    from emotionlib import data as D
    from emotionlib.encoders import gemma
    from emotionlib.features import _digest

    source, xs, ys, names = D.DataSource.resolve(), [], [], []
    for other in D.expand_languages(["all"]):
        if other == lang or not source.has("train", other):
            continue
        part = source.load("train", other)
        keep = [i for i, t in enumerate(part.texts) if _digest(gemma.PROMPT + t) in cache.rows]
        if not keep:
            continue
        x = np.stack([cache.rows[_digest(gemma.PROMPT + part.texts[i])].numpy() for i in keep])
        y = np.full((len(keep), len(labels)), np.nan, np.float32)
        for j, lab in enumerate(labels):
            if lab in part.labels:
                y[:, j] = part.y[keep, list(part.labels).index(lab)]
        xs.append(x), ys.append(y), names.append(f"{other}:{len(keep)}")
    return np.concatenate(xs), np.concatenate(ys), names


def fit_lr(x, y, w, x_va, c, seed):
    """One balanced LR per label (rows with that label annotated), standardised on the rows it trains on."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils.class_weight import compute_sample_weight

    out = np.zeros((len(x_va), y.shape[1]), np.float32)
    for j in range(y.shape[1]):
        rows = ~np.isnan(y[:, j])
        xj, yj, wj = x[rows], y[rows, j], w[rows]
        mean, scale = xj.mean(0), xj.std(0) + 1e-6
        sw = wj * compute_sample_weight("balanced", yj)
        clf = LogisticRegression(C=c, max_iter=1000, tol=1e-3, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit((xj - mean) / scale, yj, sample_weight=sw / sw.mean())
        out[:, j] = clf.predict_proba((x_va - mean) / scale)[:, 1]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="MiniLM runs, one a seed (same split)")
    p.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.1, 0.3, 1.0])
    p.add_argument("--cs", nargs="+", type=float, default=[0.001, 0.003])
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from emotionlib import data as D
    from emotionlib.combine import stack_fit as L
    from emotionlib.encoders import gemma
    from emotionlib.features import FeatureCache, LayerFeatures, _digest
    from emotionlib.metrics import scores
    from emotionlib.run_config import read_config
    from emotionlib.runs import RunLayout
    from emotionlib.split import training_parts

    cfg = read_config(args.runs[0])
    train_parts, val_parts = training_parts(cfg, RunLayout(args.runs[0]))
    tr, va = train_parts[0], val_parts[0]
    fp = LayerFeatures(gemma.install(), list(gemma.FEATURE_LAYERS), cfg.max_length, prompt=gemma.PROMPT).fingerprint
    cache = FeatureCache(D.cache_dir() / "features" / fp)
    get = lambda texts: np.stack([cache.rows[_digest(gemma.PROMPT + t)].numpy() for t in texts])  # noqa: E731
    x_tr, x_va = get(tr.texts), get(va.texts)
    labels = list(tr.labels)
    x_f, y_f, names = foreign_rows(labels, tr.lang, cache)
    print(
        f"English: {len(x_tr)} training, {len(x_va)} validation rows; others: {len(x_f)} rows ({' '.join(names)})",
        flush=True,
    )
    variants = {}
    for w in args.weights:
        for c in args.cs:
            x = np.concatenate([x_tr, x_f]) if w else x_tr
            y = np.concatenate([tr.y.astype(np.float32), y_f]) if w else tr.y.astype(np.float32)
            wt = np.concatenate([np.ones(len(x_tr)), np.full(len(x_f), w)]) if w else np.ones(len(x_tr))
            variants[(w, c)] = fit_lr(x, y, wt, x_va, c, cfg.seed)
            print(f"fitted weight {w} C {c}", flush=True)
    rows = []
    for run in args.runs:
        seed = read_config(run).seed
        probs, y, _, _ = member_probs([run], tr.lang, "embeddinggemma", list(gemma.FEATURE_LAYERS))
        base = {k: v for k, v in probs.items() if not k.startswith("features_lr")}
        for w in args.weights:
            feats = {f"features_lr C={c:g}": variants[(w, c)] for c in args.cs}
            for name, sub in (("feat", feats), ("minilm+feat+tfidf", {**base, **feats})):
                s = scores(y, L.cross_fit(sub, y, cfg.stack_folds, seed), labels)["macro_f1"]
                rows.append({"set": name, "foreign_weight": w, "fold_seed": seed, "val_cross_fitted": round(s, 4)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.groupby(["set", "foreign_weight"])["val_cross_fitted"].agg(["count", "mean", "std"]).round(4))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
