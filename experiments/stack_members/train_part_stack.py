"""The English stack's combination fitted on the training part out of fold, scored on the untouched validation part.

`langstack` fits the stack's weights, the features member's C and the thresholds on the 553 validation rows (442 a
fold when cross-fitted). A k-fold estimate (`python -m emotionlib kfold`) gives the network's out-of-fold
probabilities for all 2,211 training texts; here the features and TF-IDF members are refitted on the same folds, the
combination is fitted on those 2,211 out-of-fold rows, and the whole validation part (and dev) is scored once. On
validation and dev the network member is the mean of the fold models (a cross-fit ensemble), the other members are
fitted on the whole training part. The row "validation, cross-fitted" fits the same members' combination on the
validation part as `langstack` does, for comparison.

  python experiments/stack_members/train_part_stack.py --kfold runs/kfold-mpnet-f6 runs/kfold-minilm \\
      --sets "0" "features_lr" "0 features_lr tfidf_lr" "0 1 features_lr tfidf_lr" --out <csv>

A set names k-fold estimates by their index in --kfold (each a network member; all must hold out the same rows),
and the members features_lr (EmbeddingGemma's layers 16 and 24 unless --feature-model/--feature-layers say
otherwise) and tfidf_lr.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def fold_ids(kfold_dir: Path) -> list[list[str]]:
    from emotionlib.kfold import read_estimate

    return [r["ids"] for r in read_estimate(kfold_dir)[1]]


def network_member(kfold_dir: Path, tr, sets: dict, labels: list[str]) -> dict:
    """Out of fold on the training part (the estimate's held-out probabilities); elsewhere the fold models' mean."""
    from emotionlib.kfold import read_estimate
    from emotionlib.model import load_model
    from emotionlib.predict import predict_proba
    from emotionlib.runs import RunLayout

    records = read_estimate(kfold_dir)[1]
    by_id = {i: p for r in records for i, p in zip(r["ids"], r["proba"])}
    cols = [records[0]["labels"].index(lab) for lab in labels]
    out = {"train": np.asarray([by_id[i] for i in tr.ids], dtype=np.float32)[:, cols]}
    runs = [load_model(RunLayout(Path(r["run"])).model) for r in records]
    for name, part in sets.items():
        out[name] = np.mean(
            [predict_proba(m, t, part.texts, meta["max_length"], 64)[:, cols] for m, t, meta in runs], axis=0
        )
    return out


def refit_members(tr, sets: dict, folds: list[list[str]], feats: dict, seed: int) -> dict[str, dict]:
    """The features member (each C) and TF-IDF: out of fold on the training part (the estimate's folds), and
    fitted on the whole training part for the other sets."""
    from emotionlib import baseline as B
    from emotionlib.combine import stack_fit as L

    def fit_predict(fit_rows, parts):
        x = np.stack([feats[tr.texts[i]] for i in fit_rows])
        got = {}
        for c, (coef, b) in L.fit_features_lr(x, tr.y[fit_rows], L.LR_CS, seed).items():
            got[f"features_lr C={c:g}"] = [L.sigmoid(np.stack([feats[t] for t in p.texts]) @ coef.T + b) for p in parts]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = B.make_pipeline(seed).fit([tr.texts[i] for i in fit_rows], tr.y[fit_rows])
        got[L.BASELINE] = [pipe.predict_proba(p.texts).astype(np.float32) for p in parts]
        return got

    index = {rid: i for i, rid in enumerate(tr.ids)}
    members: dict[str, dict] = {}
    for held_ids in folds:
        held = [index[i] for i in held_ids]
        fit_rows = sorted(set(range(len(tr.ids))) - set(held))
        for name, (p,) in fit_predict(fit_rows, [tr.subset(held)]).items():
            members.setdefault(name, {"train": np.zeros(tr.y.shape, np.float32)})["train"][held] = p
    for name, preds in fit_predict(list(range(len(tr.ids))), list(sets.values())).items():
        members[name] |= dict(zip(sets, preds))
    return members


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kfold", type=Path, nargs="+", required=True, help="finished k-fold estimates (network members)")
    p.add_argument("--sets", nargs="+", default=["0", "features_lr", "0 features_lr tfidf_lr"])
    p.add_argument("--feature-model", default="embeddinggemma")
    p.add_argument("--feature-layers", nargs="+", type=int, default=[16, -1])
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from emotionlib import data as D
    from emotionlib.split import training_parts
    from emotionlib.combine import stack_fit as L
    from emotionlib.encoders import prompt_for, resolve_encoder
    from emotionlib.features import LayerFeatures
    from emotionlib.metrics import scores
    from emotionlib.predict import decide
    from emotionlib.run_config import read_config
    from emotionlib.runs import RunLayout

    first = args.kfold[0] / "fold-0"
    cfg = read_config(first).replace(cv_folds=0, cv_fold=0)
    (tr,), (va,) = training_parts(cfg, RunLayout(first))
    dev = D.source_for(cfg).load("dev", "eng")
    labels = list(va.labels)
    sets = {"val": va, "dev": dev}
    lf = LayerFeatures(
        resolve_encoder(args.feature_model), args.feature_layers, cfg.max_length, prompt=prompt_for(args.feature_model)
    )
    texts = list(dict.fromkeys(tr.texts + va.texts + dev.texts))
    feats = dict(zip(texts, lf(texts, D.cache_dir() / "features", 32)))
    folds = fold_ids(args.kfold[0])
    if any(fold_ids(k) != folds for k in args.kfold):
        raise SystemExit(f"--kfold: {' '.join(map(str, args.kfold))} do not hold out the same rows")
    members = {str(i): network_member(k, tr, sets, labels) for i, k in enumerate(args.kfold)}
    members |= refit_members(tr, sets, folds, feats, cfg.seed)
    gold = {"train": tr.y, "val": va.y, "dev": dev.y}
    rows = []
    for wanted in (spec.split() for spec in args.sets):
        sub = {k: v for k, v in members.items() if k.split(" ")[0] in wanted}
        fit = L.combine({k: v["train"] for k, v in sub.items()}, tr.y)
        named = {"members": " + ".join(args.kfold[int(w)].name if w.isdigit() else w for w in wanted)}
        row = named | {
            "fitted_on": f"training part, out of fold ({len(tr.ids):,} rows)",
            "weights": " ".join(f"{n}={w:.1f}" for n, w in zip(fit["names"], fit["weights"])),
        }
        for s in ("train", "val", "dev"):
            pred = decide(L.mix({k: v[s] for k, v in sub.items()}, fit), fit["thresholds"])
            row[s] = round(scores(gold[s], pred, labels)["macro_f1"], 4)
        rows.append(row)
        crossed = L.cross_fit({k: v["val"] for k, v in sub.items()}, va.y, 5, cfg.seed)
        rows.append(
            named
            | {
                "fitted_on": "validation part, cross-fitted (5 folds)",
                "val": round(scores(va.y, crossed, labels)["macro_f1"], 4),
            }
        )
        print(rows[-2], rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
