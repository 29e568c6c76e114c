"""In the frozen-encoder mode: does giving each language its own label priors lift the
joint head's 0.30-0.34 validation plateau on 28 languages?

    python experiments/language_heads/language_heads.py --seeds 42 43 --out bench

One cached pass of multilingual-e5-small (mean pooling, the `multilingual` profile's precision and length; the
cache is the profile's own) over every training row of the 28 languages, split 80/20 as a run splits them
(split seed 42). On those features, each head is trained on the union of the training parts and scored on each
language's validation part (macro-F1 at 0.5 over that language's labels, then the mean over languages):

- joint: one linear head for all languages (what the profile trains today);
- joint + language bias: the same head plus a learned bias vector per language (label priors per language);
- per-language head: a separate linear head per language, trained jointly (one optimiser, one loop);
- per-language LR: scikit-learn logistic regression per language and label, C chosen by 3-fold CV on that
  language's training part (never on its validation part), class_weight balanced;
- TF-IDF (optional, --tfidf): the project's baseline pipeline fitted per language on the same training part.

The torch heads train with Adam (lr 1e-2, batch 256, BCE with absent labels masked), keeping the epoch of best
mean validation macro-F1 (so their validation figure is an upper estimate; the LR and TF-IDF ones are not
selected on validation). Writes <out>/language_heads.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


from emotionlib import data as D
from emotionlib.split import split_train_val


from emotionlib import dataset as DS
from emotionlib.config import load_config
from emotionlib.features import encoder_fingerprint, pooled_features
from emotionlib.metrics import language_scores
from emotionlib.model import build_classifier, load_tokenizer
from emotionlib.encoders import resolve_encoder
from emotionlib.runs import write_json
from emotionlib.provenance import provenance
from emotionlib.hardware import resolve_precision
from emotionlib.train import label_space


class LanguageHead(nn.Module):
    """A linear head over features, with optionally a bias per language or a whole head per language."""

    def __init__(self, dim: int, labels: int, languages: int, kind: str):
        super().__init__()
        self.kind = kind
        self.shared = nn.Linear(dim, labels)
        self.bias = nn.Embedding(languages, labels) if kind == "bias" else None
        if self.bias is not None:
            nn.init.zeros_(self.bias.weight)
        self.heads = nn.Parameter(torch.zeros(languages, dim, labels)) if kind == "per_language" else None
        self.head_bias = nn.Parameter(torch.zeros(languages, labels)) if kind == "per_language" else None

    def forward(self, x, lang):
        if self.kind == "per_language":
            return torch.einsum("nd,ndc->nc", x, self.heads[lang]) + self.head_bias[lang]
        out = self.shared(x)
        return out + self.bias(lang) if self.bias is not None else out


def fit_torch(kind, xtr, ytr, mtr, ltr, xva, yva, mva, lva, langs, labels, seed, epochs, lr=1e-2, batch=256):
    torch.manual_seed(seed)
    head = LanguageHead(xtr.shape[1], ytr.shape[1], len(langs), kind)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    lossf = nn.BCEWithLogitsLoss(reduction="none")
    g = torch.Generator().manual_seed(seed)
    best, best_scores, stale = -1.0, None, 0
    for epoch in range(epochs):
        head.train()
        for idx in torch.randperm(len(xtr), generator=g).split(batch):
            loss = (lossf(head(xtr[idx], ltr[idx]), ytr[idx]) * mtr[idx]).sum() / mtr[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            pred = (torch.sigmoid(head(xva, lva)) >= 0.5).int().numpy()
        s = language_scores(yva.numpy(), pred, mva.numpy(), [langs[i] for i in lva.tolist()], labels)
        if s["mean_macro_f1"] > best:
            best, best_scores, stale = s["mean_macro_f1"], s, 0
        elif (stale := stale + 1) >= 5:
            break
    return {lang: v["macro_f1"] for lang, v in best_scores["languages"].items()}


def fit_lr(x_train, y_train, x_val, y_val, seed):
    from sklearn.linear_model import LogisticRegressionCV

    pred = np.zeros_like(y_val)
    for j in range(y_train.shape[1]):
        if y_train[:, j].min() == y_train[:, j].max():  # one class only in training: predict it
            pred[:, j] = y_train[0, j]
            continue
        clf = LogisticRegressionCV(
            Cs=[0.1, 1.0, 10.0], cv=3, scoring="f1", class_weight="balanced", max_iter=2000, random_state=seed
        )
        pred[:, j] = clf.fit(x_train, y_train[:, j]).predict(x_val)
    return pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--languages", nargs="+", default=["all"])
    ap.add_argument("--tfidf", action="store_true", help="add the TF-IDF baseline per language (minutes)")
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    cfg = load_config("multilingual", {"languages": args.languages, "run_id": "language-heads"})
    source, langs = D.source_for(cfg), D.train_languages(cfg)
    train_parts, val_parts = [], []
    for lang in langs:
        full = source.load("train", lang)
        tr, va = split_train_val(full, cfg.val_fraction, cfg.split_seed)
        train_parts.append(full.subset(tr))
        val_parts.append(full.subset(va))
    labels = label_space(train_parts)
    train_ex, val_ex = DS.Examples.from_splits(train_parts, labels), DS.Examples.from_splits(val_parts, labels)

    t0 = time.time()
    encoder_dir = resolve_encoder(cfg.model)
    precision = resolve_precision(cfg.mixed_precision)
    model = build_classifier(encoder_dir, labels, cfg.head, pooling=cfg.pooling)
    cache = D.cache_dir() / "features" / encoder_fingerprint(encoder_dir, cfg.pooling, cfg.max_length, precision)
    feats = pooled_features(
        model,
        load_tokenizer(encoder_dir),
        train_ex.texts + val_ex.texts,
        cfg.max_length,
        cfg.eval_batch_size,
        precision,
        cache,
    )
    feature_seconds = round(time.time() - t0, 1)
    print(f"features of {len(feats)} texts: {feature_seconds} s ({precision})", flush=True)
    xtr, xva = feats[: len(train_ex.texts)], feats[len(train_ex.texts) :]
    index = {lang: i for i, lang in enumerate(langs)}
    ltr = torch.tensor([index[x] for x in train_ex.langs])
    lva = torch.tensor([index[x] for x in val_ex.langs])
    tensors = [torch.tensor(a) for a in (train_ex.y, train_ex.mask, val_ex.y, val_ex.mask)]

    results, seconds = {}, {}
    for kind, name in (("joint", "joint"), ("bias", "joint + language bias"), ("per_language", "per-language head")):
        for seed in args.seeds:
            t = time.time()
            results[f"{name} s{seed}"] = fit_torch(
                kind,
                xtr,
                tensors[0],
                tensors[1],
                ltr,
                xva,
                tensors[2],
                tensors[3],
                lva,
                langs,
                labels,
                seed,
                args.epochs,
            )
            seconds[f"{name} s{seed}"] = round(time.time() - t, 1)
            print(
                f"{name} s{seed}: mean {statistics.mean(results[f'{name} s{seed}'].values()):.4f} "
                f"[{seconds[f'{name} s{seed}']} s]",
                flush=True,
            )

    t = time.time()
    lr_scores = {}
    for lang, tr_part, va_part in zip(langs, train_parts, val_parts):
        rows_tr = np.array([x == lang for x in train_ex.langs])
        rows_va = np.array([x == lang for x in val_ex.langs])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = fit_lr(xtr[rows_tr].numpy(), tr_part.y, xva[rows_va].numpy(), va_part.y, args.seeds[0])
        lr_scores[lang] = language_scores(va_part.y, pred, np.ones_like(pred), [lang] * len(pred), va_part.labels)[
            "mean_macro_f1"
        ]
    results["per-language LR"], seconds["per-language LR"] = lr_scores, round(time.time() - t, 1)
    print(
        f"per-language LR: mean {statistics.mean(lr_scores.values()):.4f} [{seconds['per-language LR']} s]", flush=True
    )

    if args.tfidf:
        from emotionlib.baseline import make_pipeline

        t, tf = time.time(), {}
        for lang, tr_part, va_part in zip(langs, train_parts, val_parts):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = make_pipeline(args.seeds[0]).fit(tr_part.texts, tr_part.y).predict_proba(va_part.texts) >= 0.5
            tf[lang] = language_scores(
                va_part.y, pred.astype(int), np.ones_like(pred), [lang] * len(pred), va_part.labels
            )["mean_macro_f1"]
        results["TF-IDF"], seconds["TF-IDF"] = tf, round(time.time() - t, 1)
        print(f"TF-IDF: mean {statistics.mean(tf.values()):.4f} [{seconds['TF-IDF']} s]", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out / "language_heads.json",
        {
            "results": results,
            "seconds": seconds,
            "feature_seconds": feature_seconds,
            "languages": langs,
            "args": vars(args) | {"out": str(args.out)},
            "provenance": provenance(),
        },
    )
    names = list(results)
    lines = ["| lang | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {lang} | " + " | ".join(f"{results[n][lang]:.3f}" for n in names) + " |" for lang in langs]
    lines.append("| **mean** | " + " | ".join(f"**{statistics.mean(results[n].values()):.3f}**" for n in names) + " |")
    lines.append("| seconds | " + " | ".join(str(seconds[n]) for n in names) + " |")
    (args.out / "language_heads.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
