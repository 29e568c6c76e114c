"""Per language: the stack's features member on EmbeddingGemma-300M (mean-pooled layers 16 and 24, classification
prompt; features from the cache that feature_pass.py fills) beside the TF-IDF member, fitted exactly as the
per-language stack fits them (langstack: members on the training part, C, weights and thresholds on the validation
part, a cross-fitted validation figure) but without the fine-tuned network, then scored on the test file (English:
dev). Each member alone is scored the same way. Prints one CSV row per language.

Run: python experiments/gemma_features/stack_probe.py --langs deu hin ... > experiments/gemma_features/probe.csv
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from emotionlib import data as D
from emotionlib.split import split_train_val
from emotionlib.config import load_config
from emotionlib.encoders import gemma
from emotionlib.features import LayerFeatures
from emotionlib.combine.weights import BASELINE
from emotionlib.combine.stack_fit import Members, fit_language, sigmoid
from emotionlib.metrics import scores
from emotionlib.predict import decide


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--langs", nargs="+", required=True)
    ap.add_argument("--layers", nargs="+", type=int, default=list(gemma.FEATURE_LAYERS))
    ap.add_argument("--no-prompt", action="store_true", help="the features without the classification prompt")
    ap.add_argument(
        "--cs",
        nargs="+",
        type=float,
        default=None,
        help="the features member's C grid (default: the stack's, stack_fit.LR_CS)",
    )
    ap.add_argument(
        "--precision",
        default="no",
        choices=["no", "bf16", "int8"],
        help="the feature pass's precision (its own cache key; default fp32, as the probe was first run)",
    )
    args = ap.parse_args()
    if args.cs:
        import emotionlib.combine.stack_fit

        emotionlib.combine.stack_fit.LR_CS = tuple(args.cs)
    feats = LayerFeatures(
        gemma.find(), args.layers, 128, precision=args.precision, prompt="" if args.no_prompt else gemma.PROMPT
    )
    source = D.DataSource.resolve()
    print("lang,scored_on,n_train,n_val,n_scored,stack,features_lr,tfidf_lr,val_oof,w_features,w_tfidf,c,seconds")
    for lang in args.langs:
        t0 = time.time()
        cfg = load_config(
            "multilingual",
            {
                "languages": [lang],
                "stack": "features_lr,tfidf_lr",
                "run_id": "probe",
                "head_per_language": "none",
                "language_temperature": 1.0,
            },
        )
        full = source.load("train", lang)
        train_idx, val_idx = split_train_val(full, cfg.val_fraction, cfg.split_seed)
        tr, va = full.subset(train_idx), full.subset(val_idx)
        split = "dev" if lang == "eng" else "test"
        te = source.load(split, lang)
        if te.y is None:
            print(f"{lang}: its {split} file is unlabeled", file=sys.stderr)
            continue
        texts = tr.texts + va.texts + te.texts
        cached = dict(zip(texts, feats(texts, D.cache_dir() / "features", 32, progress=False)))
        record, saved = fit_language(cfg, tr, va, Members({"labels": list(tr.labels)}, cached=cached))
        x_te = np.stack([cached[t] for t in te.texts])
        coef, intercept = saved["features_lr"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probs = {
                "features_lr": sigmoid(x_te @ coef.T + intercept),
                "tfidf_lr": saved[BASELINE].predict_proba(te.texts).astype(np.float32) if BASELINE in saved else None,
            }
        names = record["members"]
        mixed = sum(record["weights"][n] * probs[n] for n in names)
        cols = [te.labels.index(lab) for lab in tr.labels]
        gold = te.y[:, cols]
        f1 = {"stack": scores(gold, decide(mixed, record["thresholds"]), tr.labels)["macro_f1"]}
        for n in names:
            f1[n] = scores(gold, decide(probs[n], record["member_thresholds"][n]), tr.labels)["macro_f1"]
        print(
            f"{lang},{split},{len(tr)},{len(va)},{len(te)},{100 * f1['stack']:.2f},{100 * f1['features_lr']:.2f},"
            f"{100 * f1.get('tfidf_lr', float('nan')):.2f},{100 * record['val_oof']:.2f},"
            f"{record['weights'].get('features_lr', 0):.2f},{record['weights'].get('tfidf_lr', 0):.2f},"
            f"{record['features_lr_c']},{time.time() - t0:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
