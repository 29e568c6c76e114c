"""Per language: our fine-tuning of multilingual-e5-small on one language against the recipe
peer, the BRIGHTER paper's own protocol for its Table 5 run through the Hugging Face Trainer on the same encoder,
language and split. Languages of different size and script, each trained by both, one after the other, in one
process (nothing else should run).

    python experiments/recipe_peer/recipe_peer.py --languages arq tat hau amh --out bench

- ours: `emotionlib.train.train` on the language alone with the me5-small settings of `make report
  MODEL=me5-small` (mean pooling, the lowest 6 layers frozen, lr 5e-5; bf16 where the CPU has oneDNN bf16
  kernels) and the quick profile's loop otherwise (batch 16, max length 128, length-grouped batches, warm-up 0.1),
  --epochs epochs with early stopping on the validation part; per-label thresholds tuned on the validation part.
- peer: `AutoModelForSequenceClassification` on the same encoder folder, 2 epochs, lr 1e-5, batch 8, max length
  256, at most 5,000 training rows, BCE with pos_weight = negatives / positives per label, threshold 0.5; the
  Trainer's defaults otherwise (AdamW, linear decay, no warm-up), fp32 as the protocol states no precision.

Both train on the same training part (the run's 80/20 split, split seed 42) and are scored on its validation
part and on the language's test file (macro-F1 x100), with the wall time of training. Writes
<out>/recipe_peer.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


from emotionlib import data as D
from emotionlib.split import training_parts
from emotionlib.compare import PUBLISHED_COLUMNS, reference_table
from emotionlib.config import load_config
from emotionlib.metrics import scores
from emotionlib.model import build_classifier, load_model, load_tokenizer
from emotionlib.encoders import resolve_encoder
from emotionlib.predict import decide, predict_proba
from emotionlib.runs import RunLayout, read_json, write_json
from emotionlib.provenance import provenance
from emotionlib.train import train

PEER = {"epochs": 2, "learning_rate": 1e-5, "batch_size": 8, "max_length": 256, "max_rows": 5000}


def f1(d: D.LangSplit, probs: np.ndarray, thresholds) -> float:
    return round(100 * scores(d.y, decide(probs, thresholds), d.labels)["macro_f1"], 2)


def run_ours(
    lang: str, seed: int, epochs: int, runs_dir: Path, model: str, freeze: int, precision: str
) -> tuple[dict, object]:
    cfg = load_config(
        "quick",
        {
            "model": model,
            "languages": [lang],
            "learning_rate": 5e-5,
            "mixed_precision": precision,
            "pooling": "mean",
            "freeze_layers": freeze,
            "epochs": epochs,
            "patience": 1,
            "seed": seed,
            "run_id": f"ours-{lang}-s{seed}",
            "runs_dir": str(runs_dir),
        },
    )
    layout = RunLayout(cfg.run_dir)
    if not layout.train_summary.is_file():
        train(cfg)
    summary = read_json(layout.train_summary)
    # the epochs' training time, as the peer's is timed (validation and threshold tuning are not in it)
    train_seconds = sum(json.loads(line)["train_seconds"] for line in layout.train_log.read_text().splitlines())
    model, tok, meta = load_model(layout.model)
    _, val = training_parts(cfg, layout)
    test = D.source_for(cfg).load("test", lang)
    val_p = predict_proba(model, tok, val[0].texts, meta["max_length"], precision=meta["mixed_precision"])
    test_p = predict_proba(model, tok, test.texts, meta["max_length"], precision=meta["mixed_precision"])
    return {
        "seconds": round(train_seconds, 1),
        "wall_seconds": summary["wall_seconds"],
        "epochs_run": summary["epochs_run"],
        "val_tuned": f1(val[0], val_p, meta["thresholds"]),
        "val_0.5": f1(val[0], val_p, 0.5),
        "test_tuned": f1(test, test_p, meta["thresholds"]),
        "test_0.5": f1(test, test_p, 0.5),
        "precision": meta["mixed_precision"],
    }, cfg


class _Weighted(torch.nn.Module):
    """The encoder's own classification model, with the protocol's pos-weighted BCE inside forward (as Trainer
    expects)."""

    def __init__(self, net, pos_weight: torch.Tensor):
        super().__init__()
        self.net, self.loss = net, torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def forward(self, input_ids, attention_mask, labels=None):
        logits = self.net(input_ids=input_ids, attention_mask=attention_mask).logits
        return {"loss": self.loss(logits, labels) if labels is not None else None, "logits": logits}


def run_peer(cfg, lang: str, seed: int, workdir: Path) -> dict:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    layout = RunLayout(cfg.run_dir)  # ours' split, so both see the same training and validation rows
    train_parts, val_parts = training_parts(cfg, layout)
    tr, val = train_parts[0], val_parts[0]
    rows = np.random.default_rng(seed).permutation(len(tr))[: PEER["max_rows"]]
    y = tr.y[rows].astype(np.float32)
    pos = y.sum(0)
    pos_weight = torch.tensor((len(y) - pos) / np.maximum(pos, 1), dtype=torch.float32)
    folder = resolve_encoder(cfg.model)
    tok = load_tokenizer(folder)
    torch.manual_seed(seed)
    model = _Weighted(build_classifier(folder, tr.labels, head="auto").net, pos_weight)
    enc = tok([tr.texts[i] for i in rows], truncation=True, max_length=PEER["max_length"])
    ds = [
        {"input_ids": i, "attention_mask": a, "labels": t}
        for i, a, t in zip(enc["input_ids"], enc["attention_mask"], y)
    ]
    args = TrainingArguments(
        output_dir=str(workdir / f"peer-{lang}"),
        per_device_train_batch_size=PEER["batch_size"],
        learning_rate=PEER["learning_rate"],
        num_train_epochs=PEER["epochs"],
        seed=seed,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    t0 = time.perf_counter()
    Trainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorWithPadding(tok)).train()
    seconds = time.perf_counter() - t0
    net = model.net.eval()
    test = D.source_for(cfg).load("test", lang)

    def proba(texts):
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), 32):
                b = tok(
                    texts[start : start + 32],
                    truncation=True,
                    max_length=PEER["max_length"],
                    padding=True,
                    return_tensors="pt",
                )
                out.append(torch.sigmoid(net(**b).logits).numpy())
        return np.concatenate(out)

    return {
        "seconds": round(seconds, 1),
        "n_train": len(ds),
        "val_0.5": f1(val, proba(val.texts), 0.5),
        "test_0.5": f1(test, proba(test.texts), 0.5),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--languages", nargs="+", default=["arq", "tat", "hau", "amh"])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--epochs", type=int, default=3, help="ours: at most this many epochs")
    ap.add_argument("--model", default="me5-small", help="the encoder of both (tiny-xlmr: a smoke check)")
    ap.add_argument("--freeze", type=int, default=6, help="ours: the lowest layers frozen")
    ap.add_argument("--precision", default="auto", help="ours: mixed_precision (auto, no, bf16)")
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    runs_dir = (args.out / "runs").resolve()
    reference = reference_table().set_index("lang")
    rows = []
    for lang in args.languages:
        ours, cfg = run_ours(lang, args.seed, args.epochs, runs_dir, args.model, args.freeze, args.precision)
        print(f"{lang} ours: {ours}", flush=True)
        peer = run_peer(cfg, lang, args.seed, args.out)
        print(f"{lang} peer: {peer}", flush=True)
        published = reference.loc[lang, list(PUBLISHED_COLUMNS)].max() if lang in reference.index else None
        rows.append(
            {
                "lang": lang,
                "n_train": peer["n_train"],
                "ours": ours,
                "peer": peer,
                "best_published": None if published is None or np.isnan(published) else float(published),
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out / "recipe_peer.json",
        {"rows": rows, "peer_protocol": PEER, "args": vars(args) | {"out": str(args.out)}, "provenance": provenance()},
    )
    lines = [
        "| lang | train rows | ours val (tuned) | ours test (tuned) | ours test @0.5 | ours s | peer val @0.5 | "
        "peer test @0.5 | peer s | speed (peer s / ours s) | best published (test) |",
        "|---" * 11 + "|",
    ]
    for r in rows:
        o, p = r["ours"], r["peer"]
        lines.append(
            f"| {r['lang']} | {r['n_train']} | {o['val_tuned']} | {o['test_tuned']} | {o['test_0.5']} | "
            f"{o['seconds']:.0f} | {p['val_0.5']} | {p['test_0.5']} | {p['seconds']:.0f} | "
            f"{p['seconds'] / o['seconds']:.2f} | {r['best_published'] or '—'} |"
        )
    (args.out / "recipe_peer.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
