"""Which EmbeddingGemma layers should the English features member read? One pass over the English training file
(classification prompt, mean-pooled, every layer in --layers side by side, cached under its own fingerprint), then
for each layer set the features member alone and the stack beside a MiniLM run and TF-IDF, cross-fitted on the
validation part exactly as `langstack` combines them, one line a (set, seed).

  python experiments/gemma_features/english_layers.py --runs runs/distill-alone-s42 runs/distill-alone-s43 \\
      runs/distill-alone-s44 --sets 16,24 24 12,24 8,16,24 --out experiments/gemma_features/english_layers.csv

With --add-model (and --add-layers), a second encoder's mean-pooled layers are put beside every set as well (its
own prompt, if it has one): does a second encoder's view add to EmbeddingGemma's?
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stack_members"))
from stack_members import member_probs  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="MiniLM runs, one a seed (same split)")
    p.add_argument("--layers", nargs="+", type=int, default=[4, 8, 12, 14, 16, 18, 20, 22, 24])
    p.add_argument("--sets", nargs="+", required=True, help="layer sets, each comma-separated, e.g. 16,24")
    p.add_argument("--add-model", default="", help="a second encoder whose features join every set, e.g. mpnet")
    p.add_argument("--add-layers", nargs="+", type=int, default=[-1])
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from emotionlib import data as D
    from emotionlib.split import training_parts
    from emotionlib.combine import stack_fit as L
    from emotionlib.encoders import gemma, prompt_for, resolve_encoder
    from emotionlib.features import LayerFeatures
    from emotionlib.metrics import scores
    from emotionlib.run_config import read_config
    from emotionlib.runs import RunLayout

    sets = {s: [int(i) for i in s.split(",")] for s in args.sets}
    if missing := {i for v in sets.values() for i in v} - set(args.layers):
        raise SystemExit(f"--sets use layers {sorted(missing)} that --layers does not compute")
    cfg = read_config(args.runs[0])
    train_parts, val_parts = training_parts(cfg, RunLayout(args.runs[0]))
    tr, va = train_parts[0], val_parts[0]
    feats = LayerFeatures(gemma.install(), args.layers, cfg.max_length, prompt=gemma.PROMPT)
    x = feats(tr.texts + va.texts, D.cache_dir() / "features", 32)
    width = x.shape[1] // len(args.layers)
    cols = lambda layers: np.concatenate([np.arange(width) + width * args.layers.index(i) for i in layers])  # noqa
    x_tr, x_va = x[: len(tr)], x[len(tr) :]
    if args.add_model:
        extra = LayerFeatures(
            resolve_encoder(args.add_model), args.add_layers, cfg.max_length, prompt=prompt_for(args.add_model)
        )(tr.texts + va.texts, D.cache_dir() / "features", 32)
        x_tr, x_va = np.hstack([x_tr, extra[: len(tr)]]), np.hstack([x_va, extra[len(tr) :]])
        tail = np.arange(x.shape[1], x_tr.shape[1])
        sets.update(
            {
                f"{k}+{args.add_model}@{','.join(map(str, args.add_layers))}": v + ["extra"]
                for k, v in list(sets.items())
            }
        )
        cols = lambda layers, plain=cols: np.concatenate(  # noqa: E731
            [plain([i for i in layers if i != "extra"])] + ([tail] if "extra" in layers else [])
        )
    variants = {}
    for name, layers in sets.items():
        c = cols(layers)
        variants[name] = {
            f"features_lr C={k:g}": L.sigmoid(x_va[:, c] @ coef.T + b)
            for k, (coef, b) in L.fit_features_lr(x_tr[:, c], tr.y, L.LR_CS, cfg.seed).items()
        }
        print(f"fitted layers {name}", flush=True)
    rows = []
    for run in args.runs:
        seed = read_config(run).seed
        probs, y, labels, _ = member_probs([run], tr.lang, "embeddinggemma", list(gemma.FEATURE_LAYERS))
        base = {k: v for k, v in probs.items() if not k.startswith("features_lr")}
        for name, lr in variants.items():
            for kind, sub in (("feat", lr), ("minilm+feat+tfidf", {**base, **lr})):
                s = scores(y, L.cross_fit(sub, y, cfg.stack_folds, seed), labels)["macro_f1"]
                rows.append({"set": kind, "layers": name, "fold_seed": seed, "val_cross_fitted": round(s, 4)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.groupby(["set", "layers"], sort=False)["val_cross_fitted"].agg(["count", "mean", "std"]).round(4))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
