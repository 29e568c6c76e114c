"""which encoder layers should the frozen-feature member read? Mean-pooled multilingual-e5-small
features of every hidden state, from one pass over a few languages' training files (split 80/20 as a run splits
them, split seed 42); per language and label, a logistic regression (class_weight balanced) fitted on the training
part for each layer choice and C, scored on the validation part (macro-F1 at 0.5, mean over languages).

    python experiments/feature_layers/feature_layers.py --languages eng deu hau amh --out bench
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np


from emotionlib import data as D
from emotionlib.split import split_train_val
from emotionlib.config import load_config
from emotionlib.features import LayerFeatures
from emotionlib.metrics import scores
from emotionlib.encoders import resolve_encoder
from emotionlib.runs import write_json
from emotionlib.provenance import provenance

CHOICES = {
    "last": [12],
    "8+12": [8, 12],
    "6+9+12": [6, 9, 12],
    "9..12": [9, 10, 11, 12],
    "4+8+12": [4, 8, 12],
    "mean 1..12": "mean",
}


def lr_macro_f1(xtr, ytr, xva, yva, labels, c):
    from sklearn.linear_model import LogisticRegression

    pred = np.zeros_like(yva)
    for j in range(ytr.shape[1]):
        if ytr[:, j].min() == ytr[:, j].max():
            pred[:, j] = ytr[0, j]
            continue
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
        pred[:, j] = clf.fit(xtr, ytr[:, j]).predict(xva)
    return scores(yva, pred, labels)["macro_f1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--languages", nargs="+", default=["eng", "deu", "hau", "amh"])
    ap.add_argument("--cs", type=float, nargs="+", default=[0.1, 1.0])
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    cfg = load_config("multilingual", {"languages": args.languages, "run_id": "feature-layers"})
    source = D.source_for(cfg)
    encoder_dir = resolve_encoder(cfg.model)
    results, t0 = {}, time.time()
    for lang in D.train_languages(cfg):
        full = source.load("train", lang)
        tr, va = split_train_val(full, cfg.val_fraction, cfg.split_seed)
        train, val = full.subset(tr), full.subset(va)
        feats = LayerFeatures(encoder_dir, list(range(1, 13)), cfg.max_length)(
            train.texts + val.texts, progress=False
        )  # (n, 12 * hidden)
        hidden = feats.shape[1] // 12
        blocks = [feats[:, i * hidden : (i + 1) * hidden] for i in range(12)]
        print(f"{lang}: features of {len(feats)} texts, {time.time() - t0:.0f} s", flush=True)
        for name, layers in CHOICES.items():
            x = np.mean(blocks, axis=0) if layers == "mean" else np.hstack([blocks[i - 1] for i in layers])
            xtr, xva = x[: len(train)], x[len(train) :]
            for c in args.cs:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results.setdefault(f"{name} C={c:g}", {})[lang] = lr_macro_f1(
                        xtr, train.y, xva, val.y, train.labels, c
                    )
        print({k: round(v[lang], 3) for k, v in results.items()}, flush=True)
    langs = D.train_languages(cfg)
    lines = ["| layers, C | " + " | ".join(langs) + " | mean |", "|---" * (len(langs) + 2) + "|"]
    lines += [
        f"| {k} | " + " | ".join(f"{v[lang]:.3f}" for lang in langs) + f" | **{statistics.mean(v.values()):.3f}** |"
        for k, v in results.items()
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out / "feature_layers.json",
        {"results": results, "seconds": round(time.time() - t0, 1), "languages": langs, "provenance": provenance()},
    )
    (args.out / "feature_layers.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
